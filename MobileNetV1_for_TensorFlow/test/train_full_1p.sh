#!/bin/bash
# Accuracy run as the original: 500 steps of batch 256 at 224x224, then top-1 of the last checkpoint
# (EMA weights) on the validation split. A real-length training: see the README.
# Usage: bash train_full_1p.sh --data_path=/opt/npu/slimImagenet   (-h for all options)
# As in the original, the values below are the defaults: edit them here, or override any with --name=value.
data_path=""
batch_size=256
suffix=acc
max_train_steps=500
evaluate=True
source "$(dirname "${BASH_SOURCE[0]}")/launcher_lib.sh"
