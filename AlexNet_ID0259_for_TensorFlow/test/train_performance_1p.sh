#!/bin/bash
# Throughput run: 600 steps of batch 100 in one epoch, then one held-out evaluation (TrainAccuracy, %).
# bash train_performance_1p.sh --data_path=/home/Dog_Cats   (-h lists the options)
# The values below are the defaults: edit them here, or override any with --name=value.
data_path=""
batch=100
suffix=perf
max_epoch=1
max_step=600
source "$(dirname "${BASH_SOURCE[0]}")/launcher_lib.sh"
