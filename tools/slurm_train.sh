#!/usr/bin/env bash
# Training on a SLURM cluster, one task per GPU (MMEngine's slurm launcher).
#   GPUS=8 bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG [train.py args]
# See tools/slurm_launch.sh for GPUS_PER_NODE, CPUS_PER_TASK, SRUN_ARGS.
set -euo pipefail
exec bash "$(dirname "$0")/slurm_launch.sh" train.py "$1" "$2" "$3" \
    --launcher slurm "${@:4}"
