#!/bin/bash
# Slurm: the 8p launcher on every node of the allocation, one worker per node, all of them one tf.distribute
# cluster. From the model folder, on a shared file system (every node sees the folder and the dataset):
#
#     sbatch --nodes=2 test/slurm_8p.sh test/train_full_8p.sh --data_path=/dataset [--name=value ...]
#
# The batch step expands SLURM_JOB_NODELIST into --worker_hosts (port WORKER_PORT, default 2222) and starts
# one task per node with srun; each task passes its SLURM_PROCID as --task_index. Node 0 (task 0) writes the
# checkpoints. Canonical copy: ci/canonical/slurm_8p.sh; the models' test/slurm_8p.sh are byte-identical
# copies (ci/vendored.toml).
#SBATCH --job-name=zoo-8p
#SBATCH --ntasks-per-node=1
#SBATCH --exclusive
set -euo pipefail
if [ $# -lt 1 ] || [ ! -f "$1" ]; then
    echo "[Error] slurm_8p.sh: the first argument must be an 8p launcher, e.g. test/train_full_8p.sh (got '${1:-}')"
    exit 1
fi
launcher=$1
shift
: "${SLURM_JOB_NODELIST:?[Error] slurm_8p.sh: SLURM_JOB_NODELIST is not set: submit this script with sbatch}"
port=${WORKER_PORT:-2222}

# node[01-03,07],login1 -> node01 node02 node03 node07 login1 (scontrol does this where it is installed; the
# fallback covers the bracket ranges Slurm writes, keeping zero padding).
expand_nodes() {
    if command -v scontrol >/dev/null; then
        scontrol show hostnames "$1"
        return
    fi
    python3 -c 'import re, sys
for prefix, ranges, plain in re.findall(r"([^,\[]+)\[([^\]]+)\]|([^,]+)", sys.argv[1]):
    if plain:
        print(plain)
        continue
    for part in ranges.split(","):
        low, _, high = part.partition("-")
        for n in range(int(low), int(high or low) + 1):
            print(f"{prefix}{n:0{len(low)}d}")' "$1"
}

hosts=$(expand_nodes "$SLURM_JOB_NODELIST" | sed "s/\$/:$port/" | paste -sd, -)
echo "slurm_8p.sh: job ${SLURM_JOB_ID:-?}: --worker_hosts=$hosts"
# Single quotes: SLURM_PROCID is each task's own, read when the task starts.
exec srun --ntasks-per-node=1 --kill-on-bad-exit=1 \
    bash -c 'exec bash "$0" "$@" --task_index="$SLURM_PROCID"' "$launcher" "$@" --worker_hosts="$hosts"
