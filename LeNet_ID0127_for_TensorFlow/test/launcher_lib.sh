# Shared body of the LeNet launchers (sourced, not run). The launcher sets, before sourcing it:
#   suffix (acc|perf), epochs, steps, accuracy_key (TrainAccuracy|Accuracy)
# Contract: ../../shared/docs/launcher_contract.md (output tree, summary keys, final block).

cur_path=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
model_path=$(dirname "$cur_path")
Network=$(basename "$model_path")
launcher=$(basename "$0")

batch_size=64
learning_rate=0.001
data_path=""
precision_mode="allow_mix_precision"
over_dump=False
data_dump_flag=False
data_dump_step=10
profiling=False
autotune=False
resume=False

usage() {
    cat <<USAGE
usage: bash $launcher --data_path=<folder with the MNIST idx files> [options]
  --data_path=PATH        required: train-/t10k- images and labels (.gz or plain)
  --batch_size=N          default $batch_size
  --learning_rate=LR      Adam learning rate, default $learning_rate
  --epochs=N              default $epochs
  --steps=N               steps per epoch, default $steps
  --precision_mode=MODE   allow_fp32_to_fp16 | force_fp16 | must_keep_origin_dtype | allow_mix_precision
                          (default $precision_mode; off Ascend see the model README)
  --over_dump=True|False  --data_dump_flag=True|False  --data_dump_step=N  --profiling=True|False (Ascend)
  --autotune=True|False   accepted for compatibility; no effect
  --resume=True           keep output/\$ASCEND_DEVICE_ID and continue from its last checkpoint
                          (default: the folder is removed and the run starts from scratch)
USAGE
}

for para in "$@"; do
    case "$para" in
        --data_path=*) data_path="${para#*=}" ;;
        --batch_size=*) batch_size="${para#*=}" ;;
        --learning_rate=*) learning_rate="${para#*=}" ;;
        --epochs=*) epochs="${para#*=}" ;;
        --steps=*) steps="${para#*=}" ;;
        --precision_mode=*) precision_mode="${para#*=}" ;;
        --over_dump=*) over_dump="${para#*=}" ;;
        --data_dump_flag=*) data_dump_flag="${para#*=}" ;;
        --data_dump_step=*) data_dump_step="${para#*=}" ;;
        --profiling=*) profiling="${para#*=}" ;;
        --autotune=*) autotune="${para#*=}" ;;
        --resume=*) resume="${para#*=}" ;;
        -h|--help) usage; exit 0 ;;
        *) echo "[Warning] $launcher: unknown argument $para ignored" >&2 ;;
    esac
done

if [ -z "$data_path" ]; then
    echo '[Error] para "data_path" must be config'
    exit 1
fi
# The Python script runs from the model folder; a relative --data_path means relative to the caller.
case "$data_path" in /*) ;; *) data_path="$(pwd)/$data_path" ;; esac

export RANK_SIZE=${RANK_SIZE:-1}
export RANK_ID=${RANK_ID:-0}
export ASCEND_DEVICE_ID=${ASCEND_DEVICE_ID:-0}
export JOB_ID=${JOB_ID:-10087}
export ASCEND_GLOBAL_LOG_LEVEL=${ASCEND_GLOBAL_LOG_LEVEL:-3}

CaseName=${Network}_bs${batch_size}_${RANK_SIZE}p_${suffix}
out=$cur_path/output/$ASCEND_DEVICE_ID
log=$out/train_$ASCEND_DEVICE_ID.log
if [ "$resume" != True ]; then
    rm -rf "$out"
fi
mkdir -p "$out"

start_time=$(date +%s)
echo "training $Network ($CaseName); log: $log"
(cd "$model_path" && python3 LeNet.py --data_path="$data_path" --output_path="$out" \
    --batch_size="$batch_size" --learning_rate="$learning_rate" --epochs="$epochs" --steps="$steps" \
    --precision_mode="$precision_mode" --over_dump="$over_dump" --data_dump_flag="$data_dump_flag" \
    --data_dump_step="$data_dump_step" --profiling="$profiling") >>"$log" 2>&1
status=$?
end_time=$(date +%s)
if [ $status -ne 0 ]; then
    echo "[Error] LeNet.py failed with exit status $status; the end of $log:"
    grep -v '^epoch : ' "$log" | tail -n 5
    exit $status
fi

# Values come from the markers LeNet.py prints (the original launcher's greps).
marker() { grep "$1" "$log" | tail -n 1 | awk '{print $NF}'; }
TrainingTime=$(marker "Final Performance ms/step")
train_accuracy=$(marker "Final Accuracy accuracy")
grep "^epoch : .*----loss : " "$log" | awk -F'----' '{split($3, a, " : "); print a[2]}' >"$out/train_${CaseName}_loss.txt"
ActualLoss=$(tail -n 1 "$out/train_${CaseName}_loss.txt")
for name in TrainingTime train_accuracy ActualLoss; do
    if [ -z "${!name}" ]; then
        echo "[Error] $launcher: no value for $name in $log"
        exit 1
    fi
done
# NA: a resumed run that found nothing left to train has no step time.
ActualFPS=$(awk -v bs="$batch_size" -v ms="$TrainingTime" -v n="$RANK_SIZE" \
    'BEGIN {if (ms == "NA") print "NA"; else printf "%.2f", bs * n * 1000 / ms}')
E2ETrainingTime=$((end_time - start_time))

{
    echo "Network = ${Network}"
    echo "RankSize = ${RANK_SIZE}"
    echo "BatchSize = ${batch_size}"
    echo "DeviceType = $(uname -m)"
    echo "CaseName = ${CaseName}"
    echo "ActualFPS = ${ActualFPS}"
    echo "TrainingTime = ${TrainingTime}"
    echo "${accuracy_key} = ${train_accuracy}"
    echo "ActualLoss = ${ActualLoss}"
    echo "E2ETrainingTime = ${E2ETrainingTime}"
} >"$out/${CaseName}.log"

echo "------------------ Final result ------------------"
echo "Final Performance images/sec : $ActualFPS"
echo "Final Train Accuracy : $train_accuracy"
echo "E2E Training Duration sec : $E2ETrainingTime"
