#!/bin/bash
# Throughput run: 100 steps of batch 128; images/sec from the steps after warm-up; accuracy NA by design.
# Usage: bash train_performance_1p.sh --data_path=/dataset/Market-1501-v15.09.15   (-h for all options)
# The values below are the defaults: edit them here, or override any with --name=value.
data_path=""
batch_size=128
suffix=perf
steps=100
evaluate=False
source "$(dirname "${BASH_SOURCE[0]}")/launcher_lib.sh"
