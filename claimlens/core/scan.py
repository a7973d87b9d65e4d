"""``claimlens scan DIR``: the embedded mode. Same checks and reports as the service, run in-process with
SQLite and a local directory that mirrors the bucket layout; no services needed.

DIR holds one sub-folder per claim. A claim folder has photos and an optional ``claim.json`` with the
claim fields (see :class:`claimlens.core.schemas.ClaimFields`; ``claim_id`` defaults to the folder name)
and an optional ``"photos"`` map ``{"file.jpg": {"stage": "...", "role": "...", "regions": [...]}}``.
Photos in a sub-folder named after a stage (``underwriting/``, ``survey/``, ...) get that stage; others
default to ``survey``.
"""

from __future__ import annotations

import json
import mimetypes
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from claimlens.checks.base import Severity
from claimlens.config import Settings, get_settings
from claimlens.core import layout
from claimlens.core.claims import ClaimError, store_photo, submit_claim, upsert_claim
from claimlens.core.db import session_scope
from claimlens.core.migrate import upgrade
from claimlens.core.pipeline import Runtime, analyse_photo, assess_claim, pending_photos
from claimlens.core.schemas import ClaimFields, PhotoUploadMeta, Stage
from claimlens.core.storage import LocalStore

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif", ".tif", ".tiff", ".bmp"}
STAGES = {s.value for s in Stage}


@dataclass
class ClaimInput:
    fields: ClaimFields
    photos: list[tuple[Path, PhotoUploadMeta]]


def embedded_runtime(data_dir: Path | None = None) -> Runtime:
    base = get_settings()
    settings: Settings = base.model_copy(update={
        "storage_backend": "local", "database_url": None, "data_dir": data_dir or base.data_dir})
    upgrade(settings.effective_database_url)
    return Runtime(settings=settings, store=LocalStore(settings.objects_dir))


def read_claim_folder(folder: Path) -> ClaimInput:
    raw: dict[str, Any] = {}
    if (folder / "claim.json").is_file():
        raw = json.loads((folder / "claim.json").read_text(encoding="utf-8"))
    photo_meta: dict[str, Any] = raw.pop("photos", {}) or {}
    raw.setdefault("claim_id", folder.name)
    fields = ClaimFields.model_validate(raw)
    photos = []
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()):
        rel = path.relative_to(folder)
        meta = dict(photo_meta.get(str(rel), photo_meta.get(path.name, {})))
        if "stage" not in meta:
            meta["stage"] = rel.parts[0] if len(rel.parts) > 1 and rel.parts[0] in STAGES else "survey"
        photos.append((path, PhotoUploadMeta.model_validate(meta)))
    return ClaimInput(fields=fields, photos=photos)


def scan(root: Path, rt: Runtime, console: Console | None = None) -> list[dict[str, Any]]:
    """Analyse every claim folder under ``root``; returns one summary dict per claim."""
    console = console or Console()
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    inputs: list[ClaimInput] = []
    for folder in folders:
        try:
            inputs.append(read_claim_folder(folder))
        except (ValidationError, json.JSONDecodeError) as exc:
            console.print(f"[red]skipping {folder.name}: invalid claim.json[/red]: {exc}")
    inputs.sort(key=lambda c: (c.fields.report_time.isoformat() if c.fields.report_time else "",
                               c.fields.claim_id))
    summaries = []
    total = sum(len(c.photos) for c in inputs)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("analysing photos", total=total)
        for claim_in in inputs:
            summaries.append(_scan_claim(rt, claim_in, progress, task))
    return summaries


def _scan_claim(rt: Runtime, claim_in: ClaimInput, progress: Progress, task: Any) -> dict[str, Any]:
    claim_id = claim_in.fields.claim_id
    with session_scope(rt.db_url) as s:
        upsert_claim(s, claim_in.fields, owner="embedded")
    rejected: list[str] = []
    for path, meta in claim_in.photos:
        try:
            store_photo(rt, claim_id, path.read_bytes(), filename=path.name,
                        content_type=mimetypes.guess_type(path.name)[0], meta=meta)
        except ClaimError as exc:
            rejected.append(f"{path.name}: {exc.message}")
        progress.advance(task, 0.5)
    try:
        revision, _ = submit_claim(rt, claim_id)
    except ClaimError as exc:
        return {"claim_id": claim_id, "photos": 0, "score": None, "error": exc.message, "rejected": rejected}
    with session_scope(rt.db_url) as s:
        todo = pending_photos(s, claim_id, rt.signature)
    for photo_id in todo:
        analyse_photo(rt, photo_id)
        progress.advance(task, 0.5)
    progress.advance(task, 0.5 * (len(claim_in.photos) - len(todo)))
    assess_claim(rt, claim_id, revision)
    report = json.loads(rt.store.get(layout.report_json_key(claim_id)))
    # counted per fact (report groups), as the score counts them: five copies of one picture are one
    counts = {sev.label: 0 for sev in Severity} | report.get("group_severity_counts", {})
    top = report["groups"][0] if report.get("groups") else None
    return {"claim_id": claim_id, "photos": len(claim_in.photos), "score": report["score"],
            "counts": counts, "findings": len(report["findings"]),
            "top": report["findings"][top["lead"]]["code"] if top and top["severity"] != "info" else "",
            "rejected": rejected}


def scan_command(root: Path, *, data_dir: Path | None = None) -> int:
    console = Console()
    if not root.is_dir():
        console.print(f"[red]not a folder: {root}[/red]")
        return 2
    rt = embedded_runtime(data_dir)
    summaries = scan(root, rt, console)
    table = Table(title=f"claimlens scan of {root}")
    table.add_column("claim", no_wrap=True, min_width=max((len(sm["claim_id"]) for sm in summaries), default=5))
    for col in ("photos", "score", "high", "medium", "low", "info", "findings", "top finding"):
        table.add_column(col)
    for sm in summaries:  # severities count facts (report groups); "findings" counts the findings behind them
        c = sm.get("counts", {})
        table.add_row(sm["claim_id"], str(sm["photos"]), str(sm.get("score", "")), str(c.get("high", 0)),
                      str(c.get("medium", 0)), str(c.get("low", 0)), str(c.get("info", 0)),
                      str(sm.get("findings", "")), sm.get("top", ""))
    console.print(table)
    for sm in summaries:
        for line in sm.get("rejected", []):
            console.print(f"[yellow]{sm['claim_id']}: rejected {line}[/yellow]")
    objects = rt.settings.objects_dir.resolve()
    console.print(f"Reports: {objects}/claims/<claim>/report.html and report.json")
    return 0
