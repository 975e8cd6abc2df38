#!/bin/bash
# Benchmark (not a test): the full launcher on real MNIST (../shared/datasets/mnist, converted once to the TFDS
# layout) with the faithful recipe (launcher defaults: 10 epochs, batch 1024, SGD 0.05) and the better one
# (batch 128, 4 epochs, momentum 0.9), float32 and seed 1 unless arguments say otherwise; prints each
# recipe's evaluate accuracy. The faithful run alone takes about 7 minutes on a 2-core CPU.
#   bash benchmarks/accuracy_real_mnist.sh [faithful|better|both (default)] [launcher args]
# Output: test/output/$ASCEND_DEVICE_ID/ with ASCEND_DEVICE_ID 7 unless set, apart from a user's device 0.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
model_dir=$(dirname "$here")
idx="$(dirname "$(dirname "$model_dir")")/shared/datasets/mnist"
[ -x "$(dirname "$model_dir")/.venv/bin/python3" ] && export PATH="$(dirname "$model_dir")/.venv/bin:$PATH"
export ASCEND_DEVICE_ID=${ASCEND_DEVICE_ID:-7}
which=${1:-both}
shift $(( $# > 0 ? 1 : 0 ))
case $which in faithful|better|both) ;; *) echo "[Error] first argument: faithful, better or both, not $which"; exit 1 ;; esac
[ -f "$idx/train-images-idx3-ubyte.gz" ] || { echo "[Error] $idx: the real MNIST idx files are needed"; exit 1; }
data=${TMPDIR:-/tmp}/mnist_tfds_real
if [ ! -f "$data/.complete" ]; then
    rm -rf "$data"
    (cd "$model_dir/tests" && python3 -c 'import sys; from synthetic import tfds_mnist; tfds_mnist.from_idx(*sys.argv[1:])' \
        "$idx" "$data") || exit 1
    touch "$data/.complete"
fi
log=$model_dir/test/output/$ASCEND_DEVICE_ID/train_$ASCEND_DEVICE_ID.log
status=0
for recipe in faithful better; do
    [ "$which" = both ] || [ "$which" = $recipe ] || continue
    args=(--precision_mode=must_keep_origin_dtype --seed=1)
    [ $recipe = better ] && args+=(--batch_size=128 --train_epochs=4 --learning_rate=0.05 --momentum=0.9)
    echo "== $recipe recipe: ${args[*]} $*  ($(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-), $(date -u))"
    start=$(date +%s)
    bash "$model_dir/test/train_full_1p.sh" --data_path="$data" "${args[@]}" "$@" || status=1
    echo "$recipe: $(grep 'sparse_categorical_accuracy' "$log" | tail -n 1 | awk '{print $NF}') evaluate accuracy, $(( $(date +%s) - start )) s"
done
exit $status
