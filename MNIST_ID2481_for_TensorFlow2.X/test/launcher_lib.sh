# MNIST TF2's part of its launchers (sourced): the flags and the mnist_main.py command line; the metrics come
# from the result.json mnist_main.py writes.
# The launcher sets suffix (CaseName ending), eval_static (True|False), multi_rank=True for several ranks
# (workers.sh starts them) and any flag default before sourcing. The shared steps are in
# launcher_common.sh and workers.sh (vendored copies; see their headers).

source "$(dirname "${BASH_SOURCE[0]}")/launcher_common.sh"
source "$(dirname "${BASH_SOURCE[0]}")/workers.sh"
step_lines='^step:'

flag data_path "" text "folder with mnist/3.0.1 (TFDS-prepared)"
script_flag data_dir data_path
flag batch_size 1024 int "images per step (per rank)"
flag train_epochs 10 int "epochs"
# Passed to mnist_main.py only when given (here or on the command line): its own defaults apply otherwise.
passthrough=()
pass_flag() { flag "$1" "" "$2" "$3"; passthrough+=("$1"); }
pass_flag learning_rate number "SGD learning rate"
pass_flag momentum number "SGD momentum"
pass_flag seed count "random seed"
pass_flag epochs_between_evals int "epochs between evaluations"
pass_flag precision_mode "$PRECISION_MODES" "see the model README"
pass_flag over_dump bool "Ascend overflow dump"
pass_flag data_dump_flag bool "Ascend data dump"
pass_flag data_dump_step text "Ascend data dump steps"
pass_flag profiling bool "Ascend profiling"
pass_flag use_mixlist bool "Ascend operator mix list"
pass_flag mixlist_file text "Ascend operator mix list file"
pass_flag fusion_off_flag bool "Ascend fusion switch"
pass_flag fusion_off_file text "Ascend fusion switch file"
pass_flag collective_timeout int "seconds a rank waits for the others before it stops"
flag autotune "" text "accepted and ignored"
[ "$multi_rank" != True ] || worker_flags
parse_flags "$@"
check_flags

main_args=(--data_dir="$data_path" --train_epochs="$train_epochs" --batch_size="$batch_size"
    --eval_static="$eval_static" --download=False)
for name in "${passthrough[@]}"; do
    [ -z "${!name}" ] || main_args+=("--$name=${!name}")
done
# Where the original launchers put Ascend dumps and profiles: output/ of the model folder (not test/output/,
# which a fresh run moves aside). Each entry: switch, mnist_main.py path flag, folder.
for dump in over_dump:over_dump_path:overflow_dump data_dump_flag:data_dump_path:data_dump \
    profiling:profiling_dump_path:profiling; do
    IFS=: read -r name path_flag folder <<<"$dump"
    [ "${!name}" = True ] || continue
    mkdir -p "$model_dir/output/$folder" 2>/dev/null ||
        { echo "[Error] $launcher: cannot create $model_dir/output/$folder for --$name"; exit 1; }
    main_args+=("--$path_flag=$model_dir/output/$folder")
done

main_args+=(--launcher="$launcher")
if [ "$multi_rank" = True ]; then
    # Rank 0 writes the checkpoints, TensorBoard files and the SavedModel to output/0/ckpt; every rank writes
    # its result.json into its own output/<rank>.
    worker_command() {
        cd "$model_dir" && exec python3 mnist_main.py --model_dir="$test_dir/output/0/ckpt" \
            --result_dir="$test_dir/output/$1" --mul_rank_size="$RANK_SIZE" --mul_device_id="$1" \
            "${main_args[@]}" >>"$(rank_log "$1")" 2>&1
    }
    start_workers npu_device "$batch_size"
else
    start_single "$batch_size"
    mkdir -p "$out/ckpt"
    run_python mnist_main.py "$log" --model_dir="$out/ckpt" --result_dir="$out" "${main_args[@]}"
fi

grep '^step:' "$log" | awk '{print $3}' >"$out/train_${CaseName}_loss.txt"
# The original's "Final Training Duration sec": whole seconds the training process ran (its result.json).
duration=$(python3 -c 'import json, sys; print(int(json.load(open(sys.argv[1]))["e2e_seconds"]))' \
    "$out/result.json" 2>/dev/null) && echo "Final Training Duration sec : $duration"
# ms/step, images/sec (global), the final evaluation's accuracy and the last loss, from result.json.
finish_from_result TrainAccuracy
