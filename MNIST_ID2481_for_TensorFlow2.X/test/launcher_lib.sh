# Body shared by the MNIST TF2 launchers (sourced). The launcher sets `suffix` (CaseName ending) and
# `eval_static` (True|False) first. Contract: shared/docs/launcher_contract.md.

test_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
model_dir=$(dirname "$test_dir")
Network=$(basename "$model_dir")
me=$(basename "$0")

data_path=""
batch_size=1024
train_epochs=10
resume=False
extra=()  # mnist_main.py flags passed through unchanged
passthrough="learning_rate momentum seed epochs_between_evals precision_mode over_dump data_dump_flag \
data_dump_step profiling use_mixlist mixlist_file fusion_off_flag fusion_off_file"

usage() {
    echo "usage: bash $me --data_path=<folder with mnist/3.0.1> [--name=value ...]"
    echo "  --batch_size=N (default $batch_size)  --train_epochs=N (default $train_epochs)"
    echo "  --resume=True: keep output/\$ASCEND_DEVICE_ID and continue from its last epoch checkpoint"
    echo "  passed to mnist_main.py: $passthrough"
    echo "  --autotune accepted and ignored; see the README for every flag"
}

for arg in "$@"; do
    name=${arg%%=*}; name=${name#--}; value=${arg#*=}
    case "$arg" in
        -h|--help) usage; exit 0 ;;
        --data_path=*) data_path=$value ;;
        --batch_size=*) batch_size=$value ;;
        --train_epochs=*) train_epochs=$value ;;
        --resume=*) resume=$value ;;
        --autotune=*) ;;
        --*=*)
            if [[ " $passthrough " == *" $name "* ]]; then extra+=("$arg")
            else echo "[Warning] $me: unknown argument $arg ignored" >&2; fi ;;
        *) echo "[Warning] $me: unknown argument $arg ignored" >&2 ;;
    esac
done
if [ -z "$data_path" ]; then
    echo '[Error] para "data_path" must be config'
    exit 1
fi
[[ "$data_path" == /* ]] || data_path="$PWD/$data_path"

export RANK_SIZE=${RANK_SIZE:-1} RANK_ID=${RANK_ID:-0} ASCEND_DEVICE_ID=${ASCEND_DEVICE_ID:-0}
export JOB_ID=${JOB_ID:-10087} ASCEND_GLOBAL_LOG_LEVEL=${ASCEND_GLOBAL_LOG_LEVEL:-3}
CaseName=${Network}_bs${batch_size}_${RANK_SIZE}p_${suffix}
out=$test_dir/output/$ASCEND_DEVICE_ID
log=$out/train_$ASCEND_DEVICE_ID.log
[ "$resume" = True ] || rm -rf "$out"
mkdir -p "$out/ckpt"

start=$(date +%s)
echo "training $Network ($CaseName); log: $log"
(cd "$model_dir" && python3 mnist_main.py --data_dir="$data_path" --model_dir="$out/ckpt" \
    --train_epochs="$train_epochs" --batch_size="$batch_size" --eval_static="$eval_static" --download=False \
    "${extra[@]}") >>"$log" 2>&1
rc=$?
end=$(date +%s)
if [ $rc -ne 0 ]; then
    echo "[Error] mnist_main.py failed with exit status $rc; the end of $log:"
    grep -v '^step:' "$log" | tail -n 5
    exit $rc
fi

# The markers mnist_main.py prints (common.StepLogger and the Keras evaluate line).
last() { grep "$1" "$log" | tail -n 1 | awk '{print $NF}'; }
grep '^step:' "$log" | awk '{print $3}' >"$out/train_${CaseName}_loss.txt"
TrainingTime=$(last '^ms/step: ')
ActualFPS=$(last '^imgs/s: ')
TrainAccuracy=$(last ' - sparse_categorical_accuracy: ')
TrainDuration=$(last '^Final Training Duration sec : ')
ActualLoss=$(tail -n 1 "$out/train_${CaseName}_loss.txt")
for key in TrainingTime ActualFPS TrainAccuracy TrainDuration ActualLoss; do
    [ -n "${!key}" ] || { echo "[Error] $me: no value for $key in $log"; exit 1; }
done
E2ETrainingTime=$((end - start))
printf '%s\n' "Network = $Network" "RankSize = $RANK_SIZE" "BatchSize = $batch_size" \
    "DeviceType = $(uname -m)" "CaseName = $CaseName" "ActualFPS = $ActualFPS" "TrainingTime = $TrainingTime" \
    "TrainAccuracy = $TrainAccuracy" "ActualLoss = $ActualLoss" "E2ETrainingTime = $E2ETrainingTime" \
    >"$out/$CaseName.log"

echo "Final Training Duration sec : $TrainDuration"
echo "------------------ Final result ------------------"
echo "Final Performance images/sec : $ActualFPS"
echo "Final Train Accuracy : $TrainAccuracy"
echo "E2E Training Duration sec : $E2ETrainingTime"
