"""``claimlens bench integrity-fa [SHARED_DATA] [--opt k=v]``: the integrity checks' false-alarm rate on genuine photos.

Runs the three integrity checks (``recapture``, ``tamper``, ``metadata_forensics``; each photo its own
survey-stage photo, as ``claimlens scan`` would with one photo per claim) on every genuine photo of the
false-alarm budget (docs/integrity.md): all of car_damage_roboflow, the val photos of car_damage_train, the
``real`` photos of recapture_real and the ``authentic`` photos of tamper_real, found under SHARED_DATA
(default ../shared/data). A photo counts as flagged when a check emits a finding of that severity or
higher, exactly as the report would show it.

Options: ``split=test|dev|all`` (default test: the fixed halves of claimlens.datasets.integrity_splits; dev is
where the thresholds were chosen), ``messenger=1`` (re-encode every photo as a messenger does first:
claimlens.bench.messenger), ``sets=a,b`` (a subset of the four), ``limit=N``, ``dump=1`` (per-photo findings
and scores).

Metrics: ``flag_rate`` (LOW or higher, budget 0.02) and ``flag_rate_medium`` (MEDIUM or higher, budget 0.005),
``budget_met``; per set and per finding code the same; ``ms_per_image`` (the three checks, decode excluded).
"""

from __future__ import annotations

import hashlib
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from claimlens.bench.recapture import rnd
from claimlens.checks.base import PhotoInfo, Severity
from claimlens.datasets import integrity_splits as splits
from claimlens.vision.decode import decode_photo

BUDGET_ANY = 0.02
BUDGET_MEDIUM = 0.005


def integrity_checks() -> tuple[Any, ...]:
    from claimlens.checks.integrity import MetadataForensicsCheck, RecaptureCheck, TamperCheck

    return RecaptureCheck(), TamperCheck(), MetadataForensicsCheck()


def survey_info(name: str) -> PhotoInfo:
    pid = hashlib.sha256(name.encode()).hexdigest()[:32]
    return PhotoInfo(photo_id=pid, claim_id="BENCH", stage="survey", role=None, sha256="0" * 64, size_bytes=0,
                     filename=None, uploaded_at=None)


def run(dataset_dir: Path | None, *, suite: bool, options: dict[str, str]) -> dict[str, Any]:
    from claimlens.bench.messenger import messenger_copy

    if suite:
        raise SystemExit("bench integrity-fa has no generated suite: it measures real genuine photos")
    shared = dataset_dir or splits.SHARED_DATA
    split = options.get("split", "test")
    if split not in ("dev", "test", "all"):
        raise SystemExit("split must be dev, test or all")
    messenger = options.get("messenger", "0") == "1"
    wanted = set(options["sets"].split(",")) if options.get("sets") else set(splits.GENUINE_SETS)
    table = splits.split_table(shared)
    photos = [(n, r, p) for n, r, p in splits.genuine_photos(shared)
              if n in wanted and (split == "all" or table.split(n, r) == split)]
    if not photos:
        raise SystemExit(f"no genuine photos found under {shared} (sets {sorted(wanted)}, split {split})")
    if options.get("limit"):
        photos = photos[: int(options["limit"])]
    checks = integrity_checks()
    t_start = time.perf_counter()
    items, t_an = [], []
    for name, rel, path in photos:
        data = path.read_bytes()
        if messenger:
            data = messenger_copy(data, seed=int(hashlib.md5(rel.encode()).hexdigest()[:8], 16))
        photo = decode_photo(data)
        info = survey_info(f"{name}/{rel}")
        t0 = time.perf_counter()
        findings, scores = [], {}
        for check in checks:
            res = check.analyse_photo(photo, info)
            findings += [(f.code, int(f.severity)) for f in res.findings]
            scores.update(_scores(check.name, res.data))
        t_an.append(time.perf_counter() - t0)
        items.append({"set": name, "image": rel, "findings": findings, "scores": scores})

    def rates(sel: list[dict[str, Any]]) -> dict[str, Any]:
        n = len(sel)
        low = sum(any(s >= Severity.LOW for _, s in i["findings"]) for i in sel)
        med = sum(any(s >= Severity.MEDIUM for _, s in i["findings"]) for i in sel)
        return {"n": n, "flagged": low, "flag_rate": rnd(low / n) if n else None,
                "flagged_medium": med, "flag_rate_medium": rnd(med / n) if n else None}

    metrics: dict[str, Any] = rates(items)
    metrics["budget"] = {"flag_rate_max": BUDGET_ANY, "flag_rate_medium_max": BUDGET_MEDIUM}
    metrics["budget_met"] = bool(metrics["flag_rate"] <= BUDGET_ANY and metrics["flag_rate_medium"] <= BUDGET_MEDIUM)
    metrics["per_set"] = {s: rates([i for i in items if i["set"] == s]) for s in sorted({i["set"] for i in items})}
    codes = sorted({c for i in items for c, _ in i["findings"]})
    metrics["per_code"] = {c: {"low_or_higher": sum(any(cc == c and s >= Severity.LOW for cc, s in i["findings"])
                                                    for i in items),
                               "medium_or_higher": sum(any(cc == c and s >= Severity.MEDIUM for cc, s in i["findings"])
                                                       for i in items),
                               "info": sum(any(cc == c and s == Severity.INFO for cc, s in i["findings"])
                                           for i in items)} for c in codes}
    metrics["ms_per_image"] = round(1000 * statistics.mean(t_an), 2)
    metrics["ms_per_image_p95"] = round(1000 * float(np.percentile(t_an, 95)), 2)
    result: dict[str, Any] = {"bench": "integrity-fa", "dataset": str(shared), "n_images": len(items),
                              "seconds": round(time.perf_counter() - t_start, 1), "split": split,
                              "messenger": messenger, "metrics": metrics, "peers": {}}
    if options.get("dump"):
        result["per_image"] = items
    return result


def _scores(check: str, data: dict[str, Any]) -> dict[str, float]:
    """The scores an investigator sorts by (recorded in the analysis data whether or not a finding fired)."""
    if check == "recapture":
        return {"recapture": rnd(data.get("score")), "screenshot": rnd(data.get("screenshot_score"))}
    if check == "tamper":
        return {"copy_move": rnd(data.get("copy_move_score")), "splice": rnd(data.get("splice_score"))}
    return {}
