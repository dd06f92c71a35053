#!/usr/bin/env bash
# Run a tools/ script as one SLURM task per process (MMEngine's slurm
# launcher reads SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID); the front of
# slurm_train.sh and slurm_test.sh.
#   bash tools/slurm_launch.sh SCRIPT PARTITION JOB_NAME [script args...]
#   (the caller adds --launcher slurm)
# Environment: GPUS (tasks, default 4), GPUS_PER_NODE (default 4; 0 for CPU
# nodes: no --gres, then pass --cfg-options env_cfg.dist_cfg.backend=gloo),
# CPUS_PER_TASK (default 5), SRUN_ARGS (extra srun options), PYTHON.
set -euo pipefail
SCRIPT=$1
PARTITION=$2
JOB_NAME=$3
GPUS=${GPUS:-4}
GPUS_PER_NODE=${GPUS_PER_NODE:-4}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
PYTHON=${PYTHON:-python}
GRES=()
if [ "$GPUS_PER_NODE" -gt 0 ]; then
    GRES=(--gres="gpu:$GPUS_PER_NODE" --ntasks-per-node="$GPUS_PER_NODE")
fi
# shellcheck disable=SC2086  # SRUN_ARGS holds several options
PYTHONPATH="$(dirname "$0")/..":${PYTHONPATH:-} \
srun -p "$PARTITION" --job-name="$JOB_NAME" "${GRES[@]}" \
    --ntasks="$GPUS" --cpus-per-task="$CPUS_PER_TASK" --kill-on-bad-exit=1 \
    ${SRUN_ARGS:-} "$PYTHON" -u "$(dirname "$0")/$SCRIPT" "${@:4}"
