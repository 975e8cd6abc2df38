"""Classifies photos with a trained AlexNet: one line `<file> <cat|dog> <probability>` per photo.

    python3 predict.py --checkpoint_path=test/output/0 photo.jpg [more photos or folders ...]

A folder stands for its .jpg/.jpeg/.png/.bmp/.gif files. The photos get the held-out photos' preprocessing
(classifier.py). When names carry labels as Kaggle's do (cat.123.jpg, dog.45.jpg), the accuracy over those
photos is printed last. An unreadable photo is a [Warning] naming it, skipped; none readable, or a checkpoint
that cannot be used, is one '[Error] ...' line and exit status 1 (2 for a malformed flag).
"""
import os
import sys

import cli
import export
import zoo_precision

zoo_precision.before_tensorflow()  # oneDNN on, Keras's matplotlib import skipped (zoo_precision)

PHOTO_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")


def parse(argv):
    p = cli.Parser(prog="predict.py", description=__doc__.splitlines()[0])
    export.add_checkpoint_flags(p)
    p.add_argument("photos", nargs="+", help="photo files or folders of photos")
    return p.parse_args(argv)


def photo_files(paths):
    """The files paths name, a folder expanded to its photos (sorted); missing paths are kept, and reported
    as unreadable like any other."""
    files = []
    for path in paths:
        if os.path.isdir(path):
            files += sorted(os.path.join(path, n) for n in os.listdir(path) if n.lower().endswith(PHOTO_EXTENSIONS))
        else:
            files.append(path)
    return files


def label_of(path):
    """0 (cat) or 1 (dog) from a Kaggle-style name, else None."""
    import data_loader
    match = data_loader.NAME.match(os.path.basename(path))
    return data_loader.CLASSES.index(match.group(1).lower()) if match else None


def classify(net, files, warn, progress):
    """[(file, class, probability of that class)] of the files that decode; warn(text) for the others.
    progress: a run_report.Progress over the files."""
    import tensorflow as tf

    import data_loader
    with net.sess.graph.as_default():
        contents = tf.compat.v1.placeholder(tf.string, [])
        # JPEGs exactly as the held-out pipeline decodes them; other formats with TensorFlow's general decoder.
        decoded = tf.cond(tf.io.is_jpeg(contents), lambda: data_loader.decode_jpeg(contents),
                          lambda: tf.io.decode_image(contents, channels=3, expand_animations=False))
    results = []
    progress.update(0)
    for done, path in enumerate(files, 1):
        try:
            with open(path, "rb") as handle:
                image = net.sess.run(decoded, {contents: handle.read()})
        except (OSError, tf.errors.OpError) as err:
            reason = err.strerror if isinstance(err, OSError) and err.strerror else getattr(err, "message", err)
            warn(f"[Warning] skipping {path}: {str(reason).splitlines()[0]}")
        else:
            probabilities, classes = net.sess.run((net.probabilities, net.classes), {net.images: image[None]})
            results.append((path, int(classes[0]), float(probabilities[0, classes[0]])))
        progress.update(done)
    return results


def main(argv):
    args = parse(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import classifier
    import data_loader
    import run_report
    import run_safety
    files = photo_files(args.photos)
    if not files:
        sys.stderr.write(f"[Error] no photos ({', '.join(PHOTO_EXTENSIONS)}) in {' '.join(args.photos)}\n")
        return 1
    try:
        net = classifier.load(args.checkpoint_path, args.pixels)
    except run_safety.RunSafetyError as err:
        sys.stderr.write(f"[Error] {err}\n")
        return 1
    with net.sess:
        # stdout is the answer, one line per photo: the progress lines go to stderr with the warnings.
        progress = run_report.Progress(len(files), stream=sys.stderr, unit="photo")
        results = classify(net, files, lambda text: print(text, file=sys.stderr, flush=True), progress)
    if not results:
        sys.stderr.write(f"[Error] none of the {len(files)} photos could be read\n")
        return 1
    labelled = hits = 0
    for path, predicted, probability in results:
        print(f"{path} {data_loader.CLASSES[predicted]} {probability:.4f}")
        label = label_of(path)
        if label is not None:
            labelled, hits = labelled + 1, hits + (label == predicted)
    if labelled:
        print(f"accuracy {100.0 * hits / labelled:.2f}% ({hits} of {labelled} photos named cat.<n>.jpg / dog.<n>.jpg)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
