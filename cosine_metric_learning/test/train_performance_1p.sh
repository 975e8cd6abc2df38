#!/bin/bash
# Throughput run: 100 steps of batch 128; images/sec from the steps after warm-up; accuracy NA by design.
# Usage: bash train_performance_1p.sh --data_path=/dataset/Market-1501-v15.09.15   (-h for all options)
suffix=perf
steps=100
evaluate=False
source "$(dirname "${BASH_SOURCE[0]}")/launcher_lib.sh"
