# Starts the ranks of a multi-rank run and watches them (sourced by launcher_lib.sh when multi_rank=True).
#  - Ascend (npu_device importable): one process per NPU, ASCEND_DEVICE_ID=RANK_ID, RANK_TABLE_FILE, HCCL.
#  - elsewhere: RANK_SIZE workers of one tf.distribute cluster on this host (TF_CONFIG, free loopback ports),
#    or with --worker_hosts=h1:p1,h2:p2,... --task_index=I the one worker I of a cluster spanning hosts.
# Each rank gets an equal share of this host's cores (taskset) and its own output/<rank>/train_<rank>.log;
# rank 0 writes the checkpoints and the SavedModel to output/0/ckpt. If a rank fails, the others are
# stopped and the launcher exits with that rank's status. Sets out, log (the last rank here), fps_factor.

if python3 -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("npu_device") is None)'; then
    device=Ascend
else
    device=tf.distribute
fi

if [ -n "$worker_hosts" ]; then
    IFS=, read -ra hosts <<<"$worker_hosts"
    if [[ ! "$task_index" =~ ^[0-9]+$ ]] || ((task_index >= ${#hosts[@]})); then
        echo "[Error] $me: --task_index=$task_index must be 0..$((${#hosts[@]} - 1)) for --worker_hosts=$worker_hosts"
        exit 1
    fi
    if [ $device = Ascend ]; then
        echo "[Error] $me: --worker_hosts is for CPU/GPU clusters; on Ascend the hosts come from RANK_TABLE_FILE"
        exit 1
    fi
    export RANK_SIZE=${#hosts[@]}
    local_ranks=("$task_index")
else
    export RANK_SIZE=${RANK_SIZE:-8}
    if [[ ! "$RANK_SIZE" =~ ^[1-9][0-9]*$ ]]; then
        echo "[Error] $me: RANK_SIZE=$RANK_SIZE is not a positive number of ranks"
        exit 1
    fi
    local_ranks=($(seq 0 $((RANK_SIZE - 1))))
    if [ $device = tf.distribute ]; then
        # Ports the kernel hands out as free; a port taken again before a worker binds it fails that worker
        # with a clear error (and the launcher reports it).
        ports=$(python3 -c "import socket
socks = [socket.socket() for _ in range($RANK_SIZE)]
for s in socks: s.bind(('localhost', 0))
print(','.join(f'localhost:{s.getsockname()[1]}' for s in socks))") || exit 1
        IFS=, read -ra hosts <<<"$ports"
    fi
fi
if [ $device = Ascend ]; then
    export RANK_TABLE_FILE=${RANK_TABLE_FILE:-$test_dir/8p.json}
    [ -f "$RANK_TABLE_FILE" ] || { echo "[Error] $me: RANK_TABLE_FILE=$RANK_TABLE_FILE not found"; exit 1; }
else
    cluster=$(printf '"%s",' "${hosts[@]}")
    cluster="{\"worker\": [${cluster%,}]}"
fi

CaseName=${Network}_bs${batch_size}_${RANK_SIZE}p_${suffix}
fps_factor=$RANK_SIZE
cores=$(nproc)
per_rank=$((cores / ${#local_ranks[@]}))
echo "training $Network ($CaseName): ranks ${local_ranks[*]} of $RANK_SIZE on this host via $device, $per_rank core(s) each"
((per_rank)) || echo "[Warning] $me: ${#local_ranks[@]} ranks on $cores cores: no core binding"

pids=()  # indexed by rank
slot=0
for rank in "${local_ranks[@]}"; do
    out=$test_dir/output/$rank
    log=$out/train_$rank.log
    [ "$resume" = True ] || rm -rf "$out"
    mkdir -p "$out"
    bind=()
    if ((per_rank)) && command -v taskset >/dev/null; then
        bind=(taskset -c "$((slot * per_rank))-$((slot * per_rank + per_rank - 1))")
    fi
    slot=$((slot + 1))
    rank_env=(RANK_ID="$rank" ASCEND_DEVICE_ID="$rank")
    [ $device = Ascend ] || rank_env+=(TF_CONFIG="{\"cluster\": $cluster, \"task\": {\"type\": \"worker\", \"index\": $rank}}")
    (cd "$model_dir" && exec env "${rank_env[@]}" "${bind[@]}" python3 mnist_main.py \
        --model_dir="$test_dir/output/0/ckpt" --mul_rank_size="$RANK_SIZE" --mul_device_id="$rank" \
        "${main_args[@]}") >>"$log" 2>&1 &
    pids[$rank]=$!
    echo "rank $rank: pid ${pids[$rank]}, log $log"
done

# Stops the ranks still running and notes why in their logs. TensorFlow catches SIGTERM and may take a
# while to wind down its collectives, so whatever still runs after 10 s is killed.
stop_ranks() {
    local rank
    for rank in "${!pids[@]}"; do
        echo "[Error] stopped by the launcher: $1" >>"$test_dir/output/$rank/train_$rank.log"
        kill "${pids[$rank]}" 2>/dev/null
    done
    for _ in $(seq 10); do
        kill -0 "${pids[@]}" 2>/dev/null || break
        sleep 1
    done
    kill -KILL "${pids[@]}" 2>/dev/null
    wait
}
trap 'stop_ranks "the launcher was interrupted"; exit 130' INT TERM

# Polls instead of `wait -n -p` (bash 5.1+), which the bash of older Ascend hosts lacks.
while ((${#pids[@]})); do
    for rank in "${!pids[@]}"; do
        kill -0 "${pids[$rank]}" 2>/dev/null && continue
        wait "${pids[$rank]}"
        rc=$?
        unset "pids[$rank]"
        ((rc)) || continue
        reason="exit status $rc"
        ((rc > 128)) && reason="killed by signal $((rc - 128))"
        echo "[Error] rank $rank failed ($reason)${pids[*]:+; stopping ranks ${!pids[*]}}." \
            "The end of $test_dir/output/$rank/train_$rank.log:"
        log_tail "$test_dir/output/$rank/train_$rank.log"
        stop_ranks "rank $rank failed ($reason)"
        exit $rc
    done
    sleep 1
done
trap - INT TERM
