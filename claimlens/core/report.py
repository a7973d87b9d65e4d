"""The claim report: JSON for loss assessment, a self-contained HTML page for investigators.

The HTML embeds the photo thumbnails and evidence images as data URIs so the single file stored next to
the claim can be opened, mailed or archived without access to the bucket.
"""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from claimlens.core import layout
from claimlens.core.findings import HALF_POINTS, REPEAT_DECAY, SEVERITY_POINTS, GroupedFindings
from claimlens.core.models import Claim, Photo

_ENV = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                   autoescape=select_autoescape(["html"]))

REPORT_SCHEMA_VERSION = "1.1"
"""major.minor of report.json. A minor bump only adds fields (a reader of 1.0 reads 1.1 unchanged); a major
bump renames, removes or changes the meaning of one. 1.1: ``groups``, ``findings[].group_id``,
``score_points``, and the score counts each group once (README, "Claim score")."""


def build_report(*, claim: Claim, photos: list[Photo], grouped: GroupedFindings, revision: int,
                 producer: dict[str, Any], group: list[dict[str, Any]]) -> dict[str, Any]:
    """The report document (:data:`REPORT_SCHEMA_VERSION`). Findings are sorted most severe first; ``groups``
    lists the facts they state (claimlens.core.findings), strongest first, and the score counts each once."""
    findings = grouped.findings
    members = sorted({c for e in group for c in (e["claim_a"], e["claim_b"])} - {claim.id})
    photo_docs = []
    for p in photos:
        meta = (p.analysis or {}).get("metadata_timeline", {})
        photo_docs.append({
            "photo_id": p.id, "stage": p.stage, "role": p.role, "filename": p.filename, "status": p.status,
            "error": p.error, "sha256": p.sha256, "size_bytes": p.size_bytes,
            "uploaded_at": p.uploaded_at.isoformat() if p.uploaded_at else None,
            "capture_time": meta.get("capture_time"), "width": meta.get("width"), "height": meta.get("height"),
            "regions": p.regions or [], "object_key": p.object_key,
            "thumbnail_key": layout.thumbnail_key(claim.id, p.id) if p.status == "analysed" else None,
        })
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "claim_id": claim.id,
        "revision": revision,
        "status": "final",
        "generated_at": datetime.now(UTC).isoformat(),
        "producer": producer,
        "score": grouped.score,
        "score_points": grouped.points,
        "severity_counts": dict(Counter(f["severity"] for f in findings)),
        "group_severity_counts": dict(Counter(g["severity"] for g in grouped.groups)),
        "claim": claim.fields,
        "photos": photo_docs,
        "findings": findings,
        "groups": grouped.groups,
        "linked_claims": {"claims": members, "links": group},
    }


def _data_uri(data: bytes | None, mime: str = "image/jpeg") -> str | None:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}" if data else None


def render_html(report: dict[str, Any], load: Callable[[str], bytes | None]) -> str:
    """Render the investigator page; ``load(key)`` fetches thumbnails/evidence to embed."""
    thumbs = {p["photo_id"]: _data_uri(load(p["thumbnail_key"])) if p["thumbnail_key"] else None
              for p in report["photos"]}
    evidence = {key: _data_uri(load(key), "image/png" if key.endswith(".png") else "image/jpeg")
                for f in report["findings"] for key in f["evidence_images"].values()}
    rule = {"points": SEVERITY_POINTS, "decay": REPEAT_DECAY, "half": HALF_POINTS}
    return _ENV.get_template("report.html").render(r=report, thumbs=thumbs, evidence=evidence, rule=rule)
