"""Fit the learned recapture head and the fused recapture score on the DEV split of the real sets.

Runs in the project venv (ONNX Runtime + NumPy; no torch). Steps:

``features``  extract the frozen backbone's features (claimlens.vision.integrity.recapture_learned) and the
              hand-made spectral / frame cues (claimlens.vision.integrity.recapture) of
              * every photo of recapture_real, as stored and re-encoded as a messenger does
                (claimlens.bench.messenger: long side 1600 px, JPEG 70-85, no metadata);
              * the genuine photos of car_damage_roboflow, car_damage_train (val) and tamper_real (authentic)
                as stored (car photos: extra negatives; CASIA's are scored for the thresholds, never fitted on);
              into ``out/recapture/features.npz`` (dev AND test rows, with their split; the fit reads dev only).
``fit``       on dev rows only: standardise -> PCA (``--dims``) -> L2-logistic (``--l2``) on the learned
              features (recapture_real photos and their messenger copies, plus the other genuine dev photos),
              then the fusion logistic [learned logit (out-of-fold), peak_second, frame] on
              recapture_real dev; writes ``weights/recapture_head.npz`` and prints the fusion weights
              to paste into ``recapture.FUSED_WEIGHTS``. ``--cv`` reports grouped 5-fold CV on dev (scenes kept
              together) for the chosen settings; it never reads test rows.
``cross``     cross-source: fit on one source of recapture_real (+ the other genuine dev photos), score another.

Usage (one core)::

    OMP_NUM_THREADS=1 .venv/bin/python training/fit_recapture_head.py features
    OMP_NUM_THREADS=1 .venv/bin/python training/fit_recapture_head.py fit --dims 192 --l2 10 --cv
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np

from claimlens.bench.messenger import messenger_copy
from claimlens.bench.recapture import auc, fit_logistic, tpr_at_fpr
from claimlens.datasets import integrity_splits as splits
from claimlens.vision.decode import decode_photo
from claimlens.vision.integrity import recapture as rc
from claimlens.vision.integrity import recapture_learned as rl

OUT = Path("out/recapture")
HEAD_PATH = Path("weights/recapture_head.npz")
CUES = ("peak_second", "chroma_peak", "frame")  # extracted (the hand-made score's inputs)
FUSION_CUES = ("peak_second", "frame")  # fused (colour moire got ~0 weight: -0.03; not computed at run time)


def _fusion_columns(C: np.ndarray) -> np.ndarray:
    return C[:, [CUES.index(k) for k in FUSION_CUES]]


def _row(data: bytes) -> tuple[np.ndarray, list[float]]:
    photo = decode_photo(data)
    res = rc.analyse(photo, learned=False)
    return rl.features(photo).vector(), [float(res.features[k]) for k in CUES]


def extract(shared: Path) -> None:
    table = splits.split_table(shared)
    meta, X, C = [], [], []
    rec = splits.read_recapture_split()
    for img, r in rec.items():
        data = (shared / "recapture_real" / img).read_bytes()
        for variant, blob in (("orig", data), ("messenger", messenger_copy(data, seed=_seed(img)))):
            x, c = _row(blob)
            X.append(x)
            C.append(c)
            meta.append(("recapture_real", img, r["label"], r["kind_detail"], r["source"], r["scene"], r["split"], variant))
    for name, rel, path in splits.genuine_photos(shared):
        if name == "recapture_real":
            continue
        group, split = table.rows[(name, rel)]
        x, c = _row(path.read_bytes())
        X.append(x)
        C.append(c)
        meta.append((name, rel, "real", "real", name, group, split, "orig"))
    OUT.mkdir(parents=True, exist_ok=True)
    np.savez(OUT / "features.npz", X=np.array(X), C=np.array(C), meta=np.array(meta))
    print(f"{len(X)} rows -> {OUT / 'features.npz'}")


def _seed(name: str) -> int:
    return int(hashlib.md5(name.encode()).hexdigest()[:8], 16)


def fit_head(X: np.ndarray, y: np.ndarray, w: np.ndarray, dims: int, l2: float) -> dict[str, np.ndarray]:
    """Standardise, PCA to ``dims`` (on these rows), weighted L2 logistic."""
    mean = X.mean(axis=0)
    scale = X.std(axis=0) + 1e-6
    Z = (X - mean) / scale
    _, _, vt = np.linalg.svd(Z - Z.mean(axis=0), full_matrices=False)
    basis = vt[:dims].T
    P = Z @ basis
    coef = _weighted_logistic(P, y, w, l2)
    return {"mean": mean, "scale": scale, "basis": basis, "bias": np.array([coef[0]]), "weights": coef[1:]}


def _weighted_logistic(X: np.ndarray, y: np.ndarray, w: np.ndarray, l2: float, iters: int = 60) -> np.ndarray:
    A = np.hstack([np.ones((len(X), 1)), X])
    b = np.zeros(A.shape[1])
    reg = l2 * np.r_[0, np.ones(A.shape[1] - 1)]
    for _ in range(iters):
        p = 1 / (1 + np.exp(-np.clip(A @ b, -50, 50)))
        grad = A.T @ (w * (p - y)) + reg * b
        H = (A * (w * p * (1 - p))[:, None]).T @ A + np.diag(reg) + 1e-9 * np.eye(len(b))
        b -= np.linalg.solve(H, grad)
    return b


# CASIA (tamper_real) is research-only and no model trained on it may ship: its authentic photos are scored
# (they count in the false-alarm budget and the thresholds) but never fitted on.
NOT_FITTED_ON = ("tamper_real",)


def _fitted(meta: np.ndarray) -> np.ndarray:
    return ~np.isin(meta[:, 0], NOT_FITTED_ON)


def _training_rows(meta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels and weights: recapture_real rows weigh 1; the other genuine photos together weigh as much as
    recapture_real's real photos (they are many, small and all of cars)."""
    y = (meta[:, 2] == "recaptured").astype(float)
    other = meta[:, 0] != "recapture_real"
    w = np.ones(len(meta))
    n_rr_real = int(((meta[:, 0] == "recapture_real") & (y == 0)).sum())
    if other.any():
        w[other] = n_rr_real / other.sum()
    return y, w


def _folds(meta: np.ndarray, k: int = 5) -> np.ndarray:
    """Fold of each row by its scene / group (so a scene and its re-photographs stay in one fold)."""
    return np.array([int(hashlib.md5(f"{m[0]}/{m[5]}".encode()).hexdigest()[:8], 16) % k for m in meta])


def cross_validate(X: np.ndarray, meta: np.ndarray, dims: int, l2: float) -> np.ndarray:
    """Out-of-fold learned logits of every (dev) row."""
    y, w = _training_rows(meta)
    fold = _folds(meta)
    out = np.zeros(len(X))
    for f in range(5):
        tr, te = (fold != f) & _fitted(meta), fold == f
        head = fit_head(X[tr], y[tr], w[tr], dims, l2)
        out[te] = [rl.head_logit(x, head) for x in X[te]]
    return out


def _report(name: str, logit: np.ndarray, meta: np.ndarray) -> None:
    rr = meta[:, 0] == "recapture_real"
    for variant in ("orig", "messenger"):
        sel = rr & (meta[:, 7] == variant)
        pos = list(logit[sel & (meta[:, 2] == "recaptured")])
        neg = list(logit[sel & (meta[:, 2] == "real")])
        print(f"  {name} {variant}: AUC {auc(pos, neg):.3f} TPR@1% {tpr_at_fpr(pos, neg):.3f} (n {len(pos)}+{len(neg)})")
    other = ~rr
    if other.any():
        print(f"  {name} other genuine dev: logit p99 {np.percentile(logit[other], 99):.2f}, max {logit[other].max():.2f}")


def fit(dims: int, l2: float, cv: bool) -> None:
    z = np.load(OUT / "features.npz")
    X, C, meta = z["X"], z["C"], z["meta"]
    dev = meta[:, 6] == "dev"
    X, C, meta = X[dev], C[dev], meta[dev]
    oof = cross_validate(X, meta, dims, l2)
    if cv:
        _report(f"learned dims={dims} l2={l2} (5-fold, dev)", oof, meta)
    y, w = _training_rows(meta)
    fitted = _fitted(meta)
    head = fit_head(X[fitted], y[fitted], w[fitted], dims, l2)
    # fusion on recapture_real dev (originals and messenger copies): out-of-fold learned logit + the cues
    F = np.column_stack([oof, _fusion_columns(C)])
    wf = fit_logistic(F[fitted], y[fitted], l2=1.0)
    names = ["learned_logit", *FUSION_CUES]
    fused = {"bias": round(float(wf[0]), 3)} | {k: round(float(v), 3) for k, v in zip(names, wf[1:])}
    print("FUSED_WEIGHTS =", fused)
    if cv:
        _report("fused (5-fold learned logit, dev)", F @ wf[1:] + wf[0], meta)
    # operating thresholds from the out-of-fold fused scores of the dev genuine photos (the in-sample
    # scores of the final head would be optimistic): MEDIUM at <= 0.2 %, LOW at <= 0.5 % of them
    score = 1 / (1 + np.exp(-(F @ wf[1:] + wf[0])))
    genuine = np.sort(score[(y == 0) & (meta[:, 7] == "orig")])[::-1]
    for name, share in (("RECAPTURE_THRESHOLD (MEDIUM)", 0.002), ("RECAPTURE_LOW", 0.005)):
        k = int(np.floor(share * len(genuine)))
        thr = float(genuine[k]) + 1e-4
        pos = score[(y == 1)]
        print(f"{name} = {thr:.4f}: dev genuine flagged {int((genuine >= thr).sum())}/{len(genuine)}, "
              f"dev recaptures (both variants) {float((pos >= thr).mean()):.3f}")
    HEAD_PATH.parent.mkdir(parents=True, exist_ok=True)
    np.savez(HEAD_PATH, **{k: v.astype(np.float32) for k, v in head.items()})
    print(f"head -> {HEAD_PATH}")


def cross_source(dims: int, l2: float) -> None:
    """Fit the head on one source of recapture_real (all its photos, both variants) plus the other genuine
    dev photos, score another source (never seen, other phones, other screens): the learned logit and the
    fused score with the shipped fusion weights."""
    z = np.load(OUT / "features.npz")
    X, C, meta = z["X"], z["C"], z["meta"]
    rr = meta[:, 0] == "recapture_real"
    other_dev = (~rr) & (meta[:, 6] == "dev")
    for fit_src, test_src in (("lordsiddi", "ishika"), ("ishika", "lordsiddi"), ("lordsiddi", "agrawalanshika"),
                              ("ishika", "agrawalanshika")):
        tr = ((rr & (meta[:, 4] == fit_src)) | other_dev) & _fitted(meta)
        y, w = _training_rows(meta[tr])
        head = fit_head(X[tr], y, w, dims, l2)
        for variant in ("orig", "messenger"):
            te = rr & (meta[:, 4] == test_src) & (meta[:, 7] == variant)
            logit = np.array([rl.head_logit(x, head) for x in X[te]])
            fw = rc.FUSED_WEIGHTS
            fused = fw["bias"] + fw["learned_logit"] * logit + _fusion_columns(C[te]) @ np.array([fw[k] for k in FUSION_CUES])
            lab = meta[te, 2]
            for name, s in (("learned", logit), ("fused", fused)):
                pos, neg = list(s[lab == "recaptured"]), list(s[lab == "real"])
                print(f"fit {fit_src} -> test {test_src} {variant} {name}: AUC {auc(pos, neg):.3f} "
                      f"TPR@1% {tpr_at_fpr(pos, neg):.3f} (n {len(pos)}+{len(neg)})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("step", choices=("features", "fit", "cross"))
    ap.add_argument("--shared", type=Path, default=splits.SHARED_DATA)
    ap.add_argument("--dims", type=int, default=192)
    ap.add_argument("--l2", type=float, default=10.0)
    ap.add_argument("--cv", action="store_true")
    args = ap.parse_args()
    if args.step == "features":
        extract(args.shared)
    elif args.step == "cross":
        cross_source(args.dims, args.l2)
    else:
        fit(args.dims, args.l2, args.cv)


if __name__ == "__main__":
    main()

