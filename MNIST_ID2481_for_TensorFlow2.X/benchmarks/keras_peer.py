"""Keras 3 peer of the MNIST TF2 model (mnist_main.create_model, rebuilt here so that the peer is plain
Keras with `fit`, not the model's own training loop): two 5x5 convolutions of 32 maps, dense 1024, dropout
0.4, SGD 0.05 without momentum (mnist_flags' defaults), for ci/bench.py.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from ci import peer_timing  # noqa: E402  (the zoo benchmark's shared timing)


def build():
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
        layers.Dense(10, dtype="float32"),  # logits; the loss applies the softmax
    ], name="mnist_peer")


def images_per_sec(batch, steps, precision="float32"):
    import keras

    return peer_timing.measure(build, keras.optimizers.SGD(0.05), (28, 28, 1), 10, batch, steps, precision)
