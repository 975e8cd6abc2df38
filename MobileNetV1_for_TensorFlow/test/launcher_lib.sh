# MobileNetV1's part of its launchers (sourced): the flags, the train.py and evaluation command lines and
# the loss file. Timing and accuracy come from the result.json each rank's train.py writes into its output
# folder (the evaluation adds top-1 to the reporting folder's). The launcher sets suffix (acc|perf), evaluate
# (True|False), max_train_steps or max_epoch, multi_worker=True in the 8p launchers (workers.sh starts RANK_SIZE
# workers) and any flag default before sourcing. The shared steps are in launcher_common.sh and workers.sh (vendored copies; see their headers).

source "$(dirname "${BASH_SOURCE[0]}")/launcher_common.sh"
source "$(dirname "${BASH_SOURCE[0]}")/workers.sh"
step_lines='^step:|^I[0-9]{4} .* logger\.py:56\] step:'  # bare and absl-prefixed (logger.py)

flag data_path "" text "slim ImageNet TFRecords folder: train-XXXXX-of-NNNNN (and validation-*)"
alias_flag dataset_dir data_path  # the original's name
script_flag dataset_dir data_path  # train.py's and the evaluation's name for it
flag max_train_steps "" int "training steps"
flag max_epoch "" int "training epochs (the last one given of --max_train_steps and --max_epoch counts)"
flag batch_size 256 int "images per step per device"
flag iterations_per_loop 10 int "logging interval (Ascend: steps per device loop)"
flag learning_rate 0.4 number "peak learning rate (cosine annealing, momentum 0.9)"
flag warmup_epochs 5 number "warm-up epochs"
flag image_size 224 int "train and eval image size"
script_flag train_image_size image_size  # one script name per flag: train.py runs first and checks it
flag num_classes 1001 int "classes (ImageNet 1000 + background)"
flag labels_offset 0 count "subtracted from image/class/label"
flag num_train_samples 1281167 int "samples per epoch"
flag batch_norm_decay 0.9997 number "batch norm decay (short runs: 0.9)"
flag eval_batch_size 100 int "evaluation batch (train_full_*.sh only)"
flag precision_mode allow_mix_precision "$PRECISION_MODES" "off Ascend see the model README"
flag over_dump False bool "Ascend overflow dump; elsewhere stop at the first inf/NaN op"
flag collective_timeout 300 int "seconds a worker waits for the others before it stops"
[ "$multi_worker" != True ] || worker_flags
parse_flags "$@"
for arg in "$@"; do
    case $arg in --max_train_steps=*) max_epoch="" ;; --max_epoch=*) max_train_steps="" ;; esac
done
check_flags

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
export ZOO_LAUNCHER=$launcher  # result.json's launcher

if [ "$multi_worker" = True ]; then
    worker_command() {
        mkdir -p "$test_dir/output/$1/ckpt"
        cd "$model_dir" && exec python3 train.py "${train_args[@]}" --model_dir="$test_dir/output/$1/ckpt" \
            --result_dir="$test_dir/output/$1" >>"$(rank_log "$1")" 2>&1
    }
    start_workers npu_bridge "$batch_size"
    chief_log=$test_dir/output/0/train_0.log  # rank 0 alone checkpoints; absent on the other hosts
else
    start_single "$batch_size"
    mkdir -p "$out/ckpt"
    run_python train.py "$log" "${train_args[@]}" --model_dir="$out/ckpt" --result_dir="$out"
    chief_log=$log
fi

if [ "$evaluate" = True ] && [ ! -f "$chief_log" ]; then
    echo "[Warning] $launcher: rank 0 runs on another host; it evaluates there (TrainAccuracy NA here)" >&2
elif [ "$evaluate" = True ]; then
    eval_log=$out/eval_$ASCEND_DEVICE_ID.log
    last_ckpt=$(grep -s '^last checkpoint: ' "$chief_log" | tail -n 1 | sed 's/^last checkpoint: //')
    [ -n "$last_ckpt" ] && [ "$last_ckpt" != None ] || fail "$launcher: no checkpoint to evaluate" "$log"
    run_python eval_image_classifier_mobilenet.py "$eval_log" --checkpoint_path="$last_ckpt" \
        --dataset_dir="$data_path" --eval_dir="$out/eval" --model_name=mobilenet_v1 --moving_average_decay=0.9999 \
        --eval_image_size="$image_size" --num_classes="$num_classes" --labels_offset="$labels_offset" \
        --batch_size="$eval_batch_size" --result_dir="$out"
fi

# Step lines: "step:<n>  epoch:<e> ips:<i> loss:<l>  total_loss:<t>  lr:<r>, " - read by field name, not position.
field() { awk -v key="$1:" '/^step:/ {for (i = 1; i <= NF; i++) if (index($i, key) == 1) print substr($i, length(key) + 1)}' "$log"; }
loss_file=$out/train_${CaseName}_loss.txt
field loss >"$loss_file"
[ -s "$loss_file" ] || fail "$launcher: no step lines (nothing trained; --resume=True past max_train_steps?)" "$log"
finish_from_result TrainAccuracy
