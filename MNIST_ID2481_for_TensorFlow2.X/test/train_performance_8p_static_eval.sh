#!/bin/bash
# Multi-rank throughput, static batch shapes: RANK_SIZE ranks (default 8) of --batch_size each (global batch
# = batch x ranks); images/sec is global. Ascend: one process per NPU over HCCL (RANK_TABLE_FILE, default
# test/8p.json). CPU/GPU: one tf.distribute worker per rank on this host, or --worker_hosts/--task_index.
# Usage: RANK_SIZE=8 bash train_performance_8p_static_eval.sh --data_path=/dataset   (-h for options)
# As in the original, the values below are the defaults: edit them here, or override any with --name=value.
data_path=""
batch_size=1024
train_epochs=10
# The original launchers' mode (mnist_main.py alone defaults to allow_fp32_to_fp16); off Ascend see README.
precision_mode=allow_mix_precision
suffix=static_eval_perf
eval_static=True
multi_rank=True
source "$(dirname "${BASH_SOURCE[0]}")/launcher_lib.sh"
