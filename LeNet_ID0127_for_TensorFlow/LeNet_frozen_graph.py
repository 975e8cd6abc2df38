"""Freezes the latest LeNet checkpoint into LeNet_frozen_graph.pb.

Inputs: input_image (float32 [None, 784], pixels in [0, 1]) and input_label (float32 [None, 10], one-hot).
Outputs: Mean_1 (batch accuracy, as the original, for its online-inference flow) and predictions
(softmax probabilities [None, 10], the output to deploy).
"""
import glob
import os

import lenet_cli
import run_safety
from lenet_cli import UsageError
import zoo_precision

zoo_precision.before_tensorflow()  # oneDNN on, Keras's matplotlib import skipped (zoo_precision)

HERE = os.path.dirname(os.path.abspath(__file__))


def parse_args(argv):
    p = lenet_cli.ArgumentParser(prog="LeNet_frozen_graph.py", description=__doc__)
    p.add_argument("--ckpt_path", default=None,
                   help="checkpoint folder (its latest checkpoint is used) or checkpoint prefix; default: the "
                        "launchers' test/output/$ASCEND_DEVICE_ID/ckpt_npu (device 0 when unset) or LeNet.py's "
                        "own test/output/ckpt_npu, whichever holds the newer checkpoint")
    p.add_argument("--output_path", default="LeNet_frozen_graph.pb", help="frozen GraphDef to write")
    return lenet_cli.parse_tolerant(p, argv)


def default_ckpt_path():
    """Where the last training run left its checkpoints: a launcher's device folder or LeNet.py's default."""
    output = os.path.join(HERE, "test", "output")
    candidates = [os.path.join(output, os.environ.get("ASCEND_DEVICE_ID") or "0", "ckpt_npu"),
                  os.path.join(output, "ckpt_npu")]

    def newest(folder):
        return max((os.path.getmtime(p) for p in glob.glob(os.path.join(glob.escape(folder), "*.index"))),
                   default=-1.0)

    # max keeps the first on a tie: with no checkpoint anywhere the error names the launchers' folder.
    return max(candidates, key=newest)


def main(argv):
    args = parse_args(argv)
    # TensorFlow only now: --help and a bad flag answer without its start-up (seconds).
    import lenet_frozen
    import lenet_model

    checkpoint = lenet_model.resolve_checkpoint(args.ckpt_path or default_ckpt_path(), "--ckpt_path")
    frozen = lenet_frozen.freeze(checkpoint)
    try:
        run_safety.write_whole(args.output_path, frozen.SerializeToString())  # never half a graph
    except OSError as err:
        raise UsageError(f"--output_path={args.output_path}: cannot write there: {err.strerror or err}") from None
    print(f"froze {checkpoint} into {args.output_path} ({len(frozen.node)} nodes)")
    print("input nodes: input_image (float32 [None,784]), input_label (float32 [None,10])")
    print("output nodes: Mean_1 (accuracy), predictions (softmax [None,10])")
    return 0


if __name__ == "__main__":
    lenet_cli.run(main)
