#!/usr/bin/env bash
# Runs the tests: each model's tests/ in its own pytest process (model folders reuse module names such as
# train.py and model.py, so one process per model keeps them apart; a long test file may get a process of its
# own, ORDER below), and ci/tests. The last line totals all of them; exits non-zero if anything fails.
#
#   bash ci/test.sh                  every test, both tiers (what CI runs; 8.5-17.5 min on 2 cores, by machine)
#   bash ci/test.sh --quick          the quick tier only: tests not marked `slow` (in-process, small data)
#   bash ci/test.sh --only LeNet     the suites whose folder name contains LeNet (`--only ci`: ci/tests)
#   bash ci/test.sh -- -k resume     anything after -- goes to every pytest
#   bash ci/test.sh --jobs 1         one pytest at a time (default 2: two at once, each one's output
#                                    printed whole when it ends; most of a suite's time is single-threaded
#                                    Python and TensorFlow start-up, so two lanes use both cores)
#
# Tiers: `slow` marks the tests that run launchers or entry scripts as subprocesses, SIGKILL and resume,
# multi-worker clusters and real-data accuracy; the rest run in-process on small injected data.
set -uo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
only="" marker=() extra=() jobs=2
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) marker=(-m "not slow") ;;
        --only) only=${2:-}; shift ;;
        --only=*) only=${1#*=} ;;
        --jobs) jobs=${2:-}; shift ;;
        --jobs=*) jobs=${1#*=} ;;
        --) shift; extra=("$@"); break ;;
        -h|--help) sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "[Error] ci/test.sh: unknown argument $1 (see --help)"; exit 2 ;;
    esac
    shift
done
bash "$repo/ci/setup.sh" || exit 1
python="$repo/.venv/bin/python"
junit_dir="$repo/ci/work/junit"
rm -rf "$junit_dir" && mkdir -p "$junit_dir"

# Units of work, the longest first so that the lanes end close together: a model's tests/ (a model folder not
# named here follows), or one long test file of it, split off to run in its own pytest process so that the
# lanes can balance (the model's own unit then leaves that file out), or ci (ci/tests). Measured on a 2-core
# AVX2 EPYC (s): AlexNet 360, cosine 315, MobileNetV1 without test_launchers.py 300, MNIST 250, MobileNetV1's
# test_launchers.py 180, cosine's test_learning.py 160, ci 140, LeNet 125: two lanes of about 910 each.
ORDER=(AlexNet_ID0259_for_TensorFlow cosine_metric_learning MobileNetV1_for_TensorFlow
    MNIST_ID2481_for_TensorFlow2.X MobileNetV1_for_TensorFlow/tests/test_launchers.py
    cosine_metric_learning/tests/test_learning.py ci LeNet_ID0127_for_TensorFlow)
units=()
add() {
    local folder=${1%/tests/*}
    [[ "$(basename "$folder")" == *"$only"* && " ${units[*]} " != *" $1 "* ]] && units+=("$1")
}
for name in "${ORDER[@]}"; do
    [ ! -e "$repo/$name" ] || [ ! -d "$repo/${name%%/*}/tests" ] || add "$repo/$name"
done
for folder in "$repo"/*/tests; do
    [ "$folder" = "$repo/ci/tests" ] || add "${folder%/tests}"  # the glob matches ci/tests too
done
add "$repo/ci"
if [ ${#units[@]} -eq 0 ]; then
    echo "[Error] ci/test.sh: no test suite matches --only $only"
    exit 2
fi

[[ $jobs =~ ^[1-9]$ ]] || { echo "[Error] ci/test.sh: --jobs=$jobs is not a number of lanes from 1 to 9"; exit 2; }

# unit_name UNIT: the model folder's name, plus the file's for a split-off file (its junit/output files).
unit_name() {
    local folder=${1%/tests/*}
    if [ "$folder" = "$1" ]; then basename "$folder"; else echo "$(basename "$folder").$(basename "$1" .py)"; fi
}

# run_suite UNIT: its pytest, output to ci/work/junit/<name>.out, status to <name>.status.
run_suite() {
    local folder=${1%/tests/*} name targets=(tests) unit
    name=$(unit_name "$1")
    if [ "$folder" != "$1" ]; then
        targets=("${1#"$folder"/}")
    else
        for unit in "${units[@]}"; do  # the files split off into units of their own
            [ "${unit%/tests/*}" != "$folder" ] || [ "$unit" = "$folder" ] || targets+=(--ignore="${unit#"$folder"/}")
        done
    fi
    (cd "$folder" && "$python" -m pytest "${targets[@]}" -p no:cacheprovider -q -rs --durations=5 \
        --junitxml="$junit_dir/$name.xml" "${marker[@]}" "${extra[@]}") >"$junit_dir/$name.out" 2>&1
    echo $? >"$junit_dir/$name.status"
}

# report UNIT: prints its output; 0 and 5 (every test deselected, e.g. --quick on slow-only files) pass.
report() {
    local name
    name=$(unit_name "$1")
    echo "=== $name"
    cat "$junit_dir/$name.out"
    case $(cat "$junit_dir/$name.status") in
        0|5) return 0 ;;
        *) echo "=== $name FAILED"; return 1 ;;
    esac
}

status=0
start=$(date +%s)
# The longest units start first; each lane takes the next unit when its current one ends.
pending=("${units[@]}")
running=()
while [ ${#pending[@]} -gt 0 ] || [ ${#running[@]} -gt 0 ]; do
    while [ ${#running[@]} -lt "$jobs" ] && [ ${#pending[@]} -gt 0 ]; do
        run_suite "${pending[0]}" &
        running+=("$!:${pending[0]}")
        pending=("${pending[@]:1}")
    done
    wait -n 2>/dev/null || sleep 1
    still=()
    for entry in "${running[@]}"; do
        if kill -0 "${entry%%:*}" 2>/dev/null; then
            still+=("$entry")
        else
            wait "${entry%%:*}" 2>/dev/null
            report "${entry#*:}" || status=1
        fi
    done
    running=("${still[@]}")
done
echo "ci/test.sh: $(( $(date +%s) - start )) s"
"$python" "$repo/ci/junit_totals.py" "$junit_dir"/*.xml || status=1
exit $status
