#!/bin/bash
# 8p accuracy run as the original: RANK_SIZE workers (default 8) x batch 256, lr 0.8, 300 epochs, then top-1
# of rank 0's last checkpoint (EMA weights) on the validation split. On Ascend one process per NPU (HCCL);
# elsewhere one tf.distribute cluster of processes (README "Several devices").
# Usage: bash train_full_8p.sh --data_path=/opt/npu/slimImagenet   (-h for all options)
# As in the original, the values below are the defaults: edit them here, or override any with --name=value.
data_path=""
batch_size=256
suffix=acc
max_epoch=300
learning_rate=0.8
evaluate=True
multi_worker=True
source "$(dirname "${BASH_SOURCE[0]}")/launcher_lib.sh"
