#!/usr/bin/env bash
# Where each model's step time goes: set up .venv, then run ci/profile.py (the model's perf launcher with its
# training Session.run calls traced; op-type and phase tables in ci/work/profile/<model>.md and .json).
#   bash ci/profile.sh [--only MODEL] [--precision float32|mixed] [--warmup W] [--traced K] [--top N]
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$repo/ci/setup.sh"
exec "$repo/.venv/bin/python" "$repo/ci/profile.py" "$@"
