#!/bin/bash
# Accuracy run: 10 epochs at batch 1024 (the original recipe), then the final evaluation.
# Usage (from test/ or the model folder): bash train_full_1p.sh --data_path=/dataset   (-h for options)
# As in the original, the values below are the defaults: edit them here, or override any with --name=value.
data_path=""
batch_size=1024
train_epochs=10
# The original launchers' mode (mnist_main.py alone defaults to allow_fp32_to_fp16); off Ascend see README.
precision_mode=allow_mix_precision
suffix=acc
eval_static=True
source "$(dirname "${BASH_SOURCE[0]}")/launcher_lib.sh"
