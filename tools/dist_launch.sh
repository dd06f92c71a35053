#!/usr/bin/env bash
# Run a tools/ script on GPUS processes through torch.distributed (MMEngine's
# pytorch launcher); the front of dist_train.sh and dist_test.sh.
#   bash tools/dist_launch.sh SCRIPT GPUS [script args...]  (the caller adds
#   --launcher pytorch)
set -euo pipefail
SCRIPT=$1
GPUS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
PYTHON=${PYTHON:-python}
PYTHONPATH="$(dirname "$0")/..":${PYTHONPATH:-} \
"$PYTHON" -m torch.distributed.run --nnodes="$NNODES" --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" --nproc_per_node="$GPUS" --master_port="$PORT" \
    "$(dirname "$0")/$SCRIPT" "${@:3}"
