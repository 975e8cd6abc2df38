#!/bin/bash
# 8p throughput run: RANK_SIZE workers (default 8) x batch 100, 600 steps in one epoch as the 1p perf run;
# images/sec is global (all workers), read from the last rank's log as the originals.
# bash train_performance_8p.sh --data_path=/home/Dog_Cats   (-h lists the options)
# The values below are the defaults: edit them here, or override any with --name=value.
data_path=""
batch=100
suffix=perf
max_epoch=1
max_step=600
multi_worker=True
source "$(dirname "${BASH_SOURCE[0]}")/launcher_lib.sh"
