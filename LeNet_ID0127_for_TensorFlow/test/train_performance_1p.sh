#!/bin/bash
# Throughput run: 1 epoch x 100 steps, batch 64; images/sec from the steps after warm-up.
# Usage: bash train_performance_1p.sh --data_path=/dataset/mnist   (-h for all options)
# As in the original, the values below are the defaults: edit them here, or override any with --name=value.
data_path=""
batch_size=64
epochs=1
steps=100
suffix=perf
accuracy_key=Accuracy
source "$(dirname "${BASH_SOURCE[0]}")/launcher_lib.sh"
