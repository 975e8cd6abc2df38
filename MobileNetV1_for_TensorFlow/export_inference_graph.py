"""Exports a trained MobileNet v1 for inference: a SavedModel and a frozen GraphDef, as slim's export did.

    python export_inference_graph.py --checkpoint_path=results/0/model.ckpt-500 --output_dir=export

Input `input` (float32 [None, S, S, 3] in [-1, 1]), output `MobilenetV1/Predictions/Reshape_1`
(softmax [None, num_classes]). Writes <output_dir>/saved_model/ (serving signature inputs
"input", outputs "predictions") and <output_dir>/frozen_graph.pb. With --moving_average_decay the EMA
weights are exported.
"""
import os
import sys

import cli_util
import run_report
import run_safety
from cli_util import UserError
from nets import nets_factory
import zoo_precision

zoo_precision.before_tensorflow()  # oneDNN on, Keras's matplotlib import skipped (zoo_precision)

INPUT_NAME = "input"
OUTPUT_NAME = "MobilenetV1/Predictions/Reshape_1"


def build_parser():
    p = cli_util.Parser(prog="export_inference_graph.py", description=__doc__.splitlines()[0])
    a = p.add_argument
    a("--checkpoint_path", required=True, help="checkpoint file, or folder (its newest checkpoint)")
    a("--output_dir", required=True)
    a("--model_name", default="mobilenet_v1", choices=list(nets_factory.DEPTH_MULTIPLIERS))
    a("--num_classes", type=cli_util.positive_int, default=1001)
    a("--image_size", type=cli_util.positive_int, default=224)
    a("--moving_average_decay", type=cli_util.unit_interval, default=None, help="export the EMA weights")
    return p


def resolve(path):
    """A checkpoint prefix, or a folder's newest checkpoint that loads (found by listing: a moved folder works)."""
    prefix = run_safety.resume_point(path) if os.path.isdir(path) else path
    if not prefix or not os.path.isfile(prefix + ".index"):
        raise UserError(f"--checkpoint_path {path}: no checkpoint found")
    return prefix


def main(argv):
    args = cli_util.parse(build_parser(), argv)
    prefix = resolve(args.checkpoint_path)
    run_safety.writable_folder(args.output_dir, "--output_dir")
    # TensorFlow and slim load here, after the flags: --help and a bad flag answer at once.
    tf = cli_util.load_tensorflow()
    from nets.slim_compat import slim

    progress = run_report.Progress(3, unit="stage")  # restore, SavedModel, frozen graph: a line on a slow host
    graph = tf.Graph()
    with graph.as_default():
        images = tf.compat.v1.placeholder(tf.float32, [None, args.image_size, args.image_size, 3], name=INPUT_NAME)
        network_fn = nets_factory.get_network_fn(args.model_name, args.num_classes, is_training=False)
        _, end_points = network_fn(images)
        predictions = end_points["Predictions"]
        assert predictions.op.name == OUTPUT_NAME, predictions.op.name
        variables = slim.get_model_variables()
        if args.moving_average_decay:
            restore = tf.compat.v1.train.ExponentialMovingAverage(args.moving_average_decay).variables_to_restore(variables)
        else:
            restore = {v.op.name: v for v in variables}
        cli_util.check_checkpoint(prefix, restore, args.moving_average_decay)
        saver = tf.compat.v1.train.Saver(restore)
        with tf.compat.v1.Session(graph=graph) as session:
            saver.restore(session, prefix)
            progress.update(1)
            signature = tf.compat.v1.saved_model.predict_signature_def(
                inputs={"input": images}, outputs={"predictions": predictions})

            def save_model(path):
                builder = tf.compat.v1.saved_model.Builder(path)
                builder.add_meta_graph_and_variables(session, [tf.compat.v1.saved_model.tag_constants.SERVING],
                                                     signature_def_map={"serving_default": signature})
                builder.save()

            # An earlier export is replaced only by a complete one.
            saved_model_dir = run_safety.replace_folder(os.path.join(args.output_dir, "saved_model"), save_model)
            progress.update(2)
            frozen = tf.compat.v1.graph_util.convert_variables_to_constants(
                session, graph.as_graph_def(), [OUTPUT_NAME])
        frozen = tf.compat.v1.graph_util.extract_sub_graph(frozen, [OUTPUT_NAME])
    frozen_path = os.path.join(args.output_dir, "frozen_graph.pb")
    run_safety.write_whole(frozen_path, frozen.SerializeToString())
    progress.update(3)
    print(f"exported {prefix}: {saved_model_dir} and {frozen_path} (input {INPUT_NAME}, output {OUTPUT_NAME})")
    return 0


if __name__ == "__main__":
    sys.exit(cli_util.main_wrapper(main, "export_inference_graph.py"))
