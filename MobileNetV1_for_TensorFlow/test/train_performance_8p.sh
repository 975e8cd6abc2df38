#!/bin/bash
# 8p throughput run: RANK_SIZE workers (default 8) x batch 256 at 224x224, lr 0.8, 2000 steps as the 1p
# perf run; images/sec is global (all workers), read from the last rank's log as the originals.
# Usage: bash train_performance_8p.sh --data_path=/opt/npu/slimImagenet   (-h for all options)
# As in the original, the values below are the defaults: edit them here, or override any with --name=value.
data_path=""
batch_size=256
suffix=perf
max_train_steps=2000
learning_rate=0.8
evaluate=False
multi_worker=True
source "$(dirname "${BASH_SOURCE[0]}")/launcher_lib.sh"
