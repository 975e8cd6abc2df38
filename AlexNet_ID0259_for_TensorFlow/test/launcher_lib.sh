# Body of AlexNet's launchers (sourced). The launcher sets: suffix (acc|perf), max_epoch, max_step, and
# multi_worker=True in the 8p launchers (RANK_SIZE workers, default 8; workers_lib.sh starts them).
# Output contract: ../../shared/docs/launcher_contract.md.

test_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
model_dir=$(dirname "$test_dir")
Network=$(basename "$model_dir")
me=$(basename "$0")

data_path=""
batch=100
learning_rate=0.001
init=scaled        # the original's: --init=original --pixels=raw (README: Training recipe)
pixels=unit
val_photos=1000
cache_mb=2048
log_every=20
precision_mode=allow_mix_precision
over_dump=False
data_dump_flag=False
data_dump_step=10
profiling=False
resume=False
worker_hosts=""
task_index=0
collective_timeout=300
: "${multi_worker:=False}"

help_text() {
    echo "usage: bash $me --data_path=<Dogs-vs-Cats folder: cat.<n>.jpg/dog.<n>.jpg or its parent> [options]"
    echo "  --max_epoch=N (default $max_epoch)   --max_step=N steps per epoch, 0 = full pass (default $max_step)"
    echo "  --batch=N | --batch_size=N (default $batch)   --learning_rate=LR (default $learning_rate)"
    echo "  --init=original|scaled initial weights (default $init)   --pixels=raw|unit network input (default $pixels)"
    echo "  --val_photos=N|F held-out source photos, count or fraction (default $val_photos)"
    echo "  --cache_mb=N decoded-image cache budget (default $cache_mb)   --log_every=N (default $log_every)"
    echo "  --precision_mode=allow_mix_precision|allow_fp32_to_fp16|force_fp16|must_keep_origin_dtype"
    echo "  --over_dump= --data_dump_flag= --data_dump_step= --profiling= (Ascend only)  --autotune= (ignored)"
    echo "  --resume=True  keep output/\$ASCEND_DEVICE_ID and continue from its model/model.ckpt"
    [ "$multi_worker" = True ] || return 0
    echo "Several workers: RANK_SIZE (default 8) x --batch images per step, lr x RANK_SIZE; on Ascend one process"
    echo "per NPU (RANK_TABLE_FILE, default test/8p.json), elsewhere RANK_SIZE processes on this host forming one"
    echo "tf.distribute cluster at free loopback ports, or one process per host with"
    echo "  --worker_hosts=H:P,H:P,... every worker's host:port (the same list on every host)"
    echo "  --task_index=I this host's position in --worker_hosts (0 writes checkpoints)"
    echo "  --collective_timeout=S seconds a worker waits for the others before it stops (default $collective_timeout)"
}

for arg in "$@"; do
    value="${arg#*=}"
    case "$arg" in
        --data_path=*) data_path=$value ;;
        --max_epoch=*|--epoch=*) max_epoch=$value ;;
        --max_step=*|--step=*) max_step=$value ;;
        --batch=*|--batch_size=*) batch=$value ;;
        --learning_rate=*) learning_rate=$value ;;
        --init=*) init=$value ;;
        --pixels=*) pixels=$value ;;
        --val_photos=*) val_photos=$value ;;
        --cache_mb=*) cache_mb=$value ;;
        --log_every=*) log_every=$value ;;
        --precision_mode=*) precision_mode=$value ;;
        --over_dump=*) over_dump=$value ;;
        --data_dump_flag=*) data_dump_flag=$value ;;
        --data_dump_step=*) data_dump_step=$value ;;
        --profiling=*) profiling=$value ;;
        --autotune=*) ;;
        --resume=*) resume=$value ;;
        --worker_hosts=*) worker_hosts=$value ;;
        --task_index=*) task_index=$value ;;
        --collective_timeout=*) collective_timeout=$value ;;
        -h|--help) help_text; exit 0 ;;
        *) echo "[Warning] $me: unknown argument $arg ignored" >&2 ;;
    esac
done

[ -n "$data_path" ] || { echo '[Error] para "data_path" must be config'; exit 1; }
[[ $data_path == /* ]] || data_path="$PWD/$data_path"

if [ "$multi_worker" = True ]; then
    export RANK_SIZE=${RANK_SIZE:-8}
else
    export RANK_SIZE=${RANK_SIZE:-1} RANK_ID=${RANK_ID:-0} ASCEND_DEVICE_ID=${ASCEND_DEVICE_ID:-0}
fi
export JOB_ID=${JOB_ID:-10087} ASCEND_GLOBAL_LOG_LEVEL=${ASCEND_GLOBAL_LOG_LEVEL:-3}

# Runs main.py for device $1 into output/$1/ (RANK_ID and, off Ascend, TF_CONFIG set by the 8p launchers);
# `exec` keeps the subshell's pid, which workers_lib.sh watches.
worker_command() {
    local out=$test_dir/output/$1
    if [ "$multi_worker" = True ]; then
        export RANK_ID=$1 ASCEND_DEVICE_ID=$1
        [ -z "$cluster_workers" ] || export TF_CONFIG="{\"cluster\": {\"worker\": [$cluster_workers]}, \"task\": {\"type\": \"worker\", \"index\": $1}}"
    fi
    cd "$model_dir" && exec python3 main.py --data_path="$data_path" --output_path="$out" --epoch="$max_epoch" \
        --step="$max_step" --batch_size="$batch" --learning_rate="$learning_rate" --init="$init" --pixels="$pixels" \
        --val_photos="$val_photos" --cache_mb="$cache_mb" --log_every="$log_every" --mul_rank_size="$RANK_SIZE" \
        --mul_device_id="$RANK_ID" --collective_timeout="$collective_timeout" \
        --precision_mode="$precision_mode" --over_dump="$over_dump" --data_dump_flag="$data_dump_flag" \
        --data_dump_step="$data_dump_step" --profiling="$profiling" >>"$out/train_$1.log" 2>&1
}

CaseName=${Network}_bs${batch}_${RANK_SIZE}p_${suffix}
start=$(date +%s)
if [ "$multi_worker" = True ]; then
    source "$test_dir/workers_lib.sh"
    launch_workers  # sets CaseName (the RANK_SIZE of --worker_hosts) and ASCEND_DEVICE_ID (the last local rank)
else
    [ "$resume" = True ] || rm -rf "$test_dir/output/$ASCEND_DEVICE_ID"   # a fresh run unless --resume=True
    mkdir -p "$test_dir/output/$ASCEND_DEVICE_ID"
    echo "$Network $CaseName: training, log in $test_dir/output/$ASCEND_DEVICE_ID/train_$ASCEND_DEVICE_ID.log"
    (worker_command "$ASCEND_DEVICE_ID")
fi
rc=$?
E2ETrainingTime=$(( $(date +%s) - start ))
out=$test_dir/output/$ASCEND_DEVICE_ID
log=$out/train_$ASCEND_DEVICE_ID.log
if [ $rc -ne 0 ]; then
    echo "[Error] main.py exited with status $rc; last lines of $log:"
    grep -v '^epoch [0-9]* step: ' "$log" | tail -n 5
    exit $rc
fi

# The original's markers: per-step "epoch <e> step: <i> step_time <t> FPS <f>", every 20 steps
# "progress : <p>%  loss :<l>", per epoch "test accuracy <a>". The first steps (graph warm-up) are left out
# of the speed unless there are too few.
grep '^epoch [0-9]* step: ' "$log" | awk '{print $6}' >"$out/step_times.txt"
TrainingTime=$(awk '{t[NR] = $1} END {s = (NR > 10) ? 6 : ((NR > 1) ? 2 : 1); n = 0; sum = 0;
    for (i = s; i <= NR; i++) {sum += t[i]; n++} if (n) printf "%.2f", 1000 * sum / n}' "$out/step_times.txt")
rm -f "$out/step_times.txt"
ActualFPS=$(awk -v ms="$TrainingTime" -v bs="$batch" -v r="$RANK_SIZE" 'BEGIN {if (ms > 0) printf "%.2f", 1000 * bs * r / ms}')
TrainAccuracy=$(grep '^test accuracy ' "$log" | tail -n 1 | awk '{print $NF}')
grep -o 'loss :[^ ]*' "$log" | cut -d: -f2 >"$out/${CaseName}_loss.txt"
ActualLoss=$(tail -n 1 "$out/${CaseName}_loss.txt")
for key in TrainingTime ActualFPS TrainAccuracy ActualLoss; do
    if [ -z "${!key}" ]; then
        echo "[Error] $me: $key not found in $log"
        exit 1
    fi
done

cat >"$out/${CaseName}.log" <<SUMMARY
Network = ${Network}
RankSize = ${RANK_SIZE}
BatchSize = ${batch}
DeviceType = $(uname -m)
CaseName = ${CaseName}
ActualFPS = ${ActualFPS}
TrainingTime = ${TrainingTime}
TrainAccuracy = ${TrainAccuracy}
ActualLoss = ${ActualLoss}
E2ETrainingTime = ${E2ETrainingTime}
SUMMARY

echo "------------------ Final result ------------------"
echo "Final Performance images/sec : $ActualFPS"
echo "Final Train Accuracy : $TrainAccuracy"
echo "E2E Training Duration sec : $E2ETrainingTime"
