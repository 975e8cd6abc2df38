"""Canonical files of the pieces vendored into the model folders (ci/vendored.toml)."""
