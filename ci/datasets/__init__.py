"""Generators of small synthetic datasets, each in one model's exact real on-disk format.

Every generator is `generate(out_dir, seed=0)`; the smoke harness names them in ci/smoke.toml.
"""
from ci.datasets import dogs_cats
from ci.datasets import market1501
from ci.datasets import mars
from ci.datasets import mnist_idx
from ci.datasets import slim_imagenet
from ci.datasets import tfds_mnist

GENERATORS = {
    "dogs_cats": dogs_cats.generate,
    "market1501": market1501.generate,
    "mars": mars.generate,
    "mnist_idx": mnist_idx.generate,
    "slim_imagenet": slim_imagenet.generate,
    "tfds_mnist": tfds_mnist.generate,
}
