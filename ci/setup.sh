#!/usr/bin/env bash
# Creates <repo>/.venv with the current python3 (3.11+) and installs ci/requirements.txt into it.
# Idempotent: when the venv exists and the requirements file is unchanged, it returns in about a second.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$repo/.venv"
req="$repo/ci/requirements.txt"
python=${PYTHON:-python3}

"$python" - <<'PY' || { echo "[Error] ci/setup.sh needs Python 3.11 or newer (found $("$python" --version 2>&1))" >&2; exit 1; }
import sys
sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY

if [ ! -x "$venv/bin/python" ]; then
    echo "ci/setup.sh: creating $venv"
    "$python" -m venv "$venv"
fi

stamp="$venv/.requirements.sha256"
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    echo "ci/setup.sh: $venv is up to date"
    exit 0
fi
echo "ci/setup.sh: installing $req"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
echo "$want" > "$stamp"
echo "ci/setup.sh: done"
