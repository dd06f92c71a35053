#!/usr/bin/env bash
# Run the GPU benchmark suite (benchmarks/gpu_suite.py) on a machine that has
# torch, torchvision and transformers but no OpenMMLab packages: the pure
# Python wheels in .whl/ (see docs/performance.md) are installed into a
# throw-away folder first, then the suite runs under an 8-minute time-out and
# its output is kept in OUT_DIR/log.txt next to results.json / results.md.
#
# Usage: bash benchmarks/gpu_suite.sh OUT_DIR [gpu_suite.py options]
# Environment: PYTHON (default python3), SUITE_TIMEOUT (seconds, default 470),
#              WHEEL_SITE (default /tmp/qaclims_site).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${1:?usage: bash benchmarks/gpu_suite.sh OUT_DIR [options]}
shift
PY=${PYTHON:-python3}
if compgen -G '.whl/*.whl' > /dev/null; then
    SITE=${WHEEL_SITE:-/tmp/qaclims_site}
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --upgrade --target "$SITE" .whl/*.whl
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1
mkdir -p "$OUT_DIR"
timeout "${SUITE_TIMEOUT:-470}" "$PY" benchmarks/gpu_suite.py --out "$OUT_DIR" \
    "$@" 2>&1 | tee "$OUT_DIR/log.txt"
