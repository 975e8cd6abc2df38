#!/usr/bin/env bash
# Runs the tests: each model's tests/ in its own pytest process (model folders reuse module names such as
# train.py and model.py, so one process per model keeps them apart), then ci/tests. The last line totals
# all suites; exits non-zero if anything fails.
#
#   bash ci/test.sh                  every test, both tiers (what CI runs; about 11 min on 2 cores)
#   bash ci/test.sh --quick          the quick tier only: tests not marked `slow` (in-process, small data)
#   bash ci/test.sh --only LeNet     the suites whose folder name contains LeNet (`--only ci`: ci/tests)
#   bash ci/test.sh -- -k resume     anything after -- goes to every pytest
#
# Tiers: `slow` marks the tests that run launchers or entry scripts as subprocesses, SIGKILL and resume,
# multi-worker clusters and real-data accuracy; the rest run in-process on small injected data.
set -uo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
only="" marker=() extra=()
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) marker=(-m "not slow") ;;
        --only) only=${2:-}; shift ;;
        --only=*) only=${1#*=} ;;
        --) shift; extra=("$@"); break ;;
        -h|--help) sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "[Error] ci/test.sh: unknown argument $1 (see --help)"; exit 2 ;;
    esac
    shift
done
bash "$repo/ci/setup.sh" || exit 1
python="$repo/.venv/bin/python"
junit_dir="$repo/ci/work/junit"
rm -rf "$junit_dir" && mkdir -p "$junit_dir"

suites=()
add() { [[ "$(basename "$(dirname "$1")")" == *"$only"* ]] && suites+=("$1"); }
for suite in "$repo"/*/tests; do
    [ "$suite" = "$repo/ci/tests" ] || add "$suite"  # the glob matches ci/tests too; it runs last
done
add "$repo/ci/tests"
if [ ${#suites[@]} -eq 0 ]; then
    echo "[Error] ci/test.sh: no test suite matches --only $only"
    exit 2
fi

status=0
start=$(date +%s)
for suite in "${suites[@]}"; do
    owner=$(dirname "$suite")
    name=$(basename "$owner")
    echo "=== $name/tests"
    (cd "$owner" && "$python" -m pytest tests -p no:cacheprovider -q -rs --durations=5 \
        --junitxml="$junit_dir/$name.xml" "${marker[@]}" "${extra[@]}")
    case $? in
        0|5) ;;  # 5: every test of this suite was deselected (e.g. --quick on a suite of slow tests only)
        *) echo "=== $name/tests FAILED"; status=1 ;;
    esac
done
echo "ci/test.sh: $(( $(date +%s) - start )) s"
"$python" "$repo/ci/junit_totals.py" "$junit_dir"/*.xml || status=1
exit $status
