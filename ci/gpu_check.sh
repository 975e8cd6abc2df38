#!/usr/bin/env bash
# The GPU check: on a machine with an NVIDIA GPU that TensorFlow sees, runs the smoke job (ci/smoke.sh), then
# the zoo benchmark in float32 and in the mixed mode, which the precision table makes fp16 on a GPU
# (ci/bench.sh --precision both; table in ci/work/bench.md). Without such a GPU it says so in one line and
# exits 0, so that one CI job can run it on every machine. Arguments go to ci/bench.sh (e.g. --quick).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
    echo "ci/gpu_check.sh: no NVIDIA GPU on this machine (nvidia-smi missing or failing); nothing to check"
    exit 0
fi
bash "$repo/ci/setup.sh"
# The CI lock installs tensorflow-cpu: a GPU run needs the full wheel with CUDA (pip install 'tensorflow[and-cuda]').
if ! "$repo/.venv/bin/python" -c 'import sys, tensorflow as tf; sys.exit(0 if tf.config.list_physical_devices("GPU") else 1)' 2>/dev/null; then
    echo "ci/gpu_check.sh: nvidia-smi sees a GPU but TensorFlow in .venv does not (tensorflow-cpu, or CUDA libraries missing); nothing to check"
    exit 0
fi
bash "$repo/ci/smoke.sh"
bash "$repo/ci/bench.sh" --precision both "$@"
