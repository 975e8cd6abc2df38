#!/bin/bash
# Throughput run: 1 epoch x 100 steps, batch 64; images/sec from the steps after warm-up.
# Usage: bash train_performance_1p.sh --data_path=/dataset/mnist   (-h for all options)
suffix=perf
epochs=1
steps=100
accuracy_key=Accuracy
source "$(dirname "${BASH_SOURCE[0]}")/launcher_lib.sh"
