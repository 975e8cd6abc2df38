#!/bin/bash
# Throughput with a dynamic batch dimension (--eval_static=False): steady-state images/sec.
# Usage: bash train_performance_1p_dynamic_eval.sh --data_path=/dataset   (-h for options)
# As in the original, the values below are the defaults: edit them here, or override any with --name=value.
data_path=""
batch_size=1024
train_epochs=10
# The original launchers' mode (mnist_main.py alone defaults to allow_fp32_to_fp16); off Ascend see README.
precision_mode=allow_mix_precision
suffix=perf
eval_static=False
source "$(dirname "${BASH_SOURCE[0]}")/launcher_lib.sh"
