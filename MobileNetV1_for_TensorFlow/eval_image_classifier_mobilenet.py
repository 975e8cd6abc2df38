"""Evaluates MobileNet v1 checkpoints on a slim ImageNet split: top-1 and top-5 over the whole split.

    python eval_image_classifier_mobilenet.py --checkpoint_path=results/0 --dataset_dir=/opt/npu/slimImagenet

--checkpoint_path is a checkpoint (model.ckpt-N) or a folder: then every checkpoint in it is evaluated,
oldest first. With --moving_average_decay the EMA shadow weights are evaluated instead of the raw ones.
Per checkpoint it prints `checkpoint: ... step: N images: M`, `acc: [<top1>]`, `top1: <a>`, `top5: <b>`,
`loss: <mean cross-entropy>`, appends the same to <eval_dir>/eval_results.txt and writes them as TensorBoard
scalars into <eval_dir>. --result_dir: the training run's result.json there gets the last checkpoint's top-1.
"""
import glob
import json
import os
import re
import sys

import cli_util
import run_report
import run_safety
from cli_util import UserError
from nets import nets_factory
from preprocessing import preprocessing_factory
import zoo_precision

zoo_precision.before_tensorflow()  # oneDNN on, Keras's matplotlib import skipped (zoo_precision)


def build_parser():
    p = cli_util.Parser(prog="eval_image_classifier_mobilenet.py", description=__doc__.splitlines()[0])
    a = p.add_argument
    a("--batch_size", type=cli_util.positive_int, default=100)
    a("--max_num_batches", type=cli_util.positive_int, default=None, help="default: the whole split")
    a("--checkpoint_path", default="./results/0", help="checkpoint file or folder of checkpoints")
    a("--eval_dir", default="./eval", help="where eval_results.txt and the TensorBoard events are written")
    a("--dataset_dir", default="/opt/npu/slimImagenet")
    a("--dataset_split_name", default="validation")
    a("--model_name", default="mobilenet_v1", choices=list(nets_factory.DEPTH_MULTIPLIERS))
    a("--preprocessing_name", default="inception_v2", choices=list(preprocessing_factory.NAMES))
    a("--moving_average_decay", type=cli_util.unit_interval, default=None,
      help="evaluate the exponential-moving-average weights (any value in (0, 1) selects them)")
    a("--eval_image_size", type=cli_util.positive_int, default=224)
    a("--num_classes", type=cli_util.positive_int, default=1001)
    a("--labels_offset", type=cli_util.non_negative_int, default=0)
    a("--result_dir", default=None,
      help="train.py's --result_dir: the accuracy of its result.json becomes the last checkpoint's top-1")
    return p


def checkpoints(path):
    """Checkpoint prefixes for a file or a folder, ordered by step."""
    if os.path.isdir(path):
        found = [p[:-len(".index")] for p in glob.glob(os.path.join(path, "*.ckpt-*.index"))]
        if not found:
            raise UserError(f"--checkpoint_path {path}: no checkpoint (*.ckpt-N.index) in this folder")
        return sorted(found, key=step_of)
    if not os.path.isfile(path + ".index"):
        raise UserError(f"--checkpoint_path {path}: no such checkpoint ({path}.index missing)")
    return [path]


def step_of(prefix):
    match = re.search(r"-(\d+)$", prefix)
    return int(match.group(1)) if match else -1


def read_record(folder):
    """The training run's record (checked before the evaluation, so that a wrong folder costs no time)."""
    path = os.path.join(folder, run_report.RESULT_FILE)
    try:
        with open(path) as handle:
            record = json.load(handle)
    except (OSError, ValueError) as err:
        raise UserError(f"--result_dir={folder}: not a readable result record: {run_safety.short(err)}") from None
    if not isinstance(record, dict) or not set(run_report.RESULT_KEYS) <= set(record):
        raise UserError(f"--result_dir={folder}: {path} is not a result record (run_report.RESULT_KEYS missing)")
    return record


def main(argv):
    args = cli_util.parse(build_parser(), argv)
    record = read_record(args.result_dir) if args.result_dir else None
    prefixes = checkpoints(args.checkpoint_path)
    # TensorFlow and what is built on it load here, after the flags: --help and a bad flag answer at once.
    tf = cli_util.load_tensorflow()
    import evaluator
    from dataloader import data_provider

    files = data_provider.list_files(args.dataset_dir, args.dataset_split_name)
    data_provider.check_records(files)
    run_safety.writable_folder(args.eval_dir, "--eval_dir")
    graph = evaluator.Evaluator(args, files)
    weights = "EMA" if args.moving_average_decay else "raw"
    for prefix in prefixes:
        try:
            top1, top5, loss, count = graph.evaluate(prefix, step_of(prefix))
        except tf.errors.OpError as err:
            raise data_provider.diagnose(err, files) or err from None
        lines = [f"checkpoint: {prefix}  step: {step_of(prefix)}  images: {count}  weights: {weights}",
                 f"acc: [{top1:.6f}]", f"top1: {top1:.6f}", f"top5: {top5:.6f}",
                 f"loss: {loss:.6f}"]
        print("\n".join(lines), flush=True)
        with open(os.path.join(args.eval_dir, "eval_results.txt"), "a") as handle:
            handle.write("\n".join(lines) + "\n")
    if record is not None:
        record.update(accuracy_name="top1", accuracy=top1, top5=top5, eval_loss=loss, eval_checkpoint=prefix)
        run_report.write_result(args.result_dir, **record)
    return 0


if __name__ == "__main__":
    sys.exit(cli_util.main_wrapper(main, "eval_image_classifier_mobilenet.py"))
