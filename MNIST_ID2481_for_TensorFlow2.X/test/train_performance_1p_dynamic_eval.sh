#!/bin/bash
# Throughput with a dynamic batch dimension (--eval_static=False): steady-state images/sec.
# Usage: bash train_performance_1p_dynamic_eval.sh --data_path=/dataset   (-h for options)
suffix=dynamic_eval_perf
eval_static=False
source "$(dirname "${BASH_SOURCE[0]}")/launcher_lib.sh"
