#!/usr/bin/env bash
# Install qaclims-mm and its OpenMMLab stack into a virtual environment.
#
#   bash tools/install.sh [--venv DIR] [--device auto|cpu|cuda] [--no-crf] [--no-venv]
#
# Idempotent: re-running it only installs what is missing. Every deliberate
# choice below is there because the plain `pip install` of this stack breaks on a
# fresh machine (see ../shared/docs/environment.md for the measurements):
#   * torch is pinned to 2.13.0 for every pip call (a constraint file), so that no
#     dependency can make pip "upgrade" a CPU torch to the newest CUDA build;
#   * mmcv 2.1.0 exists on PyPI as source only and must be compiled WITH its ops
#     against the installed torch (no build isolation); the wheel (~30 MB) is
#     cached per (python, torch build) and reused, so only the first install on a
#     machine pays the ~9 minute build;
#   * torchvision from PyPI is linked against CUDA libraries; next to a CPU-only
#     torch its compiled ops do not load and `import torchvision` crashes. A guarded
#     fix (tools/misc/fix_torchvision.py) is applied only in that case;
#   * the torch>=2.6 `weights_only` default vs mmengine checkpoints, and HF offline
#     mode, are handled at import time by qaclims_mm itself (qaclims_mm/utils/env.py).
#
# Environment overrides: QACLIMS_VENV, QACLIMS_DEVICE, QACLIMS_WHEEL_CACHE, PYTHON.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${QACLIMS_VENV:-$ROOT/.venv}"
DEVICE="${QACLIMS_DEVICE:-auto}"
WITH_CRF=1
USE_VENV=1
PYTHON_BIN="${PYTHON:-python3}"
TORCH_VERSION=2.13.0
MMCV_VERSION=2.1.0

while [[ $# -gt 0 ]]; do
  case "$1" in
    --venv) VENV="$2"; shift 2 ;;
    --device) DEVICE="$2"; shift 2 ;;
    --with-crf) WITH_CRF=1; shift ;;  # the default; kept for old commands
    --no-crf) WITH_CRF=0; shift ;;  # skip pydensecrf2 (refinement needs it)
    --no-venv) USE_VENV=0; shift ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

log() { printf '\033[1;34m[qaclims-mm install]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[qaclims-mm install] error:\033[0m %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- interpreter
if [[ $USE_VENV == 1 ]]; then
  if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating virtual environment $VENV"
    "$PYTHON_BIN" -m venv "$VENV" || die "could not create a venv with $PYTHON_BIN (install python3-venv)"
  fi
  PY="$VENV/bin/python"
else
  PY="$(command -v "$PYTHON_BIN")"
fi
"$PY" - <<'EOF' || die "Python 3.9-3.12 is required"
import sys
sys.exit(0 if (3, 9) <= sys.version_info[:2] <= (3, 12) else 1)
EOF
PYTAG="$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"

# ---------------------------------------------------------------- device
if [[ $DEVICE == auto ]]; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    DEVICE=cuda
  else
    DEVICE=cpu
  fi
fi
case "$DEVICE" in
  cpu)  TORCH_SPEC="torch==${TORCH_VERSION}+cpu" ;;   # '+cpu': pip fails loudly rather than fetch CUDA
  cuda) TORCH_SPEC="torch==${TORCH_VERSION}" ;;
  *) die "--device must be auto, cpu or cuda (got '$DEVICE')" ;;
esac
log "python $PYTAG, device $DEVICE, torch spec $TORCH_SPEC"

# One constraint file for every pip call: the static pins plus the torch line.
CONSTRAINTS="$(mktemp)"
trap 'rm -f "$CONSTRAINTS"' EXIT
cat "$ROOT/requirements/constraints.txt" > "$CONSTRAINTS"
echo "$TORCH_SPEC" >> "$CONSTRAINTS"
PIP=("$PY" -m pip --disable-pip-version-check)

# ---------------------------------------------------------------- build tools + torch
log "installing torch and build tools"
"${PIP[@]}" install -q -c "$CONSTRAINTS" "$TORCH_SPEC" setuptools wheel ninja numpy \
  || die "could not install $TORCH_SPEC"

# ---------------------------------------------------------------- mmcv with ops
mmcv_ok() {
  "$PY" - <<EOF >/dev/null 2>&1
import mmcv
assert mmcv.__version__ == '$MMCV_VERSION', mmcv.__version__
import mmcv._ext  # the compiled ops; a silent op-less build lacks this module
from mmcv.ops import roi_align  # noqa: F401
EOF
}
if mmcv_ok; then
  log "mmcv $MMCV_VERSION with compiled ops already installed"
else
  TORCH_TAG="$("$PY" -c 'import torch; v = torch.__version__; print(v.replace("+", "-"))')"
  CACHE="${QACLIMS_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/qaclims-mm/wheels}/mmcv-${MMCV_VERSION}-${PYTAG}-torch${TORCH_TAG}"
  mkdir -p "$CACHE"
  WHEEL="$(ls "$CACHE"/mmcv-"$MMCV_VERSION"-*.whl 2>/dev/null | head -n 1 || true)"
  if [[ -z $WHEEL ]]; then
    log "building mmcv $MMCV_VERSION from source with ops (about 9 min on 2 cores; cached in $CACHE)"
    BUILD_DIR="$(mktemp -d)"
    BUILD_ENV=(MMCV_WITH_OPS=1 "MAX_JOBS=${MAX_JOBS:-$(nproc)}")
    if [[ $DEVICE == cuda ]] && command -v nvcc >/dev/null 2>&1; then
      BUILD_ENV+=(FORCE_CUDA=1)
    elif [[ $DEVICE == cuda ]]; then
      # mmcv compiles CUDA kernels whenever torch sees a GPU, which fails
      # without the CUDA toolkit: hide the GPU from the build and compile the
      # CPU ops (qaclims-mm uses no mmcv CUDA kernel).
      log "no nvcc found: building mmcv's CPU ops only"
      BUILD_ENV+=(FORCE_CUDA=0 CUDA_VISIBLE_DEVICES=)
    fi
    # --no-cache-dir: never reuse a wheel from pip's own cache (it may be an
    # op-less build from an earlier attempt); ours above is verified.
    # --no-build-isolation: the build must see the installed torch (an isolated
    # build env has none and silently produces an op-less mmcv) and setuptools<81.
    env "${BUILD_ENV[@]}" \
      "${PIP[@]}" wheel -q --no-cache-dir --no-build-isolation --no-deps -w "$BUILD_DIR" "mmcv==$MMCV_VERSION" \
      || die "the mmcv build failed (needs gcc, g++ and the Python headers)"
    # Move into the cache only once complete, so an interrupted build leaves no bad wheel.
    mv "$BUILD_DIR"/mmcv-*.whl "$CACHE"/
    rm -rf "$BUILD_DIR"
    WHEEL="$(ls "$CACHE"/mmcv-"$MMCV_VERSION"-*.whl | head -n 1)"
  else
    log "reusing cached mmcv wheel $WHEEL"
  fi
  "${PIP[@]}" install -q --no-deps --force-reinstall "$WHEEL"
fi

# ---------------------------------------------------------------- the rest
log "installing runtime and test requirements"
REQS=(-r "$ROOT/requirements/runtime.txt" -r "$ROOT/requirements/tests.txt")
[[ $WITH_CRF == 1 ]] && REQS+=(-r "$ROOT/requirements/crf.txt")
# torchvision without deps: its wheel pins torch==2.13.0, which our torch satisfies.
"${PIP[@]}" install -q -c "$CONSTRAINTS" --no-deps torchvision
"${PIP[@]}" install -q -c "$CONSTRAINTS" "${REQS[@]}"
"${PIP[@]}" install -q -c "$CONSTRAINTS" --no-deps --no-build-isolation -e "$ROOT"

# ---------------------------------------------------------------- torchvision guard
"$PY" "$ROOT/tools/misc/fix_torchvision.py"

# ---------------------------------------------------------------- verify
mmcv_ok || die "mmcv $MMCV_VERSION is installed without its compiled ops"
"$PY" "$ROOT/tools/misc/verify_install.py"
log "done. Python: $PY"
