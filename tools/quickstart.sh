#!/usr/bin/env bash
# README command 1: install everything, then run the main job (the CAM stage on
# the bundled synthetic VOC-format dataset, or on real VOC with --data-root).
#   bash tools/quickstart.sh [install.sh options] [-- demo options]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
INSTALL_ARGS=()
while [[ $# -gt 0 && $1 != -- ]]; do INSTALL_ARGS+=("$1"); shift; done
[[ $# -gt 0 ]] && shift  # drop the --
bash "$ROOT/tools/install.sh" "${INSTALL_ARGS[@]}"
PY="${QACLIMS_VENV:-$ROOT/.venv}/bin/python"
for ((i = 0; i < ${#INSTALL_ARGS[@]}; i++)); do
  [[ ${INSTALL_ARGS[$i]} == --venv ]] && PY="${INSTALL_ARGS[$((i + 1))]}/bin/python"
  [[ ${INSTALL_ARGS[$i]} == --no-venv ]] && PY="$(command -v "${PYTHON:-python3}")"
done
cd "$ROOT"
exec "$PY" tools/run_cam_demo.py "$@"
