#!/bin/bash
# Accuracy run: 35 epochs of full passes, batch 100; TrainAccuracy = final held-out accuracy (%).
# bash train_full_1p.sh --data_path=/home/Dog_Cats   (-h lists the options)
# The values below are the defaults: edit them here, or override any with --name=value.
data_path=""
batch=100
suffix=acc
max_epoch=35
max_step=0
source "$(dirname "${BASH_SOURCE[0]}")/launcher_lib.sh"
