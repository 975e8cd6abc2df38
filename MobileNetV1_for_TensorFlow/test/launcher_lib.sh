# Body of the MobileNetV1 launchers; train_{full,performance}_{1p,8p}.sh set these and source it:
#   suffix (acc|perf), max_train_steps or max_epoch, evaluate (True|False), learning_rate,
#   multi_worker (True in the 8p launchers: RANK_SIZE workers, default 8)
# Output layout and summary keys: shared/docs/launcher_contract.md. The multi-worker part (start_workers and
# its helpers below) is self-contained so that other models' 8p launchers can reuse it.

test_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
model_dir=$(dirname "$test_dir")
Network=$(basename "$model_dir")
launcher=$(basename "$0")

# The original launchers' training settings; every one can be overridden as --name=value.
batch_size=256
iterations_per_loop=10
: "${learning_rate:=0.4}" "${max_epoch:=}" "${multi_worker:=False}"
warmup_epochs=5
image_size=224
num_classes=1001
labels_offset=0
num_train_samples=1281167
batch_norm_decay=0.9997
eval_batch_size=100
precision_mode=allow_mix_precision
over_dump=False
resume=False
data_path=""
worker_hosts=""
task_index=0
collective_timeout=300
cluster_workers=""

usage() {
    cat <<USAGE
usage: bash $launcher --data_path=<slim ImageNet TFRecords folder> [--name=value ...]
  --data_path=DIR            required; train-XXXXX-of-NNNNN (and validation-*) TFRecords
  --max_train_steps=N        default ${max_train_steps:-none}
  --max_epoch=N              default ${max_epoch:-none} (the last one given of these two counts)
  --batch_size=N             per device, default $batch_size
  --iterations_per_loop=N    logging interval (Ascend: steps per device loop), default $iterations_per_loop
  --learning_rate=LR         default $learning_rate (cosine annealing, momentum 0.9)
  --warmup_epochs=E          default $warmup_epochs
  --image_size=N             train and eval image size, default $image_size
  --num_classes=N            default $num_classes (ImageNet 1000 + background)
  --labels_offset=N          subtracted from image/class/label, default $labels_offset
  --num_train_samples=N      samples per epoch, default $num_train_samples
  --batch_norm_decay=D       default $batch_norm_decay (short runs: 0.9)
  --eval_batch_size=N        default $eval_batch_size (train_full_*.sh only)
  --precision_mode=MODE      allow_mix_precision (default) | allow_fp32_to_fp16 | force_fp16 | must_keep_origin_dtype
  --over_dump=True|False     Ascend overflow dump; elsewhere stop at the first inf/NaN op
  --resume=True              keep test/output/<device> (8p: every rank's) and continue from the last checkpoint
USAGE
    [ "$multi_worker" = True ] && cat <<USAGE
Several workers (RANK_SIZE, default 8; per-device batch, so the global batch is batch_size x RANK_SIZE):
  Ascend: one process per NPU, ASCEND_DEVICE_ID=RANK_ID, RANK_TABLE_FILE (default test/8p.json).
  Elsewhere: RANK_SIZE processes on this host forming one tf.distribute cluster at free loopback ports,
  or one process per host with
  --worker_hosts=H:P,H:P,...  every worker's host:port (same list on every host)
  --task_index=I             this host's position in --worker_hosts (0 writes checkpoints)
  --collective_timeout=S     seconds a worker waits for the others before it stops, default $collective_timeout
USAGE
}

# --name=value for any of these names sets the variable of that name.
options=" data_path max_train_steps max_epoch batch_size iterations_per_loop learning_rate warmup_epochs image_size
    num_classes labels_offset num_train_samples batch_norm_decay eval_batch_size precision_mode over_dump resume
    worker_hosts task_index collective_timeout "
for para in "$@"; do
    [ "$para" = -h ] || [ "$para" = --help ] && { usage; exit 0; }
    name=${para%%=*}
    name=${name#--}
    if [[ $para == --*=* && $options == *[[:space:]]$name[[:space:]]* ]]; then
        printf -v "$name" '%s' "${para#*=}"
        case $name in max_train_steps) max_epoch="" ;; max_epoch) max_train_steps="" ;; esac
    else
        echo "[Warning] $launcher: unknown argument $para ignored" >&2
    fi
done

if [ -z "$data_path" ]; then
    echo '[Error] para "data_path" must be config'
    exit 1
fi
case "$data_path" in /*) ;; *) data_path="$(pwd)/$data_path" ;; esac

if [ "$multi_worker" = True ]; then
    : "${RANK_SIZE:=8}"
else
    : "${RANK_SIZE:=1}" "${RANK_ID:=0}" "${ASCEND_DEVICE_ID:=0}"
fi
: "${JOB_ID:=10087}" "${ASCEND_GLOBAL_LOG_LEVEL:=3}"
export RANK_SIZE JOB_ID ASCEND_GLOBAL_LOG_LEVEL

fail() {
    echo "[Error] $launcher: $1; the end of $2:"
    grep -v '^step:' "$2" | tail -n 5
    exit 1
}

length=(--max_train_steps="$max_train_steps")
[ -n "$max_train_steps" ] || length=(--max_epoch="$max_epoch")
train_args=(--dataset_dir="$data_path" "${length[@]}" --iterations_per_loop="$iterations_per_loop"
    --model_name=mobilenet_v1 --moving_average_decay=0.9999 --label_smoothing=0.1
    --preprocessing_name=inception_v2 --weight_decay=0.00004 --batch_size="$batch_size"
    --learning_rate_decay_type=cosine_annealing --learning_rate="$learning_rate" --optimizer=momentum
    --momentum=0.9 --warmup_epochs="$warmup_epochs" --train_image_size="$image_size"
    --num_classes="$num_classes" --labels_offset="$labels_offset" --num_train_samples="$num_train_samples"
    --batch_norm_decay="$batch_norm_decay" --precision_mode="$precision_mode" --over_dump="$over_dump"
    --collective_timeout="$collective_timeout")

# A fresh output/<rank>/ (with ckpt/) for each local rank, unless resuming.
prepare_output() {
    [ "$resume" = True ] || rm -rf "$test_dir/output/$1"
    mkdir -p "$test_dir/output/$1/ckpt"
}

# Runs train.py for rank $1 with its log; `exec` keeps the worker's pid (start_workers watches it).
worker_command() {
    local out=$test_dir/output/$1
    [ "$multi_worker" = True ] && export RANK_ID=$1 ASCEND_DEVICE_ID=$1
    [ -z "$cluster_workers" ] ||
        export TF_CONFIG="{\"cluster\": {\"worker\": [$cluster_workers]}, \"task\": {\"type\": \"worker\", \"index\": $1}}"
    cd "$model_dir" && exec python3 train.py "${train_args[@]}" --model_dir="$out/ckpt" >>"$out/train_$1.log" 2>&1
}

# ---------------------------------------------------------------------------------------------------------
# Several workers. start_workers is generic (it only needs a worker_command RANK function that `exec`s the
# worker); launch_workers is this model's choice of ranks and environment.

# Prints N free TCP ports of this host (the kernel picks them; a port taken before the worker binds it
# makes train.py stop with a one-line error naming the port).
free_ports() {
    python3 -c 'import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$1"
}

# start_workers RANK...: runs `worker_command RANK` in the background for each rank given, the i-th of n
# bound with taskset to cores i*C/n .. (i+1)*C/n-1 of the C cores (left unbound when taskset is missing
# or C < n), then watches them once a second. Returns 0 when all exited 0. As soon as one exits non-zero it
# sets failed_rank and failed_status, stops the others (SIGTERM, SIGKILL after 10 s) and returns 1, so a
# lost worker never leaves the others waiting. Ctrl-C or SIGTERM of the launcher stops them all too.
start_workers() {
    local n=$# cores i=0 rank pid status first last
    cores=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN)
    worker_pids=() worker_ranks=() failed_rank="" failed_status=0
    for rank in "$@"; do
        first=$((i * cores / n)) last=$(((i + 1) * cores / n - 1))
        if command -v taskset >/dev/null && [ "$cores" -ge "$n" ]; then
            (taskset -pc "$first-$last" "$BASHPID" >/dev/null && worker_command "$rank") &
        else
            (worker_command "$rank") &
        fi
        worker_pids+=($!) worker_ranks+=("$rank")
        i=$((i + 1))
    done
    trap 'stop_workers; exit 130' INT TERM
    local running=$n
    while [ "$running" -gt 0 ]; do
        sleep 1
        for i in "${!worker_pids[@]}"; do
            pid=${worker_pids[$i]}
            [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null || continue
            wait "$pid"
            status=$?
            worker_pids[$i]="" running=$((running - 1))
            if [ "$status" -ne 0 ]; then
                failed_rank=${worker_ranks[$i]} failed_status=$status
                stop_workers
                trap - INT TERM
                return 1
            fi
        done
    done
    trap - INT TERM
}

stop_workers() {
    local pids=() pid tries
    for pid in "${worker_pids[@]}"; do [ -n "$pid" ] && pids+=("$pid"); done
    [ ${#pids[@]} -gt 0 ] || return 0
    kill -TERM "${pids[@]}" 2>/dev/null
    for tries in 1 2 3 4 5 6 7 8 9 10; do
        any_alive "${pids[@]}" || break
        sleep 1
    done
    kill -KILL "${pids[@]}" 2>/dev/null
    wait 2>/dev/null
}

any_alive() {
    local pid
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && return 0; done
    return 1
}

# "status 137 (killed by signal 9)" for an exit status.
describe_status() {
    if [ "$1" -gt 128 ]; then echo "status $1 (killed by signal $(($1 - 128)))"; else echo "status $1"; fi
}

# The ranks of this host, their environment, and the run. On Ascend (npu_bridge importable) as the
# originals: RANK_ID = ASCEND_DEVICE_ID = 0..RANK_SIZE-1, HCCL with RANK_TABLE_FILE. Elsewhere one
# tf.distribute cluster through TF_CONFIG: all workers on this host at free loopback ports, or with
# --worker_hosts the one worker --task_index of a cluster spread over several hosts.
launch_workers() {
    local ranks=() workers=() rank
    [[ $RANK_SIZE =~ ^[1-9][0-9]*$ ]] || { echo "[Error] $launcher: RANK_SIZE=$RANK_SIZE is not a positive integer"; exit 1; }
    if python3 -c 'import npu_bridge' 2>/dev/null; then
        export RANK_TABLE_FILE=${RANK_TABLE_FILE:-$test_dir/8p.json}
        ranks=($(seq 0 $((RANK_SIZE - 1))))
        echo "Ascend: $RANK_SIZE devices, rank table $RANK_TABLE_FILE"
    elif [ -n "$worker_hosts" ]; then
        IFS=, read -r -a workers <<<"$worker_hosts"
        RANK_SIZE=${#workers[@]}
        CaseName=${Network}_bs${batch_size}_${RANK_SIZE}p_${suffix}
        [[ $task_index =~ ^[0-9]+$ ]] && [ "$task_index" -lt "$RANK_SIZE" ] || {
            echo "[Error] $launcher: --task_index=$task_index is not in 0..$((RANK_SIZE - 1)) (--worker_hosts)"; exit 1; }
        ranks=("$task_index")
    else
        local port
        for port in $(free_ports "$RANK_SIZE"); do workers+=("localhost:$port"); done
        ranks=($(seq 0 $((RANK_SIZE - 1))))
    fi
    for rank in "${ranks[@]}"; do prepare_output "$rank"; done
    echo "training $Network ($CaseName): ${#ranks[@]} of $RANK_SIZE workers here; logs: $test_dir/output/<rank>/train_<rank>.log"
    if [ ${#workers[@]} -gt 0 ]; then  # the JSON list of TF_CONFIG (worker_command adds each one's index)
        cluster_workers=$(printf '"%s",' "${workers[@]}")
        cluster_workers=${cluster_workers%,}
    fi
    start_workers "${ranks[@]}" || {
        local log=$test_dir/output/$failed_rank/train_$failed_rank.log reason
        reason="worker $failed_rank (RANK_ID $failed_rank) exited with $(describe_status "$failed_status")"
        for rank in "${ranks[@]}"; do
            [ "$rank" = "$failed_rank" ] || echo "[Error] $launcher: stopped this worker: $reason" \
                >>"$test_dir/output/$rank/train_$rank.log"
        done
        fail "$reason; the other workers were stopped" "$log"
    }
    ASCEND_DEVICE_ID=${ranks[-1]}
}

CaseName=${Network}_bs${batch_size}_${RANK_SIZE}p_${suffix}
start_time=$(date +%s)
if [ "$multi_worker" = True ]; then
    launch_workers  # sets ASCEND_DEVICE_ID to the last local rank, whose log is reported, as the originals
    chief_log=$test_dir/output/0/train_0.log  # rank 0 alone checkpoints; absent on the other hosts
else
    export RANK_ID ASCEND_DEVICE_ID
    prepare_output "$ASCEND_DEVICE_ID"
    echo "training $Network ($CaseName); log: $test_dir/output/$ASCEND_DEVICE_ID/train_$ASCEND_DEVICE_ID.log"
    (worker_command "$ASCEND_DEVICE_ID") || fail "train.py failed" "$test_dir/output/$ASCEND_DEVICE_ID/train_$ASCEND_DEVICE_ID.log"
    chief_log=$test_dir/output/$ASCEND_DEVICE_ID/train_$ASCEND_DEVICE_ID.log
fi
out=$test_dir/output/$ASCEND_DEVICE_ID
train_log=$out/train_$ASCEND_DEVICE_ID.log
eval_log=$out/eval_$ASCEND_DEVICE_ID.log
train_accuracy=NA
if [ "$evaluate" = True ] && [ ! -f "$chief_log" ]; then
    echo "[Warning] $launcher: rank 0 runs on another host; it evaluates there (TrainAccuracy NA here)" >&2
elif [ "$evaluate" = True ]; then
    last_ckpt=$(grep -s '^last checkpoint: ' "$chief_log" | tail -n 1 | sed 's/^last checkpoint: //')
    [ -n "$last_ckpt" ] && [ "$last_ckpt" != None ] || fail "no checkpoint to evaluate" "$train_log"
    (cd "$model_dir" && python3 eval_image_classifier_mobilenet.py --checkpoint_path="$last_ckpt" \
        --dataset_dir="$data_path" --eval_dir="$out/eval" --model_name=mobilenet_v1 \
        --moving_average_decay=0.9999 --eval_image_size="$image_size" --num_classes="$num_classes" \
        --labels_offset="$labels_offset" --batch_size="$eval_batch_size") >>"$eval_log" 2>&1 \
        || fail "eval_image_classifier_mobilenet.py failed" "$eval_log"
    train_accuracy=$(grep '^top1: ' "$eval_log" | tail -n 1 | awk '{print $2}')
fi
end_time=$(date +%s)

# Step lines: "step:<n>  epoch:<e> ips:<i> loss:<l>  total_loss:<t>  lr:<r>, " - read by field name, not position.
field() { awk -v key="$1:" '/^step:/ {for (i = 1; i <= NF; i++) if (index($i, key) == 1) print substr($i, length(key) + 1)}' "$train_log"; }
field loss >"$out/train_${CaseName}_loss.txt"
ActualLoss=$(tail -n 1 "$out/train_${CaseName}_loss.txt")
# The first logging interval includes graph building and warm-up; it is left out when there are others.
ActualFPS=$(field ips | awk '{v[NR] = $1} END {
    if (NR == 0) {print "NA"; exit}
    first = (NR > 1) ? 2 : 1; s = 0; for (i = first; i <= NR; i++) s += v[i]; printf "%.2f", s / (NR - first + 1)}')
[ -n "$ActualLoss" ] || fail "no step lines (nothing trained; --resume=True past max_train_steps?)" "$train_log"
TrainingTime=$(awk -v fps="$ActualFPS" -v b="$batch_size" -v n="$RANK_SIZE" 'BEGIN {printf "%.2f", b * n * 1000 / fps}')
E2ETrainingTime=$((end_time - start_time))

RankSize=$RANK_SIZE
BatchSize=$batch_size
DeviceType=$(uname -m)
TrainAccuracy=$train_accuracy
for key in Network RankSize BatchSize DeviceType CaseName ActualFPS TrainingTime TrainAccuracy ActualLoss \
        E2ETrainingTime; do
    echo "$key = ${!key}"
done >"$out/${CaseName}.log"

printf '%s\n' "------------------ Final result ------------------" \
    "Final Performance images/sec : $ActualFPS" \
    "Final Train Accuracy : $TrainAccuracy" \
    "E2E Training Duration sec : $E2ETrainingTime"
