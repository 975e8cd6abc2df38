# The steps every model launcher shares (sourced). Canonical copy: ci/canonical/launcher_common.sh; each
# model's test/launcher_common.sh is a byte-identical copy (ci/vendored.toml), so edit the canonical one and
# run `python ci/vendor.py sync`. Conventions: ci/launcher_contract.md.
#
# A model's test/launcher_lib.sh sources this file and then, in this order:
#   flag NAME DEFAULT TYPE HELP  declares --NAME=value into the variable NAME. A value the launcher file set
#                                before sourcing is the default instead of DEFAULT (the originals' documented
#                                way: edit the variables at the top of train_full_1p.sh, run it without
#                                arguments); the command line overrides both. TYPE: text, int (> 0),
#                                count (>= 0), number, bool (True|False) or choices a|b|c.
#   alias_flag ALIAS NAME        --ALIAS=value sets NAME as well
#   script_flag SCRIPT_NAME NAME the entry script calls the launcher's --NAME --SCRIPT_NAME: its error messages
#                                are relayed with the name the user typed (also for aliases)
#   usage_note TEXT              a line added to -h/--help
#   parse_flags "$@"             -h/--help: usage, exit 0; an undeclared argument: a [Warning], ignored
#   check_flags                  --data_path given (the original's error otherwise), a readable folder, made
#                                absolute; every value of its TYPE. [Error] line and exit 1 otherwise.
#   start_single BATCH           a 1p run: its environment (RANK_SIZE=1, RANK_ID, ASCEND_DEVICE_ID), CaseName
#                                for batch BATCH, out=output/$ASCEND_DEVICE_ID, log, then start_output "$out"
#   set_case BATCH               BatchSize and CaseName (needs suffix and RANK_SIZE)
#   start_output DIR [checkpoints]  only after every check: locks DIR (DIR.lock: one run per folder, a second
#                                launcher exits 1 naming the first), then a fresh run (--resume not True)
#                                moves DIR aside to DIR.prev, replacing an older one, and creates DIR; with
#                                `checkpoints` (the folder of the rank that saves), --resume=True on a DIR
#                                without a checkpoint says there is nothing to continue from
#   fail MESSAGE LOG [STATUS]    [Error] line, the end of LOG without step lines or TensorFlow's start-up
#                                banner, exit STATUS (default 1)
#   run_python SCRIPT LOG ARG... runs python3 SCRIPT ARG... in the model folder, output appended to LOG;
#                                its [progress] lines are shown on the console every --progress_every seconds;
#                                SIGTERM / SIGINT to the launcher reach the script (which saves and stops). On
#                                failure the script's own [Error] line (flag names as the user typed them)
#                                or the log's end, exit with the script's status
#   finish_from_result ACC_KEY   writes $out/$CaseName.log and the final block from $out/result.json, the
#                                record the entry script wrote with run_report.write_result (ms/step,
#                                images/sec, accuracy 0..1, final loss; NA where the record has none). The
#                                loss file stays the model's own (from its log, as the originals).
# The model sets step_lines, an extended regex of its per-step log lines, left out of a failure's log tail.

test_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
model_dir=$(dirname "$test_dir")
Network=$(basename "$model_dir")
launcher=$(basename "$0")
step_lines='^$'
start_time=$(date +%s)
PRECISION_MODES="allow_mix_precision|allow_fp32_to_fp16|force_fp16|must_keep_origin_dtype"

declared_flags=()
declare -A flag_type=() flag_help=() flag_alias=() typed_name=() script_name=()
held_locks=()
usage_notes=()

flag() {
    declared_flags+=("$1")
    flag_type[$1]=$3 flag_help[$1]=$4
    [ -n "${!1+set}" ] || printf -v "$1" '%s' "$2"
}

alias_flag() { flag_alias[$1]=$2; }

script_flag() { script_name[$2]=$1; }

usage_note() { usage_notes+=("$1"); }

usage() {
    local name shape alias also
    echo "usage: bash $launcher --data_path=<${flag_help[data_path]}> [--name=value ...]"
    for name in "${declared_flags[@]}"; do
        case ${flag_type[$name]} in
            int|count) shape=N ;; number) shape=X ;; bool) shape="True|False" ;; text) shape=VALUE ;;
            *) shape=${flag_type[$name]} ;;
        esac
        also=""
        for alias in "${!flag_alias[@]}"; do
            [ "${flag_alias[$alias]}" != "$name" ] || also+=" | --$alias=$shape"
        done
        printf '  --%s=%s%s\n      %s (default: %s)\n' "$name" "$shape" "$also" "${flag_help[$name]}" "${!name:-none}"
    done
    [ ${#usage_notes[@]} -eq 0 ] || printf '%s\n' "${usage_notes[@]}"
}

parse_flags() {
    local arg name
    flag resume False bool "True: keep output/<device> and continue from its last checkpoint; otherwise a fresh run, the previous output/<device> kept as output/<device>.prev"
    flag progress_every 30 count "seconds between progress lines on the console (step, loss, images/sec, ETA); 0: none"
    for arg in "$@"; do
        name=${arg%%=*}
        name=${name#--}
        if [ -n "$name" ] && [ -n "${flag_alias[$name]}" ]; then
            typed_name[${flag_alias[$name]}]=$name
            name=${flag_alias[$name]}
        fi
        if [ "$arg" = -h ] || [ "$arg" = --help ]; then
            usage
            exit 0
        elif [[ $arg == --*=* && -n $name && -n ${flag_type[$name]+set} ]]; then
            printf -v "$name" '%s' "${arg#*=}"
        else
            echo "[Warning] $launcher: unknown argument $arg ignored" >&2
        fi
    done
}

# [Error] line naming the flag, exit 1.
flag_error() {
    echo "[Error] $launcher: --$1=${!1} $2"
    exit 1
}

check_flags() {
    local name value
    if [ -z "$data_path" ]; then
        echo '[Error] para "data_path" must be config'
        exit 1
    fi
    [[ $data_path == /* ]] || data_path="$PWD/$data_path"
    [ -d "$data_path" ] || flag_error data_path "is not a folder"
    [ -r "$data_path" ] && [ -x "$data_path" ] || flag_error data_path "is not readable"
    for name in "${declared_flags[@]}"; do
        value=${!name}
        [ -n "$value" ] || continue  # empty: the entry script's own default applies
        case ${flag_type[$name]} in
            text) ;;
            int) [[ $value =~ ^[1-9][0-9]*$ ]] || flag_error "$name" "is not a positive integer" ;;
            count) [[ $value =~ ^[0-9]+$ ]] || flag_error "$name" "is not a non-negative integer" ;;
            number) [[ $value =~ ^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$ ]] ||
                flag_error "$name" "is not a number" ;;
            bool)
                case $value in
                    True|true) printf -v "$name" True ;;
                    False|false) printf -v "$name" False ;;
                    *) flag_error "$name" "is not True or False" ;;
                esac ;;
            *) [[ "|${flag_type[$name]}|" == *"|$value|"* ]] || flag_error "$name" "is not one of ${flag_type[$name]}" ;;
        esac
    done
}

# The launcher environment of the contract.
common_env() {
    export JOB_ID=${JOB_ID:-10087} ASCEND_GLOBAL_LOG_LEVEL=${ASCEND_GLOBAL_LOG_LEVEL:-3}
}


set_case() {
    BatchSize=$1
    CaseName=${Network}_bs${BatchSize}_${RANK_SIZE}p_${suffix}
}

# One run per output folder: an flock on DIR.lock, taken on a descriptor the entry scripts inherit, so it
# is held until the launcher and its scripts have all ended (the kernel frees it when they die, SIGKILL too).
lock_output() {
    local lock=$1.lock fd holder reason
    command -v flock >/dev/null || { echo "[Warning] $launcher: no flock command; $1 is not locked" >&2; return; }
    reason=$( { mkdir -p "$(dirname "$1")" && : >>"$lock"; } 2>&1) ||
        { echo "[Error] $launcher: cannot write in $(dirname "$1"): ${reason##*: }"; exit 1; }
    exec {fd}<>"$lock"
    if ! flock -n "$fd"; then
        echo "[Error] $launcher: $1 is in use by another run ($(head -n 1 "$lock")); wait for it to end or use another ASCEND_DEVICE_ID"
        exit 1
    fi
    holder=$(head -n 1 "$lock")
    if [[ $holder =~ ^pid=([0-9]+)\ host=([^ ]+) ]] &&
        ! { [ "${BASH_REMATCH[2]}" = "$(hostname)" ] && kill -0 "${BASH_REMATCH[1]}" 2>/dev/null; }; then
        echo "[Warning] $launcher: taking over the lock of a run that is no longer running ($holder)" >&2
    fi
    echo "pid=$$ host=$(hostname) cmd=$launcher" >"$lock"
    held_locks+=("$lock")
    trap 'for lock in "${held_locks[@]}"; do : >"$lock"; done' EXIT  # a clean end leaves no holder named
}

# A folder that holds nothing but logs is a run that stopped before it wrote anything: it is removed, so that
# DIR.prev keeps the last run that has results or checkpoints. A resume with no checkpoint to continue from (a
# run killed before its first save ended) is said before the entry script decides what to do about it.
start_output() {
    local dir=$1 reason
    lock_output "$dir"
    if [ "$resume" = True ] && [ "${2:-}" = checkpoints ] &&
        [ -z "$(find "$dir" -type f -regex '.*-[0-9]+\.index' -print -quit 2>/dev/null)" ]; then
        echo "[Warning] $launcher: --resume=True, but $dir holds no checkpoint (none was written, or none" \
            "finished before the run was stopped): there is nothing to continue from" >&2
    fi
    if [ "$resume" != True ] && [ -e "$dir" ]; then
        if [ -z "$(find "$dir" -type f ! -name '*.log' ! -name .run.lock -print -quit 2>/dev/null)" ]; then
            rm -rf "$dir"
        elif rm -rf "$dir.prev" && mv "$dir" "$dir.prev"; then
            echo "the previous run's $dir is kept as $dir.prev"
        else
            echo "[Error] $launcher: cannot move $dir aside to $dir.prev"
            exit 1
        fi
    fi
    reason=$( { mkdir -p "$dir" && : >>"$dir/.write-probe" && rm -f "$dir/.write-probe"; } 2>&1) ||
        { echo "[Error] $launcher: cannot write in $dir: ${reason##*: }"; exit 1; }
}

start_single() {
    common_env
    export RANK_SIZE=${RANK_SIZE:-1} RANK_ID=${RANK_ID:-0} ASCEND_DEVICE_ID=${ASCEND_DEVICE_ID:-0}
    [[ $ASCEND_DEVICE_ID =~ ^[0-9]+$ ]] || {
        echo "[Error] $launcher: ASCEND_DEVICE_ID=$ASCEND_DEVICE_ID is not a device number"; exit 1; }
    set_case "$1"
    out=$test_dir/output/$ASCEND_DEVICE_ID
    log=$out/train_$ASCEND_DEVICE_ID.log
    start_output "$out" checkpoints
    echo "training $Network ($CaseName); log: $log"
}

# TensorFlow's start-up chatter (C++ log lines, CPU-feature and oneDNN notices): kept in the log file, left
# out of what a failed launcher shows on the console.
banner_lines='^([0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:.]+: [IW] |[IWE][0-9]{4} |WARNING: All log messages before absl|To enable the following instructions|oneDNN custom operations|WARNING:tensorflow:)'

log_tail() { grep -Ev "$step_lines" "$1" | grep -Ev "$banner_lines" | grep -v '^\[Error\]' | tail -n 5; }

# fail MESSAGE LOG [STATUS]: "[Error] MESSAGE; the end of LOG:", the log's last lines, exit STATUS (1).
fail() {
    echo "[Error] $1; the end of $2:"
    log_tail "$2"
    exit "${3:-1}"
}

# The entry script's last [Error] line in LOG, with its flag names replaced by those the user typed.
script_error() {
    local line name typed
    line=$(grep -a '^\[Error\]' "$1" | tail -n 1)
    for name in "${!script_name[@]}"; do
        typed=${typed_name[$name]:-$name}
        line=$(sed -E "s/--${script_name[$name]}([^A-Za-z0-9_]|$)/--$typed\1/g" <<<"$line")
    done
    for name in "${!typed_name[@]}"; do
        line=$(sed -E "s/--$name([^A-Za-z0-9_]|$)/--${typed_name[$name]}\1/g" <<<"$line")
    done
    echo "$line"
}

# Bytes in FILE (0 before it exists): a relay of what is written next starts after them.
file_size() { stat -c %s "$1" 2>/dev/null || echo 0; }

# relay_progress LOG FROM PID: the [progress] lines (run_report.Progress) that PID writes to LOG after byte
# FROM, shown on the console while it runs; the log keeps everything. After PID has ended the relay reads LOG
# to its end and stops by itself (wait "$relay_pid"), so a short run's lines are not lost to the poll interval.
relay_progress() {
    { tail -c "+$(($2 + 1))" -F -s 0.2 --pid="$3" "$1" 2>/dev/null | grep --line-buffered '^\[progress\]'; } &
    relay_pid=$!
}

run_python() {
    local script=$1 log=$2 status pid error from
    shift 2
    from=$(file_size "$log")
    (trap - INT; cd "$model_dir" && ZOO_PROGRESS_EVERY=$progress_every exec python3 "$script" "$@") >>"$log" 2>&1 &
    pid=$!
    relay_progress "$log" "$from" "$pid"
    # The script saves a checkpoint and stops on SIGTERM / SIGINT; a launcher stopped by a scheduler passes
    # it on. wait returns early when a trapped signal arrives, hence the loop.
    stopped_by=""
    trap 'stopped_by=TERM; kill -TERM $pid 2>/dev/null' TERM
    trap 'stopped_by=INT; kill -INT $pid 2>/dev/null' INT
    while wait "$pid"; status=$?; kill -0 "$pid" 2>/dev/null; do :; done
    trap - TERM INT
    wait "$relay_pid" 2>/dev/null
    if [ $status -eq 0 ] && [ -n "$stopped_by" ]; then
        # The signal came as the script was finishing: its work is saved; the launcher stops before its next step.
        echo "[Error] $launcher: stopped by SIG$stopped_by after $script finished; run again with --resume=True to continue"
        exit $((128 + $(kill -l "$stopped_by")))
    fi
    [ $status -ne 0 ] || return 0
    error=$(script_error "$log")
    if [ -n "$error" ]; then
        echo "$error"
        echo "(full log: $log)"
        exit $status
    fi
    fail "$script failed with exit status $status" "$log" $status
}

# $out/$CaseName.log (the contract's keys, in order) and the final block on stdout.
write_summary() {
    printf '%s\n' "Network = $Network" "RankSize = $RANK_SIZE" "BatchSize = $BatchSize" \
        "DeviceType = $(uname -m)" "CaseName = $CaseName" "ActualFPS = $ActualFPS" \
        "TrainingTime = $TrainingTime" "$1 = $TrainAccuracy" "ActualLoss = $ActualLoss" \
        "E2ETrainingTime = $E2ETrainingTime" >"$out/$CaseName.log"
    printf '%s\n' "------------------ Final result ------------------" \
        "Final Performance images/sec : $ActualFPS" \
        "Final Train Accuracy : $TrainAccuracy" \
        "E2E Training Duration sec : $E2ETrainingTime"
}

# The summary's values from the run's result.json, NA where a value is null (a perf run's accuracy, a resume
# that found nothing left to train). The original key names and formats: 2 decimals for rates, 4 for accuracy.
finish_from_result() {
    local record=$out/result.json values
    [ -s "$record" ] || fail "$launcher: the run wrote no result record $record" "$log"
    values=$(python3 - "$record" 2>&1 <<'PY'
import json, sys
try:
    with open(sys.argv[1]) as handle:
        record = json.load(handle)
    fields = [(record["ms_per_step"], "%.2f"), (record["images_per_sec"], "%.2f"), (record["accuracy"], "%.4f"),
              (record["final_loss"], "%.6g")]
except (OSError, ValueError, KeyError) as error:
    sys.exit(f"unreadable ({error})")
print(" ".join("NA" if value is None else form % value for value, form in fields))
PY
    ) || fail "$launcher: $record: ${values:-unreadable}" "$log"
    read -r TrainingTime ActualFPS TrainAccuracy ActualLoss <<<"$values"
    E2ETrainingTime=$(($(date +%s) - start_time))
    write_summary "$1"
}
