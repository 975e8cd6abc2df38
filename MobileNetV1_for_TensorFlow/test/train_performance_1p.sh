#!/bin/bash
# Throughput run as the original: 2000 steps of batch 256 at 224x224; images/sec from the step log.
# Usage: bash train_performance_1p.sh --data_path=/opt/npu/slimImagenet   (-h for all options)
# As in the original, the values below are the defaults: edit them here, or override any with --name=value.
data_path=""
batch_size=256
suffix=perf
max_train_steps=2000
evaluate=False
source "$(dirname "${BASH_SOURCE[0]}")/launcher_lib.sh"
