#!/usr/bin/env bash
# The fault harness (not part of ci/test.sh): set up .venv, then kill, move, SIGTERM and feed bad inputs to
# each model's launcher, and kill its export (ci/faults.py). Arguments go to ci/faults.py: [--only MODEL]
# [--seed N] [--kills N].
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$repo/ci/setup.sh"
exec "$repo/.venv/bin/python" "$repo/ci/faults.py" "$@"
