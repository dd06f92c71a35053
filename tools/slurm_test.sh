#!/usr/bin/env bash
# Testing on a SLURM cluster, one task per GPU (MMEngine's slurm launcher).
#   GPUS=4 bash tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT
#       [test.py args]
# See tools/slurm_launch.sh for GPUS_PER_NODE, CPUS_PER_TASK, SRUN_ARGS.
set -euo pipefail
exec bash "$(dirname "$0")/slurm_launch.sh" test.py "$1" "$2" "$3" "$4" \
    --launcher slurm "${@:5}"
