"""Keras 3 peer of the MNIST TF2 model: the model's own network (mnist_main.create_model, already plain
Keras), trained with plain `fit` instead of the model's training code, SGD 0.05 without momentum
(mnist_flags' defaults); for ci/bench.py (`python ci/peer_timing.py
MNIST_ID2481_for_TensorFlow2.X/benchmarks/keras_peer.py --batch=256 --steps=20`).
"""
import os
import sys

MODEL_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(MODEL_DIR))
sys.path.insert(0, MODEL_DIR)
from ci import peer_timing  # noqa: E402  (the zoo benchmark's shared timing)


def images_per_sec(batch, steps, precision="float32"):
    import keras

    import mnist_main

    # create_model ends in a float32 softmax: the loss takes probabilities, not logits.
    return peer_timing.measure(mnist_main.create_model, keras.optimizers.SGD(0.05), (28, 28, 1), 10, batch, steps,
                               precision, logits=False)
