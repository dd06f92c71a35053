#!/usr/bin/env bash
# Multi-GPU testing through torch.distributed (MMEngine's pytorch launcher).
#   bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [tools/test.py args...]
set -euo pipefail
exec bash "$(dirname "$0")/dist_launch.sh" test.py "$3" "$1" "$2" --launcher pytorch "${@:4}"
