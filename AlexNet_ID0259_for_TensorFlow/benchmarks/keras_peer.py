"""Keras 3 peer of AlexNet (model.LAYERS): the same two-tower network on 227x227x3, towers built by
splitting tensors, LRN through a Lambda, dropout 0.5, L2 weight decay, SGD 0.001 with momentum 0.9, no
XLA; for ci/bench.py (`python ci/peer_timing.py AlexNet_ID0259_for_TensorFlow/benchmarks/keras_peer.py
--batch=32 --steps=10`). LRN has no bfloat16 kernel, so under mixed_bfloat16 it runs in float32.
"""
import os
import sys

MODEL_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(MODEL_DIR))
sys.path.insert(0, MODEL_DIR)
from ci import peer_timing  # noqa: E402  (the zoo benchmark's shared timing)


def build():
    import keras
    import tensorflow as tf

    import model  # the network's constants: layer sizes, LRN, initial weights, decay, dropout

    def lrn(t):
        return tf.cast(tf.nn.local_response_normalization(tf.cast(t, tf.float32), **model.LRN), t.dtype)

    def conv(x, filters, size, stride=1, padding="same", bias=0.0, norm=False, pool=False):
        x = keras.layers.Conv2D(filters, size, stride, padding, bias_initializer=keras.initializers.Constant(bias),
                                kernel_initializer=keras.initializers.RandomNormal(0.0, model.WEIGHT_STDDEV),
                                kernel_regularizer=keras.regularizers.L2(model.WEIGHT_DECAY / 2))(x)
        x = keras.layers.Lambda(lrn)(x) if norm else x
        x = keras.layers.MaxPooling2D(3, 2)(x) if pool else x
        return keras.layers.ReLU()(x)

    def split(x):
        return keras.layers.Lambda(lambda t: tf.split(t, 2, axis=3))(x)

    def dense(x, units, bias, top=False):
        x = keras.layers.Dense(units, bias_initializer=keras.initializers.Constant(bias),
                               kernel_initializer=keras.initializers.RandomNormal(0.0, model.WEIGHT_STDDEV),
                               kernel_regularizer=keras.regularizers.L2(model.WEIGHT_DECAY / 2),
                               dtype="float32" if top else None)(x)  # logits in float32 under a mixed policy
        return x if top else keras.layers.ReLU()(keras.layers.Dropout(1 - model.KEEP_PROB)(x))

    inputs = keras.Input((model.INPUT_SIZE, model.INPUT_SIZE, 3))
    towers = [conv(inputs, 48, 11, 4, "valid", norm=True, pool=True) for _ in range(2)]
    towers = [conv(t, 128, 5, bias=1.0, norm=True, pool=True) for t in towers]
    x = conv(keras.layers.Concatenate()(towers), 384, 3)
    towers = [conv(t, 192, 3, bias=1.0) for t in split(x)]
    towers = [conv(t, 128, 3, bias=1.0, pool=True) for t in towers]
    x = keras.layers.Flatten()(keras.layers.Concatenate()(towers))
    x = dense(dense(x, 4096, 1.0), 1000, 1.0)
    return keras.Model(inputs, dense(x, model.NUM_CLASSES, 0.0, top=True))


def training_input(data_path, batch):
    """(dataset, classes): AlexNet's own training pipeline (data_loader.train_dataset: decode and resize once into the cache, then a
    random 227 crop, flip and PCA jitter per image) on the photos of data_path, cached as the launchers'
    default --cache_mb allows; every photo trains (no held-out split: it changes only which photos are read)."""
    import data_loader
    import main
    import model

    args = main.parse([f"--data_path={data_path}"])
    entries, crops = data_loader.list_photos(data_path)
    cache = data_loader.fits_cache(len(entries), args.cache_mb)
    return data_loader.train_dataset(entries, batch, crops, cache, seed=args.seed), model.NUM_CLASSES


def images_per_sec(batch, steps, precision="float32", data=None):
    import keras

    import model

    dataset, classes = data or (None, model.NUM_CLASSES)
    return peer_timing.measure(build, keras.optimizers.SGD(0.001, momentum=0.9),
                               (model.INPUT_SIZE, model.INPUT_SIZE, 3), classes, batch, steps, precision,
                               dataset=dataset)
