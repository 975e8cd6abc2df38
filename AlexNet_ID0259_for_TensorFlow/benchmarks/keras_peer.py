"""A plain Keras 3 model of the same two-tower AlexNet (towers built by splitting tensors, LRN through a
Lambda, no XLA), trained with model.fit on the same tf.data input as the TF1 model. Used by
speed_vs_keras.py; prints 'keras peer images/sec : <f>' over the steps after warm-up.

    python benchmarks/keras_peer.py --data_path=<photos> --batch_size=100 --steps=40 [--warmup=5] [--held_out=0.2]
"""
import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.python.util import _pywrap_util_port  # noqa: E402

import data_loader  # noqa: E402
import model  # noqa: E402


def build():
    def lrn(x):
        return keras.layers.Lambda(lambda t: tf.nn.local_response_normalization(t, **model.LRN))(x)

    def conv(x, filters, size, stride=1, padding="same", bias=0.0, norm=False, pool=False):
        x = keras.layers.Conv2D(filters, size, stride, padding, bias_initializer=keras.initializers.Constant(bias),
                                kernel_initializer=keras.initializers.RandomNormal(0.0, model.WEIGHT_STDDEV),
                                kernel_regularizer=keras.regularizers.L2(model.WEIGHT_DECAY / 2))(x)
        x = lrn(x) if norm else x
        x = keras.layers.MaxPooling2D(3, 2)(x) if pool else x
        return keras.layers.ReLU()(x)

    def split(x):
        return keras.layers.Lambda(lambda t: tf.split(t, 2, axis=3))(x)

    def dense(x, units, bias, top=False):
        x = keras.layers.Dense(units, bias_initializer=keras.initializers.Constant(bias),
                               kernel_initializer=keras.initializers.RandomNormal(0.0, model.WEIGHT_STDDEV),
                               kernel_regularizer=keras.regularizers.L2(model.WEIGHT_DECAY / 2))(x)
        return x if top else keras.layers.ReLU()(keras.layers.Dropout(1 - model.KEEP_PROB)(x))

    inputs = keras.Input((model.INPUT_SIZE, model.INPUT_SIZE, 3))
    towers = [conv(inputs, 48, 11, 4, "valid", norm=True, pool=True) for _ in range(2)]
    towers = [conv(t, 128, 5, bias=1.0, norm=True, pool=True) for t in towers]
    x = conv(keras.layers.Concatenate()(towers), 384, 3)
    towers = [conv(t, 192, 3, bias=1.0) for t in split(x)]
    towers = [conv(t, 128, 3, bias=1.0, pool=True) for t in towers]
    x = keras.layers.Flatten()(keras.layers.Concatenate()(towers))
    x = dense(dense(x, 4096, 1.0), 1000, 1.0)
    net = keras.Model(inputs, dense(x, model.NUM_CLASSES, 0.0, top=True))
    net.compile(optimizer=keras.optimizers.SGD(0.001, momentum=0.9), jit_compile=False,
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    return net


class Timer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times = []

    def on_train_batch_begin(self, batch, logs=None):
        self.start = time.time()

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.time() - self.start)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data_path", required=True)
    p.add_argument("--batch_size", type=int, default=100)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--held_out", type=float, default=0.2, help="photos held out of training, as main.py's --val_photos")
    args = p.parse_args()
    entries, crops = data_loader.list_photos(args.data_path)
    train, _ = data_loader.split(entries, args.held_out)
    ds = data_loader.train_dataset(train, args.batch_size, crops, data_loader.fits_cache(len(entries), 2048))
    net = build()
    onednn = "on" if _pywrap_util_port.IsMklEnabled() else "off"  # TF_ENABLE_ONEDNN_OPTS or TF's CPU default
    print(f"keras peer: {net.count_params()} parameters, batch {args.batch_size}, {args.steps} steps, oneDNN {onednn}")
    timer = Timer()
    net.fit(ds, epochs=1, steps_per_epoch=args.steps, callbacks=[timer], verbose=0)
    timed = timer.times[args.warmup:] or timer.times
    print(f"keras peer images/sec : {args.batch_size * len(timed) / sum(timed):.2f}")


if __name__ == "__main__":
    main()
