#!/usr/bin/env bash
# Run ON A JETSON (JetPack 5.1 / TensorRT 8.5, or JetPack 6 / TensorRT 10.3): builds fp16 and int8
# TensorRT plans from the ONNX files of an engines folder and checks them against the PyTorch outputs.
# Until this script has passed on a Jetson, the TensorRT path of vitfleet is UNVERIFIED ON HARDWARE: it was
# written against the documented TensorRT Python API and tested only against a fake module.
#
# Needs on the board: JetPack's python3-libnvinfer (tensorrt), pycuda, and vitfleet's board dependencies
# (pip install -e . in a venv made with --system-site-packages). No torch: the check uses the
# reference.npz that `vitfleet engines build --target jetson` saved on the workstation.
#
#   workstation:  vitfleet engines build --bundle runs/bundle --out runs/engines/jetson --target jetson --precision int8
#                 rsync -a runs/engines/jetson jetson:vitfleet/runs/engines/
#   jetson:       make check-jetson          (or: ENGINES_DIR=... bash engines/check_jetson.sh)
#
# Exit status: 0 when both precisions pass the thresholds, 1 when a check fails, 2 on a setup problem.
set -euo pipefail

ENGINES_DIR=${ENGINES_DIR:-runs/engines/jetson}
BUNDLE=${BUNDLE:-}
IMAGES=${IMAGES:-1000}
VITFLEET=${VITFLEET:-vitfleet}
PYTHON=${PYTHON:-python3}

fail() { echo "check-jetson: $*" >&2; exit 2; }

"$PYTHON" -c "import tensorrt" 2>/dev/null || fail "python cannot import tensorrt; run this on a Jetson with JetPack \
(sudo apt-get install python3-libnvinfer) in a venv made with --system-site-packages"
"$PYTHON" -c "import pycuda.driver" 2>/dev/null || fail "python cannot import pycuda; pip install pycuda (CUDA from JetPack on PATH)"
command -v "$VITFLEET" >/dev/null || [ -x "$VITFLEET" ] || fail "$VITFLEET not found; pip install -e . first"

if [ ! -f "$ENGINES_DIR/manifest.json" ]; then
  if [ -n "$BUNDLE" ] && "$PYTHON" -c "import torch, timm" 2>/dev/null; then
    "$VITFLEET" engines build --bundle "$BUNDLE" --out "$ENGINES_DIR" --target jetson --precision int8
  else
    fail "$ENGINES_DIR/manifest.json not found; on the workstation run: vitfleet engines build --bundle BUNDLE \
--out $ENGINES_DIR --target jetson --precision int8, then copy that folder here"
  fi
fi

"$PYTHON" - <<'PY'
import tensorrt, pycuda.autoinit, pycuda.driver as cuda
major, minor = cuda.Device(0).compute_capability()
print(f"check-jetson: TensorRT {tensorrt.__version__}, {cuda.Device(0).name()} sm{major}{minor}")
PY

bundle_args=()  # compare against the bundle when torch is here, else against the saved reference.npz
if [ -n "$BUNDLE" ] && [ -f "$BUNDLE/bundle.json" ] && "$PYTHON" -c "import torch, timm" 2>/dev/null; then
  bundle_args=(--bundle "$BUNDLE")
fi
status=0
for precision in fp16 int8; do
  "$VITFLEET" engines build --backend tensorrt --engines "$ENGINES_DIR" --precision "$precision"
  if "$VITFLEET" engines check "$ENGINES_DIR" "${bundle_args[@]}" --backend tensorrt --precision "$precision" \
       --images "$IMAGES" --json > "$ENGINES_DIR/check-tensorrt-$precision.json"; then
    echo "check-jetson: $precision PASS ($ENGINES_DIR/check-tensorrt-$precision.json)"
  else
    rc=$?
    [ "$rc" -eq 1 ] || fail "engines check $precision exited $rc (see above)"
    echo "check-jetson: $precision FAIL ($ENGINES_DIR/check-tensorrt-$precision.json)"
    status=1
  fi
done
"$VITFLEET" engines latency "$ENGINES_DIR" --backend tensorrt --json > "$ENGINES_DIR/latency-tensorrt.json"
echo "check-jetson: latencies in $ENGINES_DIR/latency-tensorrt.json; send both check files with the TensorRT version above"
exit "$status"
