"""Learned global embedding for copy detection (EfficientNet-Lite0, ONNX, onnxruntime on CPU).

One vector per photo that stays close under re-encoding, resizing, crops, colour shifts, overlays and
recapture, and is far for different photos of similar scenes. It is one of the retrieval signals of the
cross-claim duplicate check; perceptual hashes handle the dihedral transforms (90/180/270, mirror), and
local-feature verification confirms candidates.

* The model is ``weights/<file>.onnx`` (see ``weights/MANIFEST.json`` and ``docs/embedding.md``): input
  ``N x 3 x S x S`` float32 RGB 0..255 (mean/std inside the graph), output ``N x D`` L2-normalised.
* The file's sha256 is checked against the manifest when the model is first loaded: a changed or missing
  file raises :class:`EmbeddingModelError` instead of producing silently different vectors.
* Nothing happens at import; the session is built lazily on first use (and is per process: build one
  embedder per worker process, after fork).

Binary codes for the Hamming index (:meth:`CopyEmbedder.binary_code`): a fixed affine projection stored in
``weights/`` as a float32 ``.npy`` of shape ``(D + 1, bits)`` (rows 0..D-1 = ``W``, last row = ``b``; its own
manifest entry, named from the model entry's ``codes`` map, also sha256-checked), ``bits = (vec @ W + b) > 0``, packed most significant bit first (column 0
of ``W`` is the top bit) into a Python ``int`` of ``bits`` width. The projection is PCA + ITQ rotation fitted
on embeddings of augmented training photos (``training/finetune_embedding.py fit-codes``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from claimlens.vision.onnx import MANIFEST_NAME, ModelFileError, manifest_entries, sha256_file

DEFAULT_WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "weights"
DEFAULT_MODEL_NAME = "copy_embedding"
SUPPORTED_PROVIDERS = ["CPUExecutionProvider"]
TRIM_SIDE = 320  # margins are found on a copy this small (long side)


class EmbeddingModelError(RuntimeError):
    """The embedding model (or its code projection) is missing, unlisted or not the file the manifest names."""


def load_manifest(weights_dir: Path) -> dict[str, dict[str, Any]]:
    """``weights/MANIFEST.json`` as name -> entry (read by :func:`claimlens.vision.onnx.manifest_entries`);
    unlike the generic reader, a missing manifest is an error here: the embedding cannot run without it."""
    path = weights_dir / MANIFEST_NAME
    if not path.is_file():
        raise EmbeddingModelError(f"no weights manifest at {path}")
    try:
        return manifest_entries(weights_dir)
    except ModelFileError as exc:
        raise EmbeddingModelError(str(exc)) from exc


def verified_path(weights_dir: Path, entry: dict[str, Any]) -> Path:
    """The entry's file, after checking it exists and its sha256 equals the manifest's."""
    path = weights_dir / entry["file"]
    if not path.is_file():
        raise EmbeddingModelError(
            f"weights file {path} listed in the manifest as {entry['name']!r} is missing "
            "(see weights/README.md to rebuild it)"
        )
    digest = sha256_file(path)
    if digest != entry.get("sha256"):
        raise EmbeddingModelError(
            f"sha256 mismatch for {path}: file has {digest}, manifest says {entry.get('sha256')} "
            "(the file was changed or the manifest not updated)"
        )
    return path


def _main_run(content: np.ndarray, max_gap: int, min_margin: float = 0.75) -> tuple[int, int]:
    """[start, end) of the longest run of content lines (gaps up to ``max_gap`` bridged). What lies outside it
    must be mostly margin (>= ``min_margin`` of its lines): a status bar or a toolbar is cut off with the
    margin around it, a block of real content is never cut (then the leading/trailing margin alone is)."""
    n = len(content)
    idx = np.flatnonzero(content)
    if len(idx) == 0:
        return 0, n
    breaks = np.flatnonzero(np.diff(idx) > max_gap + 1)
    starts = np.r_[idx[0], idx[breaks + 1]]
    ends = np.r_[idx[breaks], idx[-1]] + 1
    k = int(np.argmax(ends - starts))
    a, b = int(starts[k]), int(ends[k])
    for lo, hi in ((0, a), (b, n)):
        if hi > lo and content[lo:hi].mean() > 1 - min_margin:
            return int(idx[0]), int(idx[-1]) + 1
    return a, b


def trim_box(rgb: np.ndarray, tol: int = 24, min_content: float = 0.12) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the main content inside uniform margins (screenshot UI, letterbox, bezel).

    The margin colour is the median of the outermost pixel frame. A row (column) has content when at least
    ``min_content`` of its pixels differ from it by more than ``tol``; the box is the longest run of content
    rows (gaps under 2 % bridged) when what it leaves out is mostly margin, so a status bar's clock or a
    toolbar's icons are cut off with the margin around them (else only leading/trailing margin is cut); then
    the same for columns within those rows. Nothing is cut when the box would be under a tenth of the frame
    (a mostly uniform photo) or no side loses at least 2 %.
    """
    h, w = rgb.shape[:2]
    frame = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]]).astype(np.int16)
    bg = np.median(frame, axis=0)
    diff = np.abs(rgb.astype(np.int16) - bg).max(axis=2) > tol
    t, b = _main_run(diff.mean(axis=1) >= min_content, max(1, h // 50))
    l, r = _main_run(diff[t:b].mean(axis=0) >= min_content, max(1, w // 50))
    if (b - t) * (r - l) < 0.1 * h * w or max(t, h - b) < 0.02 * h and max(l, w - r) < 0.02 * w:
        return 0, h, 0, w
    return t, b, l, r


def preprocess(rgb: np.ndarray, size: int, trim: bool = True) -> np.ndarray:
    """H x W x 3 uint8 RGB (any size) -> 3 x size x size float32 0..255 (whole frame, aspect not kept).

    1. Large photos are halved while the short side stays >= 4 x ``size``: ``INTER_LINEAR`` at exactly 0.5 is a
       2 x 2 box mean (an anti-aliased pyramid) and costs a few ms even on 12 MP, unlike ``INTER_AREA``.
    2. Uniform margins (screenshot UI, letterbox, bezel) are trimmed: :func:`trim_box` on a <= 320 px copy.
    3. ``INTER_AREA`` to ``size`` x ``size``.

    This is the exact transform the model was evaluated and fitted with (training imports it from here).
    """
    import cv2

    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected H x W x 3 uint8 RGB, got {rgb.shape} {rgb.dtype}")
    while min(rgb.shape[:2]) >= 4 * size:
        h, w = rgb.shape[0] & ~1, rgb.shape[1] & ~1
        rgb = cv2.resize(rgb[:h, :w], (w // 2, h // 2), interpolation=cv2.INTER_LINEAR)
    if trim and min(rgb.shape[:2]) >= 16:
        h, w = rgb.shape[:2]
        f = min(1.0, TRIM_SIDE / max(h, w))
        thumb = rgb if f == 1.0 else cv2.resize(
            rgb, (max(16, round(w * f)), max(16, round(h * f))), interpolation=cv2.INTER_AREA)
        t, b, l, r = trim_box(thumb)
        th, tw = thumb.shape[:2]
        if (t, b, l, r) != (0, th, 0, tw):
            rgb = rgb[int(t * h / th):int(np.ceil(b * h / th)), int(l * w / tw):int(np.ceil(r * w / tw))]
    small = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(small.transpose(2, 0, 1), dtype=np.float32)


def pack_bits(bits: np.ndarray) -> int:
    """Boolean vector -> int, element 0 as the most significant bit."""
    return int.from_bytes(np.packbits(bits.astype(np.uint8)).tobytes(), "big") >> ((-len(bits)) % 8)


class CopyEmbedder:
    """L2-normalised copy-detection embedding of RGB photos, plus binary codes for Hamming search.

    Args:
        name: manifest entry of the ONNX model (default: the shipped ``copy_embedding``).
        weights_dir: folder with ``MANIFEST.json`` and the files it lists.
        intra_op_threads: onnxruntime intra-op threads (1 by default: workers run one photo per core).
        providers: preference list, intersected with ``onnxruntime.get_available_providers()``.
        model_path / expected_sha256: evaluate a file outside the manifest (training/benchmarks); the sha256
            is still required and checked.
    """

    def __init__(
        self,
        name: str = DEFAULT_MODEL_NAME,
        *,
        weights_dir: Path | str | None = None,
        intra_op_threads: int = 1,
        providers: Sequence[str] | None = None,
        model_path: Path | str | None = None,
        expected_sha256: str | None = None,
        input_size: int | None = None,
    ) -> None:
        self.name = name
        self.weights_dir = Path(weights_dir) if weights_dir else DEFAULT_WEIGHTS_DIR
        self.intra_op_threads = int(intra_op_threads)
        self.providers = list(providers) if providers else list(SUPPORTED_PROVIDERS)
        self._model_path = Path(model_path) if model_path else None
        self._expected_sha256 = expected_sha256
        self._input_size = input_size
        self._session: Any = None
        self._entry: dict[str, Any] | None = None
        self._codes: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._lock = threading.Lock()

    # --- loading -------------------------------------------------------------------------------------------
    def _load(self) -> None:
        import onnxruntime as ort

        if self._model_path is not None:
            if not self._expected_sha256:
                raise EmbeddingModelError("model_path given without expected_sha256")
            entry = {"name": self.name, "file": str(self._model_path.resolve()),
                     "sha256": self._expected_sha256, "input_size": self._input_size}
            path = verified_path(Path("/"), entry)
        else:
            manifest = load_manifest(self.weights_dir)
            if self.name not in manifest:
                raise EmbeddingModelError(
                    f"{self.name!r} is not listed in {self.weights_dir / 'MANIFEST.json'}"
                )
            entry = manifest[self.name]
            path = verified_path(self.weights_dir, entry)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.intra_op_threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        available = set(ort.get_available_providers())
        providers = [p for p in self.providers if p in available] or ["CPUExecutionProvider"]
        session = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
        shape = session.get_inputs()[0].shape
        size = entry.get("input_size") or shape[-1]
        if not isinstance(size, int):
            raise EmbeddingModelError(f"{path}: input size unknown (shape {shape}); set input_size in the manifest")
        self._entry = {**entry, "input_size": int(size)}
        self._input_name = session.get_inputs()[0].name
        self.dim = int(session.get_outputs()[0].shape[-1])
        self._session = session

    def _ensure(self) -> None:
        if self._session is None:
            with self._lock:
                if self._session is None:
                    self._load()

    @property
    def input_size(self) -> int:
        self._ensure()
        assert self._entry is not None
        return int(self._entry["input_size"])

    @property
    def entry(self) -> dict[str, Any]:
        """The manifest entry of the loaded model (after the sha256 check)."""
        self._ensure()
        assert self._entry is not None
        return self._entry

    # --- embedding -----------------------------------------------------------------------------------------
    def embed(self, rgb: np.ndarray) -> np.ndarray:
        """One H x W x 3 uint8 RGB photo -> (D,) float32, L2-normalised."""
        return self.embed_batch([rgb])[0]

    def embed_batch(self, images: Iterable[np.ndarray], batch_size: int = 16) -> np.ndarray:
        """Photos (each H x W x 3 uint8 RGB, any size) -> (N, D) float32, rows L2-normalised."""
        self._ensure()
        size = self.input_size
        out: list[np.ndarray] = []
        chunk: list[np.ndarray] = []

        def flush() -> None:
            x = np.stack(chunk)
            y = self._session.run(None, {self._input_name: x})[0].astype(np.float32, copy=False)
            # the graph normalises already; renormalise against float drift so dot products are cosines
            y /= np.maximum(np.linalg.norm(y, axis=1, keepdims=True), 1e-12)
            out.append(y)
            chunk.clear()

        for img in images:
            chunk.append(preprocess(img, size))
            if len(chunk) >= batch_size:
                flush()
        if chunk:
            flush()
        if not out:
            return np.zeros((0, getattr(self, "dim", 0)), np.float32)
        return np.concatenate(out)

    # --- binary codes --------------------------------------------------------------------------------------
    def code_bits(self) -> list[int]:
        """Code widths this model has a projection for (e.g. [64, 256])."""
        self._ensure()
        return sorted(int(b) for b in (self.entry.get("codes") or {}))

    def _projection(self, bits: int) -> tuple[np.ndarray, np.ndarray]:
        if bits not in self._codes:
            self._ensure()
            codes = self.entry.get("codes") or {}
            ref = codes.get(str(bits))
            if ref is None:
                raise EmbeddingModelError(
                    f"model {self.name!r} has no {bits}-bit code projection (has {sorted(codes)})"
                )
            manifest = load_manifest(self.weights_dir)
            if ref not in manifest:
                raise EmbeddingModelError(f"code projection {ref!r} is not listed in the weights manifest")
            path = verified_path(self.weights_dir, manifest[ref])
            arr = np.load(path, allow_pickle=False).astype(np.float32)
            if arr.shape != (self.dim + 1, bits):
                raise EmbeddingModelError(f"{path}: shape {arr.shape}, expected {(self.dim + 1, bits)}")
            self._codes[bits] = (arr[:-1], arr[-1])
        return self._codes[bits]

    def binary_code(self, vec: np.ndarray, bits: int = 64) -> int:
        """Embedding (D,) -> ``bits``-wide int for Hamming search (see the module docstring)."""
        w, b = self._projection(bits)
        return pack_bits((np.asarray(vec, np.float32) @ w + b) > 0)

    def binary_codes(self, vecs: np.ndarray, bits: int = 64) -> list[int]:
        w, b = self._projection(bits)
        return [pack_bits(row) for row in (np.asarray(vecs, np.float32) @ w + b) > 0]
