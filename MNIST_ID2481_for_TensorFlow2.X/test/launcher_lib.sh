# Body shared by the MNIST TF2 launchers (sourced). The launcher sets `suffix` (CaseName ending),
# `eval_static` (True|False) and, for several ranks, `multi_rank=True` first (ranks.sh then starts them).
# Contract: shared/docs/launcher_contract.md.

test_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
model_dir=$(dirname "$test_dir")
Network=$(basename "$model_dir")
me=$(basename "$0")

data_path=""
batch_size=1024
train_epochs=10
resume=False
worker_hosts=""
task_index=""
extra=()  # mnist_main.py flags passed through unchanged
passthrough="learning_rate momentum seed epochs_between_evals precision_mode over_dump data_dump_flag \
data_dump_step profiling use_mixlist mixlist_file fusion_off_flag fusion_off_file collective_timeout"

usage() {
    echo "usage: bash $me --data_path=<folder with mnist/3.0.1> [--name=value ...]"
    echo "  --batch_size=N (default $batch_size)  --train_epochs=N (default $train_epochs)"
    echo "  --resume=True: keep test/output/ and continue from the last epoch checkpoint there"
    echo "  passed to mnist_main.py: $passthrough"
    echo "  --autotune accepted and ignored; see the README for every flag"
    if [ "$multi_rank" = True ]; then
        echo "  RANK_SIZE=N workers on this host (default 8), one core range each; RANK_TABLE_FILE (Ascend)"
        echo "  several hosts (off Ascend): --worker_hosts=host1:port,host2:port,... --task_index=I on host I"
    fi
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
        --worker_hosts=*|--task_index=*)
            if [ "$multi_rank" = True ]; then printf -v "$name" '%s' "$value"
            else echo "[Warning] $me: $arg is for the multi-rank launcher; ignored" >&2; fi ;;
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

export JOB_ID=${JOB_ID:-10087} ASCEND_GLOBAL_LOG_LEVEL=${ASCEND_GLOBAL_LOG_LEVEL:-3}
main_args=(--data_dir="$data_path" --train_epochs="$train_epochs" --batch_size="$batch_size"
    --eval_static="$eval_static" --download=False "${extra[@]}")

# Prints the end of a failed training log (without the per-step lines).
log_tail() { grep -v '^step:' "$1" | tail -n 5; }

start=$(date +%s)
if [ "$multi_rank" = True ]; then
    source "$test_dir/ranks.sh"  # sets out, log (the last rank on this host) and fps_factor, or exits
else
    export RANK_SIZE=${RANK_SIZE:-1} RANK_ID=${RANK_ID:-0} ASCEND_DEVICE_ID=${ASCEND_DEVICE_ID:-0}
    CaseName=${Network}_bs${batch_size}_${RANK_SIZE}p_${suffix}
    out=$test_dir/output/$ASCEND_DEVICE_ID
    log=$out/train_$ASCEND_DEVICE_ID.log
    fps_factor=1
    [ "$resume" = True ] || rm -rf "$out"
    mkdir -p "$out/ckpt"
    echo "training $Network ($CaseName); log: $log"
    (cd "$model_dir" && python3 mnist_main.py --model_dir="$out/ckpt" "${main_args[@]}") >>"$log" 2>&1
    rc=$?
    if [ $rc -ne 0 ]; then
        echo "[Error] mnist_main.py failed with exit status $rc; the end of $log:"
        log_tail "$log"
        exit $rc
    fi
fi
end=$(date +%s)

# The markers mnist_main.py prints (common.StepLogger and the Keras evaluate line).
last() { grep "$1" "$log" | tail -n 1 | awk '{print $NF}'; }
grep '^step:' "$log" | awk '{print $3}' >"$out/train_${CaseName}_loss.txt"
TrainingTime=$(last '^ms/step: ')
ActualFPS=$(last '^imgs/s: ')
# Every rank logs its own images/sec; the ranks run in step, so the global rate is that times the ranks.
[ -z "$ActualFPS" ] || ActualFPS=$(awk -v f="$ActualFPS" -v n="$fps_factor" 'BEGIN {printf "%.2f", f * n}')
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
