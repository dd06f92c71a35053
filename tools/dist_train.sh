#!/usr/bin/env bash
# Multi-GPU training through torch.distributed (MMEngine's pytorch launcher).
#   bash tools/dist_train.sh CONFIG GPUS [tools/train.py args...]
set -euo pipefail
exec bash "$(dirname "$0")/dist_launch.sh" train.py "$2" "$1" --launcher pytorch "${@:3}"
