# Several workers for the 8p launchers (sourced by launcher_lib.sh when multi_worker=True).
# Needs from the sourcing script: me, test_dir, Network, batch, suffix, resume, worker_hosts, task_index, and
# worker_command RANK, which `exec`s main.py for that rank (so its pid is the worker's).
# launch_workers sets ranks_here, RANK_SIZE, CaseName and ASCEND_DEVICE_ID (the last local rank, whose log
# the launcher reads, as the originals), or exits 1 naming the worker that failed.

# N free TCP ports of this host, chosen by the kernel. One taken again before its worker binds it makes that
# worker stop with a one-line error naming the port.
free_ports() {
    python3 -c 'import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$1"
}

# start_workers RANK...: `worker_command RANK` in the background for each rank; the i-th of n is bound with
# taskset to cores i*C/n .. (i+1)*C/n-1 of the machine's C cores (unbound without taskset or when C < n).
# Then checks them every second: returns 0 once all exited 0; as soon as one exits non-zero, sets
# failed_rank / failed_status, stops the others (SIGTERM, SIGKILL after 10 s) and returns 1, so that no
# worker waits for a lost peer. Ctrl-C or SIGTERM of the launcher stops them all.
start_workers() {
    local n=$# cores i=0 rank pid status
    cores=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN)
    worker_pids=() worker_ranks=() failed_rank="" failed_status=0
    for rank in "$@"; do
        if command -v taskset >/dev/null && [ "$cores" -ge "$n" ]; then
            (taskset -pc "$((i * cores / n))-$(((i + 1) * cores / n - 1))" "$BASHPID" >/dev/null ||
                echo "[Warning] $me: taskset failed, worker $rank runs unbound" >&2
             worker_command "$rank") &
        else
            (worker_command "$rank") &
        fi
        worker_pids+=($!) worker_ranks+=("$rank")
        i=$((i + 1))
    done
    trap 'stop_workers; exit 130' INT TERM
    while [ "${#worker_pids[@]}" -gt 0 ]; do
        sleep 1
        for i in "${!worker_pids[@]}"; do
            pid=${worker_pids[$i]}
            ! kill -0 "$pid" 2>/dev/null || continue
            wait "$pid"
            status=$?
            rank=${worker_ranks[$i]}
            unset "worker_pids[$i]" "worker_ranks[$i]"
            if [ "$status" -ne 0 ]; then
                failed_rank=$rank failed_status=$status
                stop_workers
                trap - INT TERM
                return 1
            fi
        done
    done
    trap - INT TERM
}

stop_workers() {
    local pids=("${worker_pids[@]}") tries
    [ ${#pids[@]} -gt 0 ] || return 0
    kill -TERM "${pids[@]}" 2>/dev/null
    for tries in 1 2 3 4 5 6 7 8 9 10; do
        kill -0 "${pids[@]}" 2>/dev/null || break  # true while any of them lives
        sleep 1
    done
    kill -KILL "${pids[@]}" 2>/dev/null
    wait 2>/dev/null
}

# The ranks of this host and their environment. Ascend (npu_bridge importable), as the originals: RANK_ID =
# ASCEND_DEVICE_ID = 0..RANK_SIZE-1, HCCL through RANK_TABLE_FILE. Elsewhere one tf.distribute cluster
# through TF_CONFIG: every worker on this host at free loopback ports, or, with --worker_hosts, the one
# worker --task_index of a cluster spread over several hosts.
launch_workers() {
    local workers=() rank port reason
    [[ $RANK_SIZE =~ ^[1-9][0-9]*$ ]] || { echo "[Error] $me: RANK_SIZE=$RANK_SIZE is not a positive integer"; exit 1; }
    ranks_here=($(seq 0 $((RANK_SIZE - 1))))
    if python3 -c 'import npu_bridge' 2>/dev/null; then
        export RANK_TABLE_FILE=${RANK_TABLE_FILE:-$test_dir/8p.json}
        echo "Ascend: $RANK_SIZE devices, rank table $RANK_TABLE_FILE"
    elif [ -n "$worker_hosts" ]; then
        IFS=, read -r -a workers <<<"$worker_hosts"
        RANK_SIZE=${#workers[@]}
        [[ $task_index =~ ^[0-9]+$ ]] && [ "$task_index" -lt "$RANK_SIZE" ] || {
            echo "[Error] $me: --task_index=$task_index is not in 0..$((RANK_SIZE - 1)) (--worker_hosts)"; exit 1; }
        ranks_here=("$task_index")
    else
        for port in $(free_ports "$RANK_SIZE"); do workers+=("localhost:$port"); done
    fi
    CaseName=${Network}_bs${batch}_${RANK_SIZE}p_${suffix}
    if [ ${#workers[@]} -gt 0 ]; then  # worker_command adds each worker's own index
        local list
        printf -v list '"%s",' "${workers[@]}"
        cluster_workers=${list%,}
    fi
    for rank in "${ranks_here[@]}"; do
        [ "$resume" = True ] || rm -rf "$test_dir/output/$rank"
        mkdir -p "$test_dir/output/$rank"
    done
    echo "$Network $CaseName: ${#ranks_here[@]} of $RANK_SIZE workers here, logs in $test_dir/output/<rank>/train_<rank>.log"
    if ! start_workers "${ranks_here[@]}"; then
        reason="worker $failed_rank (RANK_ID $failed_rank) exited with status $failed_status"
        [ "$failed_status" -le 128 ] || reason+=" (killed by signal $((failed_status - 128)))"
        for rank in "${ranks_here[@]}"; do
            [ "$rank" = "$failed_rank" ] ||
                echo "[Error] $me: stopped this worker: $reason" >>"$test_dir/output/$rank/train_$rank.log"
        done
        echo "[Error] $me: $reason; the other workers were stopped. Last lines of its log:"
        grep -v '^epoch [0-9]* step: ' "$test_dir/output/$failed_rank/train_$failed_rank.log" | tail -n 5
        exit 1
    fi
    ASCEND_DEVICE_ID=${ranks_here[-1]}
}
