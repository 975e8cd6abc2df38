#!/bin/bash
# Accuracy run: 5 epochs x 1000 steps, batch 64, then the whole test set.
# Usage: bash train_full_1p.sh --data_path=/dataset/mnist   (-h for all options)
# As in the original, the values below are the defaults: edit them here, or override any with --name=value.
data_path=""
batch_size=64
epochs=5
steps=1000
suffix=acc
accuracy_key=TrainAccuracy
source "$(dirname "${BASH_SOURCE[0]}")/launcher_lib.sh"
