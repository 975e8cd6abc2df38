# Shared body of the cosine_metric_learning launchers (sourced). The launcher sets before sourcing:
#   suffix (acc|perf), steps (training steps), evaluate (True: validation CMC after training)
# Contract: ../../shared/docs/launcher_contract.md (output tree, summary keys, final block).

cur_path=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
model_path=$(dirname "$cur_path")
Network=$(basename "$model_path")
launcher=$(basename "$0")

batch_size=128
learning_rate=0.001
loss_mode=cosine-softmax
data_path=""
resume=False
precision_mode=allow_mix_precision
over_dump=False
data_dump_flag=False
data_dump_step=10
profiling=False
autotune=False

usage() {
    cat <<USAGE
usage: bash $launcher --data_path=<Market-1501 folder> [options]
  --data_path=PATH       required: folder with bounding_box_train/ (Market-1501 layout)
  --batch_size=N         images per step, divisible by 4 (N/4 identities x 4 images); default $batch_size
  --steps=N              training steps, default $steps
  --learning_rate=LR     Adam learning rate, default $learning_rate
  --loss_mode=MODE       cosine-softmax | magnet | triplet, default $loss_mode
  --resume=True          keep output/\$ASCEND_DEVICE_ID and continue from its last checkpoint
  --precision_mode=MODE  allow_mix_precision | allow_fp32_to_fp16 | force_fp16 | must_keep_origin_dtype,
                         default $precision_mode (off Ascend: fp16 mixed on GPU, bf16 on a CPU with native
                         bf16, else float32; the log's 'device:' line says which)
  --over_dump= --data_dump_flag= --data_dump_step= --profiling= --autotune=
                         Ascend only (True/False; dump step N): overflow / data dumps, profiling and
                         RL,GA auto-tuning, written under output/\$ASCEND_DEVICE_ID/ckpt/run/
USAGE
}

for para in "$@"; do
    case "$para" in
        --data_path=*) data_path="${para#*=}" ;;
        --batch_size=*) batch_size="${para#*=}" ;;
        --steps=*) steps="${para#*=}" ;;
        --learning_rate=*) learning_rate="${para#*=}" ;;
        --loss_mode=*) loss_mode="${para#*=}" ;;
        --resume=*) resume="${para#*=}" ;;
        --precision_mode=*) precision_mode="${para#*=}" ;;
        --over_dump=*) over_dump="${para#*=}" ;;
        --data_dump_flag=*) data_dump_flag="${para#*=}" ;;
        --data_dump_step=*) data_dump_step="${para#*=}" ;;
        --profiling=*) profiling="${para#*=}" ;;
        --autotune=*) autotune="${para#*=}" ;;
        -h|--help) usage; exit 0 ;;
        *) echo "[Warning] $launcher: unknown argument $para ignored" >&2 ;;
    esac
done

if [ -z "$data_path" ]; then
    echo '[Error] para "data_path" must be config'
    exit 1
fi
case "$data_path" in /*) ;; *) data_path="$(pwd)/$data_path" ;; esac

export RANK_SIZE=${RANK_SIZE:-1}
export RANK_ID=${RANK_ID:-0}
export ASCEND_DEVICE_ID=${ASCEND_DEVICE_ID:-0}
export JOB_ID=${JOB_ID:-10087}
export ASCEND_GLOBAL_LOG_LEVEL=${ASCEND_GLOBAL_LOG_LEVEL:-3}

CaseName=${Network}_bs${batch_size}_${RANK_SIZE}p_${suffix}
out=$cur_path/output/$ASCEND_DEVICE_ID
log=$out/train_$ASCEND_DEVICE_ID.log
eval_log=$out/eval_$ASCEND_DEVICE_ID.log
if [ "$resume" != True ]; then
    rm -rf "$out"
fi
mkdir -p "$out/ckpt"
common=(--dataset_dir="$data_path" --log_dir="$out/ckpt" --run_id=run --eval_log_dir="$out/eval"
        --batch_size="$batch_size" --loss_mode="$loss_mode" --precision_mode="$precision_mode"
        --over_dump="$over_dump" --data_dump_flag="$data_dump_flag" --data_dump_step="$data_dump_step"
        --profiling="$profiling" --autotune="$autotune")

fail() {
    echo "[Error] $launcher: $1 failed with exit status $2; the end of $3:"
    grep -v '^step ' "$3" | tail -n 5
    exit "$2"
}

start_time=$(date +%s)
echo "training $Network ($CaseName); log: $log"
(cd "$model_path" && python3 train_market1501.py --mode=train "${common[@]}" --number_of_steps="$steps" \
    --learning_rate="$learning_rate") >>"$log" 2>&1 || fail "training" $? "$log"
train_accuracy=NA
if [ "$evaluate" = True ]; then
    (cd "$model_path" && python3 train_market1501.py --mode=eval --eval_once "${common[@]}") >"$eval_log" 2>&1 \
        || fail "evaluation" $? "$eval_log"
    train_accuracy=$(grep '^Precision@1 : ' "$eval_log" | tail -n 1 | awk '{print $NF}')
fi
end_time=$(date +%s)

marker() { grep "$1" "$log" | tail -n 1 | awk '{print $NF}'; }
ActualFPS=$(marker "^Final Performance images/sec : ")
TrainingTime=$(marker "^Final Performance ms/step : ")
grep '^step [0-9]*, loss ' "$log" | awk '{print $4}' >"$out/train_${CaseName}_loss.txt"
ActualLoss=$(tail -n 1 "$out/train_${CaseName}_loss.txt")
for name in ActualFPS TrainingTime train_accuracy ActualLoss; do
    if [ -z "${!name}" ]; then
        echo "[Error] $launcher: no value for $name in $log"
        exit 1
    fi
done
E2ETrainingTime=$((end_time - start_time))

{
    echo "Network = ${Network}"
    echo "RankSize = ${RANK_SIZE}"
    echo "BatchSize = ${batch_size}"
    echo "DeviceType = $(uname -m)"
    echo "CaseName = ${CaseName}"
    echo "ActualFPS = ${ActualFPS}"
    echo "TrainingTime = ${TrainingTime}"
    echo "TrainAccuracy = ${train_accuracy}"
    echo "ActualLoss = ${ActualLoss}"
    echo "E2ETrainingTime = ${E2ETrainingTime}"
} >"$out/${CaseName}.log"

echo "------------------ Final result ------------------"
echo "Final Performance images/sec : $ActualFPS"
echo "Final Train Accuracy : $train_accuracy"
echo "E2E Training Duration sec : $E2ETrainingTime"
