#!/usr/bin/env bash
# README command 1: install everything, then run the main job — the whole
# QA-CLIMS pipeline on the synthetic world (configs/pipelines/
# qaclims_synthetic-voc.py) through MMSegmentation's STOCK tools/train.py.
#   bash tools/quickstart.sh [install.sh options] [-- train.py options]
# e.g. bash tools/quickstart.sh -- --work-dir work_dirs/run2
#      bash tools/quickstart.sh -- --cfg-options run_stages="[data,world]"
# A second run of the same command skips every finished stage (and resumes
# a killed one); the report is <work dir>/report.md.
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
# the stock script that ships inside the mmsegmentation package
STOCK_TRAIN="$("$PY" -c 'import mmseg, os.path as p; print(p.join(p.dirname(mmseg.__file__), ".mim", "tools", "train.py"))')"
export PYTHONUNBUFFERED=1
exec "$PY" "$STOCK_TRAIN" configs/pipelines/qaclims_synthetic-voc.py \
  --work-dir work_dirs/qaclims_synthetic-voc "$@"
