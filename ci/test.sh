#!/usr/bin/env bash
# Runs every test: each model's tests/ in its own pytest process (model folders reuse module names such
# as train.py and model.py, so one process per model keeps them apart), then ci/tests, which include a
# smoke run of every launcher. Exits non-zero if anything fails; the last line totals all suites.
set -uo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$repo/ci/setup.sh" || exit 1
python="$repo/.venv/bin/python"
junit_dir="$repo/ci/work/junit"
rm -rf "$junit_dir" && mkdir -p "$junit_dir"

suites=()
for suite in "$repo"/*/tests; do
    [ "$suite" = "$repo/ci/tests" ] || suites+=("$suite")  # the glob matches ci/tests too; it runs last
done
suites+=("$repo/ci/tests")

status=0
for suite in "${suites[@]}"; do
    owner=$(dirname "$suite")
    name=$(basename "$owner")
    echo "=== $name/tests"
    if ! (cd "$owner" && "$python" -m pytest tests -p no:cacheprovider -q -rs --durations=5 \
            --junitxml="$junit_dir/$name.xml"); then
        echo "=== $name/tests FAILED"
        status=1
    fi
done
"$python" "$repo/ci/junit_totals.py" "$junit_dir"/*.xml || status=1
exit $status
