# Several workers for the 8p launchers (sourced after launcher_common.sh). Canonical copy:
# ci/canonical/workers.sh; the models' test/workers.sh are byte-identical copies (ci/vendored.toml).
#
# The model defines worker_command RANK: runs its entry script for that rank with `exec` (so that the pid
# the watchdog holds is the worker's), output appended to $test_dir/output/RANK/train_RANK.log. Then:
#   worker_flags          declares --worker_hosts and --task_index (before parse_flags)
#   start_workers MODULE BATCH  after check_flags. First checks and chooses, touching nothing: on Ascend
#                         (python module MODULE importable, e.g. npu_bridge) RANK_SIZE processes as the
#                         originals, one per NPU, with RANK_TABLE_FILE (default test/8p.json); elsewhere one
#                         tf.distribute cluster through TF_CONFIG: RANK_SIZE workers (default 8) on this host
#                         at free loopback ports, or with --worker_hosts the one worker --task_index of a
#                         cluster spread over several hosts (or, without --worker_hosts, the cluster and
#                         index of a TF_CONFIG set by a cluster manager). Sets CaseName for per-worker batch BATCH, then
#                         start_output of each rank here, and starts the workers: the i-th of n bound with
#                         taskset to cores i*C/n .. (i+1)*C/n-1 of this host's C cores (unbound when C < n),
#                         each with RANK_ID = ASCEND_DEVICE_ID = its rank (and TF_CONFIG off Ascend). It
#                         watches them: when one fails, the others are stopped (SIGTERM, SIGKILL after 10 s),
#                         their logs say why, and the launcher exits 1 naming the rank. It returns when all
#                         succeeded, with ASCEND_DEVICE_ID, out and log those of the last rank here (the
#                         originals' report folder).

worker_flags() {
    flag worker_hosts "" text "several hosts (not on Ascend): every worker's host:port, the same list on every host"
    flag task_index 0 count "this host's position in --worker_hosts (0 writes the checkpoints)"
    usage_note "Several workers: RANK_SIZE (default 8); on Ascend one process per NPU (RANK_TABLE_FILE, default"
    usage_note "test/8p.json); elsewhere one tf.distribute cluster: RANK_SIZE processes on this host at free"
    usage_note "loopback ports, or one process per host with --worker_hosts and --task_index."
}

# N free TCP ports of this host, chosen by the kernel. A port taken again before its worker binds it makes
# that worker stop with an error naming the port.
free_ports() {
    python3 -c 'import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$1"
}

# A cluster manager (a Kubeflow TFJob) sets TF_CONFIG in each pod: its worker list and task index stand for
# --worker_hosts and --task_index.
hosts_from_tf_config() {
    local parsed
    parsed=$(python3 -c 'import json, os, sys
try:
    config = json.loads(os.environ["TF_CONFIG"])
    workers, task = config["cluster"]["worker"], config["task"]
    if task["type"] != "worker":
        sys.exit("task type " + repr(task["type"]) + ": only worker tasks train here")
    print(",".join(workers), int(task["index"]))
except (ValueError, KeyError, TypeError) as err:
    sys.exit(f"not a worker cluster description ({type(err).__name__}: {err})")' 2>&1) ||
        { echo "[Error] $launcher: TF_CONFIG: $parsed"; exit 1; }
    read -r worker_hosts task_index <<<"$parsed"
    echo "TF_CONFIG from the environment: worker $task_index of $worker_hosts"
}

plan_workers() {
    local hosts=() port
    common_env
    export RANK_SIZE=${RANK_SIZE:-8}
    [[ $RANK_SIZE =~ ^[1-9][0-9]*$ ]] || { echo "[Error] $launcher: RANK_SIZE=$RANK_SIZE is not a positive integer"; exit 1; }
    cluster_workers=""
    if python3 -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec(sys.argv[1]) is None)' "$1" 2>/dev/null; then
        worker_device=Ascend
        if [ -n "$worker_hosts" ]; then
            echo "[Error] $launcher: --worker_hosts is for CPU/GPU clusters; on Ascend the hosts come from RANK_TABLE_FILE"
            exit 1
        fi
        export RANK_TABLE_FILE=${RANK_TABLE_FILE:-$test_dir/8p.json}
        [ -f "$RANK_TABLE_FILE" ] || { echo "[Error] $launcher: RANK_TABLE_FILE=$RANK_TABLE_FILE not found"; exit 1; }
        ranks_here=($(seq 0 $((RANK_SIZE - 1))))
        return
    fi
    worker_device=tf.distribute
    [ -n "$worker_hosts" ] || [ -z "${TF_CONFIG:-}" ] || hosts_from_tf_config
    if [ -n "$worker_hosts" ]; then
        IFS=, read -r -a hosts <<<"$worker_hosts"
        RANK_SIZE=${#hosts[@]}
        [ "$task_index" -lt "$RANK_SIZE" ] || {
            echo "[Error] $launcher: --task_index=$task_index is not in 0..$((RANK_SIZE - 1)) (--worker_hosts)"; exit 1; }
        ranks_here=("$task_index")
    else
        for port in $(free_ports "$RANK_SIZE"); do hosts+=("localhost:$port"); done
        [ ${#hosts[@]} -eq "$RANK_SIZE" ] || { echo "[Error] $launcher: no $RANK_SIZE free ports on this host"; exit 1; }
        ranks_here=($(seq 0 $((RANK_SIZE - 1))))
    fi
    printf -v cluster_workers '"%s",' "${hosts[@]}"
    cluster_workers=${cluster_workers%,}
}

rank_log() { echo "$test_dir/output/$1/train_$1.log"; }

# "exit status 1" / "killed by signal 9" for an exit status.
describe_status() {
    if [ "$1" -gt 128 ]; then echo "killed by signal $(($1 - 128))"; else echo "exit status $1"; fi
}

# Stops the workers still running and writes why into their logs.
stop_workers() {
    local rank pids=() tries
    for rank in "${!worker_pids[@]}"; do
        echo "[Error] stopped by the launcher: $1" >>"$(rank_log "$rank")"
        pids+=("${worker_pids[$rank]}")
    done
    [ ${#pids[@]} -gt 0 ] || return 0
    kill -TERM "${pids[@]}" 2>/dev/null
    for tries in 1 2 3 4 5 6 7 8 9 10; do
        kill -0 "${pids[@]}" 2>/dev/null || break  # true while any of them lives
        sleep 1
    done
    kill -KILL "${pids[@]}" 2>/dev/null
    wait 2>/dev/null
}

start_workers() {
    local rank
    plan_workers "$1"
    set_case "$2"
    for rank in "${ranks_here[@]}"; do  # rank 0 alone saves checkpoints
        start_output "$test_dir/output/$rank" "$([ "$rank" != 0 ] || echo checkpoints)"
    done
    run_workers
    out=$test_dir/output/$ASCEND_DEVICE_ID
    log=$(rank_log "$ASCEND_DEVICE_ID")
}

run_workers() {
    local n=${#ranks_here[@]} cores i=0 rank status cause from
    cores=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN)
    echo "training $Network ($CaseName): ranks ${ranks_here[*]} of $RANK_SIZE on this host via $worker_device"
    worker_pids=()  # indexed by rank
    from=$(file_size "$(rank_log "${ranks_here[0]}")")
    for rank in "${ranks_here[@]}"; do
        (
            export RANK_ID=$rank ASCEND_DEVICE_ID=$rank ZOO_PROGRESS_EVERY=$progress_every
            [ -z "$cluster_workers" ] || export TF_CONFIG="{\"cluster\": {\"worker\": [$cluster_workers]}, \"task\": {\"type\": \"worker\", \"index\": $rank}}"
            if command -v taskset >/dev/null && [ "$cores" -ge "$n" ]; then
                taskset -pc "$((i * cores / n))-$(((i + 1) * cores / n - 1))" "$BASHPID" >/dev/null ||
                    echo "[Warning] $launcher: taskset failed, rank $rank runs unbound" >&2
            fi
            worker_command "$rank"
        ) &
        worker_pids[$rank]=$!
        echo "rank $rank: pid $!, log $(rank_log "$rank")"
        i=$((i + 1))
    done
    [ "$cores" -ge "$n" ] || echo "[Warning] $launcher: $n ranks on $cores cores: no core binding" >&2
    relay_progress "$(rank_log "${ranks_here[0]}")" "$from" "${worker_pids[${ranks_here[0]}]}"  # stands for all ranks
    trap 'stop_workers "the launcher was interrupted"; exit 130' INT
    trap 'stop_workers "the launcher was stopped by SIGTERM"; exit 143' TERM
    # Polls: `wait -n -p` needs bash 5.1, which older Ascend hosts lack.
    while [ ${#worker_pids[@]} -gt 0 ]; do
        sleep 1
        for rank in "${!worker_pids[@]}"; do
            ! kill -0 "${worker_pids[$rank]}" 2>/dev/null || continue
            wait "${worker_pids[$rank]}" 2>/dev/null  # bash would print the killed job's whole command line
            status=$?
            unset "worker_pids[$rank]"
            [ $status -ne 0 ] || continue
            cause="rank $rank failed ($(describe_status $status))"
            echo "[Error] $cause${worker_pids[*]:+; stopping ranks ${!worker_pids[*]}}. The end of $(rank_log "$rank"):"
            log_tail "$(rank_log "$rank")"
            stop_workers "$cause"
            exit 1
        done
    done
    trap - INT TERM
    wait "$relay_pid" 2>/dev/null
    ASCEND_DEVICE_ID=${ranks_here[-1]}
}
