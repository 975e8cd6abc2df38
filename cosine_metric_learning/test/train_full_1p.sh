#!/bin/bash
# Accuracy run: train 20000 steps of batch 128 on Market-1501, then validation CMC rank-1 (TrainAccuracy).
# Usage: bash train_full_1p.sh --data_path=/dataset/Market-1501-v15.09.15   (-h for all options)
# The values below are the defaults: edit them here, or override any with --name=value.
data_path=""
batch_size=128
suffix=acc
steps=20000
evaluate=True
source "$(dirname "${BASH_SOURCE[0]}")/launcher_lib.sh"
