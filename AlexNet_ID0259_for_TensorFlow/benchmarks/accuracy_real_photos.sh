#!/bin/bash
# Benchmark (not a test): the full launcher on the 2,002 real photos of ../shared/datasets/dogs_vs_cats with
# reduced epochs; prints the held-out accuracy per epoch and the launcher's final block.
#   bash benchmarks/accuracy_real_photos.sh [EPOCHS (default 20)] [HELD_OUT_PHOTOS (default 500)] [launcher args]
# Batch 32 unless a --batch= argument says otherwise: on 1,502 training photos it gives 47 updates per epoch
# instead of 15, which a short run needs more than the better per-image speed of batch 100.
# Output: test/output/$ASCEND_DEVICE_ID/ with ASCEND_DEVICE_ID 7 unless set, so that a smoke or user run
# (device 0) and this run never share (and wipe) one output folder.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
model_dir=$(dirname "$here")
data="$(dirname "$(dirname "$model_dir")")/shared/datasets/dogs_vs_cats"
# Use the repository's venv (ci/setup.sh) when there is one; python3 on PATH otherwise.
[ -x "$(dirname "$model_dir")/.venv/bin/python3" ] && export PATH="$(dirname "$model_dir")/.venv/bin:$PATH"
export ASCEND_DEVICE_ID=${ASCEND_DEVICE_ID:-7}
epochs=${1:-20}
held_out=${2:-500}
shift $(( $# > 2 ? 2 : $# ))
if [ ! -d "$data/train" ]; then
    echo "[Error] $data/train not found: the real photos are needed for this benchmark" >&2
    exit 1
fi
echo "accuracy benchmark: $epochs epochs, $held_out held-out photos, $(nproc) CPU cores, $(date -u)"
start=$(date +%s)
bash "$model_dir/test/train_full_1p.sh" --data_path="$data" --max_epoch="$epochs" --val_photos="$held_out" \
    --batch=32 "$@"
rc=$?
echo "held-out accuracy per epoch (%):"
grep '^test accuracy ' "$model_dir/test/output/$ASCEND_DEVICE_ID/train_$ASCEND_DEVICE_ID.log" \
    | awk '{printf "%s ", $NF} END {print ""}'
echo "wall time: $(( $(date +%s) - start )) s"
exit $rc
