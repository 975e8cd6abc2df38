"""Exports a trained AlexNet for serving: a SavedModel and a frozen graph, from the newest checkpoint that loads.

    python3 export.py --checkpoint_path=test/output/0 [--output_dir=export] [--pixels=unit|raw]

Writes <output_dir>/saved_model/ (tag `serve`, signature `serving_default`) and <output_dir>/alexnet_frozen.pb
(tensors images:0 -> probabilities:0, classes:0); their inputs and outputs are described in classifier.py.
Mistakes are one '[Error] ...' line and exit status 1 (2 for a malformed flag).
"""
import os
import sys

import cli
import run_safety
import zoo_precision

zoo_precision.before_tensorflow()  # oneDNN on, Keras's matplotlib import skipped (zoo_precision)

FROZEN = "alexnet_frozen.pb"
SAVED_MODEL = "saved_model"


def add_checkpoint_flags(parser):
    """The flags export.py and predict.py share."""
    parser.add_argument("--checkpoint_path", required=True,
                        help="a run folder as a launcher leaves it (test/output/0), its model/ folder, or a "
                             "checkpoint prefix (model/model.ckpt-<step>); the newest checkpoint that loads")
    parser.add_argument("--pixels", choices=cli.PIXELS, default=None,
                        help="network input the run was trained with (default: as recorded in its history.json, "
                             "else unit)")


def parse(argv):
    p = cli.Parser(prog="export.py", description=__doc__.splitlines()[0])
    add_checkpoint_flags(p)
    p.add_argument("--output_dir", default="export", help="where saved_model/ and alexnet_frozen.pb go (default ./export)")
    return p.parse_args(argv)


def export(net, output_dir, progress):
    """Writes the SavedModel and the frozen graph of a classifier.Classifier; returns their paths. progress:
    a run_report.Progress over the export's stages (1 the checkpoint loaded, 2 the SavedModel, 3 the graph)."""
    import tensorflow as tf

    import classifier
    saved_model, frozen = os.path.join(output_dir, SAVED_MODEL), os.path.join(output_dir, FROZEN)
    signature = tf.compat.v1.saved_model.signature_def_utils.predict_signature_def(
        inputs={classifier.INPUT: net.images},
        outputs={classifier.PROBABILITIES: net.probabilities, classifier.CLASSES: net.classes})

    def save_model(path):
        builder = tf.compat.v1.saved_model.Builder(path)
        builder.add_meta_graph_and_variables(net.sess, [tf.compat.v1.saved_model.tag_constants.SERVING],
                                             signature_def_map={"serving_default": signature})
        builder.save()

    run_safety.replace_folder(saved_model, save_model)  # a killed export leaves no half model
    progress.update(2)
    graph_def = tf.compat.v1.graph_util.convert_variables_to_constants(
        net.sess, net.sess.graph.as_graph_def(), [classifier.PROBABILITIES, classifier.CLASSES])
    run_safety.write_whole(frozen, graph_def.SerializeToString())
    progress.update(3)
    return saved_model, frozen


def main(argv):
    args = parse(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import classifier
    import run_report
    progress = run_report.Progress(3, unit="stage")  # each one takes seconds: 230 MB of weights
    progress.update(0)
    try:
        run_safety.writable_folder(args.output_dir, "--output_dir")
        net = classifier.load(args.checkpoint_path, args.pixels)
    except run_safety.RunSafetyError as err:
        sys.stderr.write(f"[Error] {err}\n")
        return 1
    progress.update(1)
    with net.sess:
        saved_model, frozen = export(net, args.output_dir, progress)
    print(f"exported {net.prefix} (--pixels={net.pixels})")
    print(f"SavedModel: {saved_model} (signature serving_default: images uint8 [N,H,W,3] RGB -> probabilities "
          "float32 [N,2] (cat, dog), classes int32 [N])")
    print(f"frozen graph: {frozen} (images:0 -> probabilities:0, classes:0)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
