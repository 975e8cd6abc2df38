#!/usr/bin/env bash
# The zoo benchmark: set up .venv, then run ci/bench.py (each model's performance launcher against its Keras 3
# peer in alternating rounds, the matmul roof, peak memory; writes ci/work/bench.md and ci/work/bench.json).
#   bash ci/bench.sh [--only MODEL] [--rounds N] [--precision float32|bf16|both] [--quick]
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$repo/ci/setup.sh"
exec "$repo/.venv/bin/python" "$repo/ci/bench.py" "$@"
