# Body of the MobileNetV1 launchers; train_full_1p.sh / train_performance_1p.sh set these and source it:
#   suffix (acc|perf), max_train_steps, evaluate (True|False)
# Output layout and summary keys: shared/docs/launcher_contract.md.

test_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
model_dir=$(dirname "$test_dir")
Network=$(basename "$model_dir")
launcher=$(basename "$0")

# The original launchers' training settings; every one can be overridden as --name=value.
batch_size=256
iterations_per_loop=10
learning_rate=0.4
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

usage() {
    cat <<USAGE
usage: bash $launcher --data_path=<slim ImageNet TFRecords folder> [--name=value ...]
  --data_path=DIR            required; train-XXXXX-of-NNNNN (and validation-*) TFRecords
  --max_train_steps=N        default $max_train_steps
  --batch_size=N             per device, default $batch_size
  --iterations_per_loop=N    logging interval (Ascend: steps per device loop), default $iterations_per_loop
  --learning_rate=LR         default $learning_rate (cosine annealing, momentum 0.9)
  --warmup_epochs=E          default $warmup_epochs
  --image_size=N             train and eval image size, default $image_size
  --num_classes=N            default $num_classes (ImageNet 1000 + background)
  --labels_offset=N          subtracted from image/class/label, default $labels_offset
  --num_train_samples=N      samples per epoch, default $num_train_samples
  --batch_norm_decay=D       default $batch_norm_decay (short runs: 0.9)
  --eval_batch_size=N        default $eval_batch_size (train_full_1p.sh only)
  --precision_mode=MODE      allow_mix_precision (default) | allow_fp32_to_fp16 | force_fp16 | must_keep_origin_dtype
  --over_dump=True|False     Ascend overflow dump; elsewhere stop at the first inf/NaN op
  --resume=True              keep test/output/\$ASCEND_DEVICE_ID and continue from its last checkpoint
USAGE
}

# --name=value for any of these names sets the variable of that name.
options=" data_path max_train_steps batch_size iterations_per_loop learning_rate warmup_epochs image_size
    num_classes labels_offset num_train_samples batch_norm_decay eval_batch_size precision_mode over_dump resume "
for para in "$@"; do
    [ "$para" = -h ] || [ "$para" = --help ] && { usage; exit 0; }
    name=${para%%=*}
    name=${name#--}
    if [[ $para == --*=* && $options == *[[:space:]]$name[[:space:]]* ]]; then
        printf -v "$name" '%s' "${para#*=}"
    else
        echo "[Warning] $launcher: unknown argument $para ignored" >&2
    fi
done

if [ -z "$data_path" ]; then
    echo '[Error] para "data_path" must be config'
    exit 1
fi
case "$data_path" in /*) ;; *) data_path="$(pwd)/$data_path" ;; esac

# Ascend environment with the 1p defaults (the 8p launchers will export their own RANK_SIZE/RANK_ID).
: "${RANK_SIZE:=1}" "${RANK_ID:=0}" "${ASCEND_DEVICE_ID:=0}" "${JOB_ID:=10087}" "${ASCEND_GLOBAL_LOG_LEVEL:=3}"
export RANK_SIZE RANK_ID ASCEND_DEVICE_ID JOB_ID ASCEND_GLOBAL_LOG_LEVEL

CaseName=${Network}_bs${batch_size}_${RANK_SIZE}p_${suffix}
out=$test_dir/output/$ASCEND_DEVICE_ID
train_log=$out/train_$ASCEND_DEVICE_ID.log
eval_log=$out/eval_$ASCEND_DEVICE_ID.log
[ "$resume" = True ] || rm -rf "$out"
mkdir -p "$out/ckpt"

fail() {
    echo "[Error] $launcher: $1; the end of $2:"
    grep -v '^step:' "$2" | tail -n 5
    exit 1
}

start_time=$(date +%s)
echo "training $Network ($CaseName); log: $train_log"
(cd "$model_dir" && python3 train.py --dataset_dir="$data_path" --model_dir="$out/ckpt" \
    --max_train_steps="$max_train_steps" --iterations_per_loop="$iterations_per_loop" \
    --model_name=mobilenet_v1 --moving_average_decay=0.9999 --label_smoothing=0.1 \
    --preprocessing_name=inception_v2 --weight_decay=0.00004 --batch_size="$batch_size" \
    --learning_rate_decay_type=cosine_annealing --learning_rate="$learning_rate" --optimizer=momentum \
    --momentum=0.9 --warmup_epochs="$warmup_epochs" --train_image_size="$image_size" \
    --num_classes="$num_classes" --labels_offset="$labels_offset" --num_train_samples="$num_train_samples" \
    --batch_norm_decay="$batch_norm_decay" --precision_mode="$precision_mode" --over_dump="$over_dump") \
    >>"$train_log" 2>&1 || fail "train.py failed" "$train_log"

train_accuracy=NA
if [ "$evaluate" = True ]; then
    last_ckpt=$(grep '^last checkpoint: ' "$train_log" | tail -n 1 | sed 's/^last checkpoint: //')
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
