#!/bin/bash
# 8p accuracy run as the original: RANK_SIZE workers (default 8) x batch 100, 35 epochs of full passes, lr
# 0.001 x RANK_SIZE; each worker trains on its share of the photos. On Ascend one process per NPU (HCCL);
# elsewhere one tf.distribute cluster of processes (README "Several devices (8p)").
# bash train_full_8p.sh --data_path=/home/Dog_Cats   (-h lists the options)
# The values below are the defaults: edit them here, or override any with --name=value.
data_path=""
batch=100
suffix=acc
max_epoch=35
max_step=0
multi_worker=True
source "$(dirname "${BASH_SOURCE[0]}")/launcher_lib.sh"
