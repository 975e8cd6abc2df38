#!/bin/bash
# Benchmark (not a test): the accuracy launcher on real MNIST (../shared/datasets/mnist) with its defaults (5 x 1000
# steps, batch 64, Adam 0.001) in float32, then the frozen graph through the original's online-inference flow;
# prints both accuracies on the 10,000 test images. About 2 minutes on a 2-core CPU.
#   bash benchmarks/accuracy_real_mnist.sh [launcher args, e.g. --epochs=3 --learning_rate=0.003]
# Output: test/output/$ASCEND_DEVICE_ID/ with ASCEND_DEVICE_ID 7 unless set, apart from a user's device 0.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
model_dir=$(dirname "$here")
data="$(dirname "$(dirname "$model_dir")")/shared/datasets/mnist"
[ -x "$(dirname "$model_dir")/.venv/bin/python3" ] && export PATH="$(dirname "$model_dir")/.venv/bin:$PATH"
export ASCEND_DEVICE_ID=${ASCEND_DEVICE_ID:-7}
[ -f "$data/train-images-idx3-ubyte.gz" ] || { echo "[Error] $data: the real MNIST idx files are needed"; exit 1; }
out=$model_dir/test/output/$ASCEND_DEVICE_ID
echo "accuracy benchmark: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-), $(date -u)"
bash "$model_dir/test/train_full_1p.sh" --data_path="$data" --precision_mode=must_keep_origin_dtype "$@" || exit 1
work=$(mktemp -d)
cd "$model_dir" &&
    python3 LeNet_frozen_graph.py --ckpt_path="$out/ckpt_npu" --output_path="$work/lenet.pb" >/dev/null &&
    python3 LeNet_preprocess.py --data_path="$data" --output_path="$work/bins" >/dev/null &&
    python3 LeNet_online_inference.py --model_path="$work/lenet.pb" --output_dir="$work/bins" \
        --result_dir="$work/out" --batchSize=64 | grep "Final Online Inference Accuracy" || exit 1
rm -rf "$work"
