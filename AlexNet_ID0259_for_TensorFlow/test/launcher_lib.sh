# AlexNet's part of its launchers (sourced): the flags, the main.py command line and the metrics. The
# launcher sets suffix (acc|perf), multi_worker=True in the 8p launchers (workers.sh starts RANK_SIZE
# workers) and any flag default before sourcing. The shared steps are in launcher_common.sh and workers.sh
# (vendored copies; see their headers).

source "$(dirname "${BASH_SOURCE[0]}")/launcher_common.sh"
source "$(dirname "${BASH_SOURCE[0]}")/workers.sh"
step_lines='^epoch [0-9]* step: '

flag data_path "" text "Dogs-vs-Cats folder: cat.<n>.jpg/dog.<n>.jpg or its parent"
flag max_epoch 1 int "epochs"
alias_flag epoch max_epoch
flag max_step 0 count "steps per epoch, 0 = a full pass"
alias_flag step max_step
flag batch 100 int "images per step (per worker)"
alias_flag batch_size batch
flag learning_rate 0.001 number "learning rate (8p: x RANK_SIZE)"
flag init scaled "original|scaled" "initial weights (the original's: original, with --pixels=raw)"
flag pixels unit "raw|unit" "network input"
flag val_photos 1000 number "held-out source photos, a count or a fraction"
flag skip_bad_photos False bool "True: train without unreadable JPEGs (each named in a warning); default: stop at the first"
flag cache_mb 2048 count "decoded-image cache budget (MB)"
flag log_every 20 int "steps between loss lines"
flag precision_mode allow_mix_precision "$PRECISION_MODES" "off Ascend see the model README"
flag over_dump False bool "Ascend overflow dump"
flag data_dump_flag False bool "Ascend data dump"
flag data_dump_step 10 count "Ascend data dump step"
flag profiling False bool "Ascend profiling"
flag autotune "" text "accepted and ignored"
flag collective_timeout 300 int "seconds a worker waits for the others before it stops"
# main.py's names for the launcher's flags: its [Error] lines are relayed with the names the user typed.
script_flag epoch max_epoch
script_flag step max_step
script_flag batch_size batch
[ "$multi_worker" != True ] || worker_flags
parse_flags "$@"
check_flags

# main.py's flags for output folder $1 and rank $2.
set_main_args() {
    main_args=(--data_path="$data_path" --output_path="$1" --epoch="$max_epoch" --step="$max_step"
        --batch_size="$batch" --learning_rate="$learning_rate" --init="$init" --pixels="$pixels"
        --val_photos="$val_photos" --skip_bad_photos="$skip_bad_photos" --cache_mb="$cache_mb" --log_every="$log_every" --mul_rank_size="$RANK_SIZE"
        --mul_device_id="$2" --collective_timeout="$collective_timeout" --precision_mode="$precision_mode"
        --over_dump="$over_dump" --data_dump_flag="$data_dump_flag" --data_dump_step="$data_dump_step"
        --profiling="$profiling" --launcher="$launcher")
}

if [ "$multi_worker" = True ]; then
    worker_command() {
        set_main_args "$test_dir/output/$1" "$1"
        cd "$model_dir" && exec python3 main.py "${main_args[@]}" >>"$(rank_log "$1")" 2>&1
    }
    start_workers npu_bridge "$batch"
else
    start_single "$batch"
    set_main_args "$out" "$RANK_ID"
    run_python main.py "$log" "${main_args[@]}"
fi

# The summary and the final block come from the run's result.json (finish_from_result): TrainingTime and
# ActualFPS are the steady state of the step lines' "step_time" (run_report.StepClock), TrainAccuracy the last
# held-out accuracy as a fraction. The loss file holds the loss of every "progress : <p>%  loss :<l>" line.
loss_file=$out/${CaseName}_loss.txt
grep -o 'loss :[^ ]*' "$log" | cut -d: -f2 >"$loss_file"
finish_from_result TrainAccuracy
