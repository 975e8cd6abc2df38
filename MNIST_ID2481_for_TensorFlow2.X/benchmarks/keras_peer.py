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

CLASSES = 10


def training_input(data_path, batch):
    """(dataset, classes): the model's own training pipeline (mnist_data.pipelines: the TFDS records decoded, cached, shuffled and
    batched) on the TFDS folder data_path, static batch shape as the benchmarked launcher."""
    import mnist_data

    splits = {split: (mnist_data.load_split(files), count)
              for split, (files, count) in mnist_data.describe(data_path).items()}
    return mnist_data.pipelines(splits, batch, batch, eval_static=True)[0], CLASSES


def images_per_sec(batch, steps, precision="float32", data=None):
    import keras

    import mnist_main

    dataset, classes = data or (None, CLASSES)
    # create_model ends in a float32 softmax: the loss takes probabilities, not logits.
    return peer_timing.measure(mnist_main.create_model, keras.optimizers.SGD(0.05), (28, 28, 1), classes, batch,
                               steps, precision, logits=False, dataset=dataset)
