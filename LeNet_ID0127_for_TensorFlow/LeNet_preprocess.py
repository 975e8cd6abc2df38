"""Writes the MNIST test set as .bin files for offline/online inference.

<output_path>/images/input_<i>.bin: 784 float32 pixels in [0, 1];
<output_path>/labels/input_<i>.bin: 10 float32 values, one-hot.
"""
import os

import lenet_cli

import numpy as np

import mnist_idx


def parse_args(argv):
    p = lenet_cli.ArgumentParser(prog="LeNet_preprocess.py", description=__doc__)
    p.add_argument("--data_path", default="MNIST", help="folder with t10k-images/labels idx files")
    p.add_argument("--output_path", default="input_bins", help="folder to write images/ and labels/ into")
    return lenet_cli.parse_tolerant(p, argv)


def main(argv):
    args = parse_args(argv)
    mnist_idx.check_folder(args.data_path)
    test = mnist_idx.read_split(args.data_path, "test")
    images = test.images.astype(np.float32) / 255.0
    one_hot = np.eye(mnist_idx.NUM_CLASSES, dtype=np.float32)[test.labels]
    for sub in ("images", "labels"):
        os.makedirs(os.path.join(args.output_path, sub), exist_ok=True)
    for i in range(len(test)):
        images[i].tofile(os.path.join(args.output_path, "images", f"input_{i}.bin"))
        one_hot[i].tofile(os.path.join(args.output_path, "labels", f"input_{i}.bin"))
    print(f"wrote {len(test)} test samples to {args.output_path}/images and {args.output_path}/labels")
    return 0


if __name__ == "__main__":
    lenet_cli.run(main)
