"""Keras 3 peer of the MNIST TF2 model: the original's network written the plain Keras way (each ReLU in its
convolution, then the max pooling; the model's create_model pools first, with the same variables), trained
with plain `fit` instead of the model's training code, SGD 0.05 without momentum (mnist_flags' defaults); for
ci/bench.py (`python ci/peer_timing.py MNIST_ID2481_for_TensorFlow2.X/benchmarks/keras_peer.py --batch=256
--steps=20`).
"""
import os
import sys

MODEL_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(MODEL_DIR))
sys.path.insert(0, MODEL_DIR)
from ci import peer_timing  # noqa: E402  (the zoo benchmark's shared timing)

CLASSES = 10


def plain_network():
    """The original's `mnist` network in its own layer order; its checkpoints and the model's are
    interchangeable (the same variables at the same layer positions)."""
    import keras

    layers = keras.layers
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        layers.Conv2D(32, 5, padding="same", activation="relu"),
        layers.MaxPooling2D(2, 2, padding="same"),
        layers.Conv2D(32, 5, padding="same", activation="relu"),
        layers.MaxPooling2D(2, 2, padding="same"),
        layers.Flatten(),
        layers.Dense(1024, activation="relu"),
        layers.Dropout(0.4),
        layers.Dense(10, activation="softmax", dtype="float32"),
    ], name="mnist")


def training_input(data_path, batch):
    """(dataset, classes): the model's own training pipeline (mnist_data.pipelines: the TFDS records decoded,
    cached, shuffled and batched) on the TFDS folder data_path, static batch shape as the benchmarked
    launcher."""
    import mnist_data

    splits = {split: (mnist_data.load_split(files), count)
              for split, (files, count) in mnist_data.describe(data_path).items()}
    return mnist_data.pipelines(splits, batch, batch, eval_static=True)[0], CLASSES


def images_per_sec(batch, steps, precision="float32", data=None):
    import keras

    dataset, classes = data or (None, CLASSES)
    # The network ends in a float32 softmax: the loss takes probabilities, not logits.
    return peer_timing.measure(plain_network, keras.optimizers.SGD(0.05), (28, 28, 1), classes, batch,
                               steps, precision, logits=False, dataset=dataset)
