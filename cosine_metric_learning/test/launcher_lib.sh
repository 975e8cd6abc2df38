# cosine_metric_learning's part of its launchers (sourced): the flags, the train_market1501.py command lines
# and the loss file; the summary comes from the result.json that training writes and eval completes. The launcher sets suffix (acc|perf), evaluate (True: validation CMC after training) and
# any flag default before sourcing. The shared steps are in launcher_common.sh (a vendored copy; see its header).

source "$(dirname "${BASH_SOURCE[0]}")/launcher_common.sh"
step_lines='^step '

flag data_path "" text "Market-1501 folder with bounding_box_train/"
flag batch_size 128 int "images per step, divisible by 4 (N/4 identities x 4 images)"
flag steps 100 int "training steps"
flag learning_rate 0.001 number "Adam learning rate"
flag loss_mode cosine-softmax "cosine-softmax|magnet|triplet" "loss"
flag precision_mode allow_mix_precision "$PRECISION_MODES" "off Ascend: fp16 mixed on GPU, bf16 on a CPU with native bf16, else float32; the log's 'device:' line says which"
flag over_dump False bool "Ascend overflow dump, under output/<device>/ckpt/run/"
flag data_dump_flag False bool "Ascend data dump"
flag data_dump_step 10 count "Ascend data dump step"
flag profiling False bool "Ascend profiling"
flag autotune False bool "Ascend RL,GA auto-tuning"
flag save_interval_secs 300 number "seconds between checkpoints (also one at step 0, on SIGTERM / Ctrl-C and at the end)"
script_flag dataset_dir data_path
script_flag number_of_steps steps
parse_flags "$@"
check_flags
start_single "$batch_size"
mkdir -p "$out/ckpt"
common=(--dataset_dir="$data_path" --log_dir="$out/ckpt" --run_id=run --eval_log_dir="$out/eval"
    --batch_size="$batch_size" --loss_mode="$loss_mode" --precision_mode="$precision_mode"
    --over_dump="$over_dump" --data_dump_flag="$data_dump_flag" --data_dump_step="$data_dump_step"
    --profiling="$profiling" --autotune="$autotune" --result_dir="$out" --launcher="$launcher")

run_python train_market1501.py "$log" --mode=train "${common[@]}" --number_of_steps="$steps" \
    --learning_rate="$learning_rate" --save_interval_secs="$save_interval_secs"
if [ "$evaluate" = True ]; then  # adds the validation Precision@1 (TrainAccuracy) to result.json
    run_python train_market1501.py "$out/eval_$ASCEND_DEVICE_ID.log" --mode=eval --eval_once "${common[@]}"
fi

loss_file=$out/train_${CaseName}_loss.txt
grep '^step [0-9]*, loss ' "$log" | awk '{print $4}' >"$loss_file"
finish_from_result TrainAccuracy
