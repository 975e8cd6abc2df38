"""Keras 3 peer of the deep_sort descriptor network (nets/deep_sort) with its cosine-softmax head, on
128x64x3, Adam 0.001; for ci/bench.py (`python ci/peer_timing.py cosine_metric_learning/benchmarks/keras_peer.py
--batch=32 --steps=10`). Like the original: ELU, centre-only batch norm (no gamma, epsilon 1e-3) instead of
conv biases, pre-activation residual blocks with dropout 0.4 between their convolutions, a 1x1 stride-2
projection where the width doubles, dense 128 + batch norm, L2-normalised features, logits kappa * cos.
"""
import functools
import os
import sys

MODEL_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(MODEL_DIR))
sys.path.insert(0, MODEL_DIR)
from ci import peer_timing  # noqa: E402  (the zoo benchmark's shared timing)

CLASSES = 751  # Market-1501's training identities (with --data_path: the training script's width for that data)
INPUT_SHAPE = (128, 64, 3)


def build(classes=CLASSES):
    import keras
    import tensorflow as tf

    layers = keras.layers

    def bn(x):
        return layers.BatchNormalization(epsilon=1e-3, momentum=0.999, scale=False)(x)

    def conv(x, filters, size=3, stride=1, norm=True):
        x = layers.Conv2D(filters, size, stride, "same", use_bias=not norm)(x)
        return bn(x) if norm else x

    def block(x, filters, first=False):
        stride = 2 if filters != x.shape[-1] else 1
        pre = x if first else layers.ELU()(bn(x))
        y = layers.ELU()(conv(pre, filters, stride=stride))
        y = conv(layers.Dropout(0.4)(y), filters, norm=False)
        shortcut = layers.Conv2D(filters, 1, 2, "same", use_bias=False)(x) if stride == 2 else x
        return layers.Add()([shortcut, y])

    class CosineSoftmax(layers.Layer):
        """kappa * cos(features, class mean), kappa = softplus(scale); in float32 under a mixed policy."""

        def build(self, input_shape):
            self.means = self.add_weight(shape=(input_shape[-1], classes), initializer="glorot_uniform")
            self.scale = self.add_weight(shape=(), initializer="zeros")

        def call(self, features):
            return tf.nn.softplus(self.scale) * tf.matmul(features, tf.nn.l2_normalize(self.means, axis=0))

    inputs = keras.Input(INPUT_SHAPE)
    x = layers.ELU()(conv(inputs, 32))
    x = layers.ELU()(conv(x, 32))
    x = layers.MaxPooling2D(3, 2, "same")(x)
    for filters, first in ((32, True), (32, False), (64, False), (64, False), (128, False), (128, False)):
        x = block(x, filters, first)
    x = layers.Dropout(0.4)(layers.Flatten()(x))
    x = layers.ELU()(bn(layers.Dense(128, use_bias=False)(x)))
    features = layers.UnitNormalization(dtype="float32")(x)
    return keras.Model(inputs, CosineSoftmax(dtype="float32")(features))


def training_input(data_path, batch):
    """(dataset, classes): the model's own training pipeline (input_pipeline.training_dataset: batch / 4
    identities x 4 JPEGs per step, decoded, resized and flipped) on the Market-1501 folder data_path, less the
    identities held out for validation, and the classifier width the training script takes from that data."""
    import input_pipeline
    import modes
    import train_market1501

    data = modes.read_training_data(train_market1501, data_path)
    return input_pipeline.training_dataset(data.train, batch, seed=None), data.num_classes


def images_per_sec(batch, steps, precision="float32", data=None):
    import keras

    dataset, classes = data or (None, CLASSES)
    return peer_timing.measure(functools.partial(build, classes), keras.optimizers.Adam(0.001), INPUT_SHAPE, classes,
                               batch, steps, precision, dataset=dataset)
