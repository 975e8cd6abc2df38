"""Generators of small synthetic datasets, each in one model's exact real on-disk format.

Every generator is `generate(out_dir, seed=0)`; the smoke harness names them in ci/smoke.toml.
"""
from ci.datasets import mnist_idx

GENERATORS = {
    "mnist_idx": mnist_idx.generate,
}
