"""Keras 3 peer of MobileNetV1: keras.applications.MobileNet(weights=None), width 1.0, 1001 classes (ImageNet
plus background, as the launchers), SGD with momentum 0.9; for ci/bench.py (`python ci/peer_timing.py
MobileNetV1_for_TensorFlow/benchmarks/keras_peer.py --batch=32 --steps=10`). The image size is the
BENCH_IMAGE_SIZE environment variable (default 224), so that a quick run can use smaller images.
"""
import os
import sys

MODEL_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(MODEL_DIR))
sys.path.insert(0, MODEL_DIR)
from ci import peer_timing  # noqa: E402  (the zoo benchmark's shared timing)

CLASSES = 1001


def image_size():
    return int(os.environ.get("BENCH_IMAGE_SIZE", "224"))


def build():
    import keras

    size = image_size()
    base = keras.applications.MobileNet(input_shape=(size, size, 3), weights=None, classes=CLASSES,
                                        classifier_activation=None)
    # The classifier's logits in float32 under a mixed policy, as the loss needs them.
    return keras.Model(base.inputs, keras.layers.Activation("linear", dtype="float32")(base.outputs[0]))


def training_input(data_path, batch):
    """(dataset, classes): MobileNetV1's own training pipeline (data_provider.build_dataset: the slim TFRecords of data_path parsed,
    each image decoded, crop-distorted, resized, flipped and colour-jittered by train.py's default
    --preprocessing_name) at the peer's image size."""
    from dataloader import data_provider

    import train

    args = train.build_parser().parse_args([f"--dataset_dir={data_path}"])
    dataset = data_provider.build_dataset(data_path, "train", batch, True, image_size(), CLASSES,
                                          args.preprocessing_name, args.labels_offset, seed=args.seed)
    return dataset, CLASSES


def images_per_sec(batch, steps, precision="float32", data=None):
    import keras

    size = image_size()
    dataset, classes = data or (None, CLASSES)
    return peer_timing.measure(build, keras.optimizers.SGD(0.01, momentum=0.9), (size, size, 3), classes, batch,
                               steps, precision, dataset=dataset)
