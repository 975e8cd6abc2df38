"""Keras 3 peer of LeNet (lenet_model.inference): the same sigmoid LeNet-5 on 28x28x1, Adam 0.001, for
ci/bench.py (`python ci/peer_timing.py LeNet_ID0127_for_TensorFlow/benchmarks/keras_peer.py --batch=64 --steps=50`).
"""
import os
import sys

MODEL_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(MODEL_DIR))
sys.path.insert(0, MODEL_DIR)
from ci import peer_timing  # noqa: E402  (the zoo benchmark's shared timing)


def build():
    import keras

    layers = keras.layers
    x = inputs = keras.Input((28, 28, 1))
    for maps in (6, 16):  # 5x5 SAME convolution, sigmoid, 2x2 max-pool: 28 -> 14 -> 7
        x = layers.MaxPooling2D(2, 2, padding="same")(layers.Conv2D(maps, 5, padding="same", activation="sigmoid")(x))
    x = layers.Flatten()(x)
    for units in (120, 84):
        x = layers.Dense(units, activation="sigmoid")(x)
    # Logits in float32 under a mixed policy.
    return keras.Model(inputs, layers.Dense(10, dtype="float32")(x), name="lenet_peer")


def training_input(data_path, batch):
    """(dataset, classes): LeNet's own training pipeline (lenet_train.batches) on the idx files of data_path,
    less the held-out images of LeNet.py's default --validation_size; rows of 784 pixels shaped as the peer's
    input."""
    import tensorflow as tf

    import LeNet
    import lenet_train
    import mnist_idx

    args = LeNet.parse_args([f"--data_path={data_path}"])
    train, _, _ = mnist_idx.load(data_path, args.validation_size)
    dataset = lenet_train.batches(train.images, train.labels, len(train), batch, args.seed)
    return dataset.map(lambda x, y: (tf.reshape(x, [-1, 28, 28, 1]), y)), mnist_idx.NUM_CLASSES


def images_per_sec(batch, steps, precision="float32", data=None):
    import keras

    dataset, classes = data or (None, 10)
    return peer_timing.measure(build, keras.optimizers.Adam(0.001), (28, 28, 1), classes, batch, steps, precision,
                               dataset=dataset)
