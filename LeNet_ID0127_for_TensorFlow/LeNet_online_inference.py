"""Runs the frozen LeNet graph over the .bin files written by LeNet_preprocess.py, as the original did.

Needs only the .pb: reads <output_dir>/images and <output_dir>/labels (with --pre_process=True written
first from the MNIST idx files in --data_dir), runs batches of --batchSize (the last one zero-padded,
padding excluded from the accuracy); with --post_process=True writes <result_dir>/predictions.txt (file
name, predicted class, true class).
"""
import glob
import os
import re

import lenet_cli
import run_safety
from lenet_cli import UsageError

import numpy as np

import LeNet_preprocess
from mnist_idx import NUM_CLASSES, PIXELS
import zoo_precision

zoo_precision.before_tensorflow()  # oneDNN on, Keras's matplotlib import skipped (zoo_precision)


def parse_args(argv):
    p = lenet_cli.ArgumentParser(prog="LeNet_online_inference.py", description=__doc__)
    p.add_argument("--model_path", default="./LeNet_frozen_graph.pb")
    p.add_argument("--data_dir", default="MNIST", help="MNIST idx folder, read only with --pre_process=True")
    p.add_argument("--output_dir", default="input_files",
                   help="folder with images/ and labels/ (LeNet_preprocess.py --output_path), read for inference")
    p.add_argument("--pre_process", type=lenet_cli.str2bool, default=False,
                   help="True: first write --data_dir's test set into --output_dir (as LeNet_preprocess.py)")
    p.add_argument("--post_process", type=lenet_cli.str2bool, default=True,
                   help="True: write <result_dir>/predictions.txt")
    p.add_argument("--result_dir", default="result_Files", help="where --post_process writes predictions.txt")
    p.add_argument("--batchSize", type=lenet_cli.positive_int, default=1)
    return lenet_cli.parse_tolerant(p, argv)


def _read_label(path):
    """One-hot label file -> class: 10 float64 values (the original's format) or 10 float32 (this port's
    earlier one), told apart by the file size."""
    raw = np.fromfile(path, np.uint8)
    for dtype in (np.float64, np.float32):
        if raw.size == NUM_CLASSES * np.dtype(dtype).itemsize:
            return int(np.argmax(raw.view(dtype)))
    raise UsageError(f"{path}: expected {NUM_CLASSES} float64 (or float32) one-hot values, got {raw.size} bytes")


def read_bins(data_dir):
    """Returns (names, images [n, 784], labels [n]) in sample-index order."""
    paths = glob.glob(os.path.join(data_dir, "images", "input_*.bin"))
    if not paths:
        raise UsageError(f"--output_dir {data_dir}: no images/input_<i>.bin files (write them with "
                         f"LeNet_preprocess.py --output_path={data_dir}, or pass --pre_process=True "
                         "--data_dir=<MNIST folder>)")
    paths.sort(key=lambda p: int(re.search(r"input_(\d+)\.bin$", p).group(1)))
    names = [os.path.basename(p) for p in paths]
    images, labels = np.empty((len(paths), PIXELS), np.float32), np.empty(len(paths), np.int64)
    for i, (path, name) in enumerate(zip(paths, names)):
        label_path = os.path.join(data_dir, "labels", name)
        if not os.path.isfile(label_path):
            raise UsageError(f"{label_path}: missing label file for {path}")
        image = np.fromfile(path, np.float32)
        if image.size != PIXELS:
            raise UsageError(f"{path}: expected {PIXELS} float32 pixels, got {image.size} values")
        images[i], labels[i] = image, _read_label(label_path)
    return names, images, labels


def main(argv):
    args = parse_args(argv)
    # TensorFlow only now: --help and a bad flag answer without its start-up (seconds).
    import lenet_frozen

    loaded = lenet_frozen.load(args.model_path)
    if args.pre_process:
        LeNet_preprocess.write_bins(args.data_dir, args.output_dir, "--output_dir")
    names, images, labels = read_bins(args.output_dir)
    if args.post_process:
        run_safety.writable_folder(args.result_dir, "--result_dir")
    predicted, batch_seconds = lenet_frozen.predict(loaded, images, args.batchSize)
    if args.post_process:
        with open(os.path.join(args.result_dir, "predictions.txt"), "w") as handle:
            for name, guess, truth in zip(names, predicted, labels):
                handle.write(f"{name} {guess} {truth}\n")
    # The first batch builds the kernels; it is left out of the timing when there are others.
    timed = batch_seconds[1:] or batch_seconds
    ms_per_image = 1000.0 * sum(timed) / (len(timed) * args.batchSize)
    print(f"Final Online Inference Accuracy accuracy : {np.mean(predicted == labels):.4f}")
    print(f"average infer time: {ms_per_image:.4f} ms/img,FPS is {1000.0 / ms_per_image:.1f}")
    return 0


if __name__ == "__main__":
    lenet_cli.run(main)
