# LeNet's part of its launchers (sourced): the flags, the LeNet.py command line and the metrics. The launcher
# sets suffix (acc|perf), accuracy_key (TrainAccuracy|Accuracy) and any flag default before sourcing.
# The shared steps are in launcher_common.sh (a vendored copy; see its header).

source "$(dirname "${BASH_SOURCE[0]}")/launcher_common.sh"
step_lines='^epoch : '

flag data_path "" text "folder with the MNIST idx files: train-/t10k- images and labels (.gz or plain)"
flag batch_size 64 int "images per step"
flag learning_rate 0.001 number "Adam learning rate"
alias_flag learing_rata learning_rate  # the original's spelling
flag epochs 1 int "epochs"
flag steps 100 int "steps per epoch"
flag iteration_per_loop 10 int "training steps per session call (Ascend's iterations_per_loop; the original's value)"
flag precision_mode allow_mix_precision "$PRECISION_MODES" "off Ascend see the model README"
flag over_dump False bool "Ascend overflow dump"
flag data_dump_flag False bool "Ascend data dump"
flag data_dump_step 10 count "Ascend data dump step"
flag profiling False bool "Ascend profiling"
flag autotune False bool "accepted for compatibility; no effect"
flag restore_path "" text "transfer learning: checkpoint folder or prefix to initialise the network from"
flag restore_exclude "" text "scopes not to load from --restore_path, comma-separated (fc_3/; linear/: fc_1/,fc_2/,fc_3/)"
parse_flags "$@"
check_flags
# Relative to where the launcher was started, like --data_path (LeNet.py runs in the model folder).
[ -z "$restore_path" ] || restore_path=$(realpath -m -- "$restore_path")
start_single "$batch_size"
# Fine-tuning from the previous run's output/<device>: this fresh run has just moved it to output/<device>.prev.
out_real=$(realpath -m -- "$out")
prev=$out_real.prev${restore_path#"$out_real"}
if [ "$resume" != True ] && [[ $restore_path == "$out_real" || $restore_path == "$out_real"/* ]] &&
    { [ -e "$prev" ] || [ -e "$prev.index" ]; }; then
    echo "--restore_path: the previous run is kept as $out.prev; loading $prev"
    restore_path=$prev
fi
run_python LeNet.py "$log" --data_path="$data_path" --output_path="$out" --batch_size="$batch_size" \
    --learning_rate="$learning_rate" --epochs="$epochs" --steps="$steps" --precision_mode="$precision_mode" \
    --over_dump="$over_dump" --data_dump_flag="$data_dump_flag" --data_dump_step="$data_dump_step" \
    --profiling="$profiling" --resume="$resume" --restore_path="$restore_path" --restore_exclude="$restore_exclude" \
    --iteration_per_loop="$iteration_per_loop" --launcher="$launcher"

# The loss file as the original launcher grepped it; the summary's figures come from LeNet.py's result.json.
grep "^epoch : .*----loss : " "$log" | awk -F'----' '{split($3, a, " : "); print a[2]}' \
    >"$out/train_${CaseName}_loss.txt"
finish_from_result "$accuracy_key"
