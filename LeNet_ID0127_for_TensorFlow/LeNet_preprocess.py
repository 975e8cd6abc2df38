"""Writes the MNIST test set as .bin files for offline/online inference, in the original port's format.

<output_path>/images/input_<i>.bin: 784 float32 pixels in [0, 1];
<output_path>/labels/input_<i>.bin: 10 float64 values, one-hot (the original wrote its one-hot labels as
float64; LeNet_online_inference.py also reads float32 labels, as earlier versions of this port wrote them).
"""
import os

import lenet_cli
import run_report
import run_safety

import numpy as np

import mnist_idx


def parse_args(argv):
    p = lenet_cli.ArgumentParser(prog="LeNet_preprocess.py", description=__doc__)
    p.add_argument("--data_path", default="MNIST", help="folder with t10k-images/labels idx files")
    p.add_argument("--output_path", default="input_files", help="folder to write images/ and labels/ into")
    return lenet_cli.parse_tolerant(p, argv)


def write_bins(data_path, output_path, flag="--output_path"):
    """The test split of the idx files in data_path as .bin files under output_path; returns their count."""
    mnist_idx.check_folder(data_path)
    test = mnist_idx.read_split(data_path, "test")
    images = test.images.astype(np.float32) / 255.0
    one_hot = np.eye(mnist_idx.NUM_CLASSES, dtype=np.float64)[test.labels]
    for sub in ("images", "labels"):
        run_safety.writable_folder(os.path.join(output_path, sub), flag)
    progress = run_report.Progress(len(test), unit="image")
    try:
        for i in range(len(test)):
            for sub, rows in (("images", images), ("labels", one_hot)):
                # Python's write raises on a short write (a full disk); numpy's tofile cuts the file silently.
                with open(os.path.join(output_path, sub, f"input_{i}.bin"), "wb") as handle:
                    handle.write(rows[i].tobytes())
            progress.update(i + 1, force=i + 1 == len(test))
    except OSError as err:
        room = run_safety.no_room(err, output_path)
        if room is None:
            raise
        raise lenet_cli.ReportedError(f"{room}, and run again") from None
    print(f"wrote {len(test)} test samples to {output_path}/images and {output_path}/labels")
    return len(test)


def main(argv):
    args = parse_args(argv)
    write_bins(args.data_path, args.output_path)
    return 0


if __name__ == "__main__":
    lenet_cli.run(main)
