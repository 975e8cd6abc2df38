#!/usr/bin/env bash
# The project's main job: set up .venv, then run every launcher of every model in smoke mode.
# Extra arguments go to ci/smoke.py (e.g. --only LeNet).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$repo/ci/setup.sh"
exec "$repo/.venv/bin/python" "$repo/ci/smoke.py" "$@"
