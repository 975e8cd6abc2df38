"""Synthetic datasets in the real on-disk formats: vendored copies of ci/datasets generators (ci/vendored.toml)."""
