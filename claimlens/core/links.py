"""The linked-claims graph (串并): claims joined by shared photos, near-duplicate photos, VINs and plates.

Edges come from ``claim_links`` (written by each claim's assessment: shared and near-duplicate photos, cloned
plates) and from the claim records themselves: two claims that name the same VIN or the same plate are the same
vehicle claimed twice, which an investigator wants to see next to the photo links even when no check flagged
it (a second claim on one car is often honest, so these edges are context, not findings). The walk is breadth-first, bounded in
depth and in node count, because a ring of a thousand claims must not turn one page view into a scan of the
whole table. Claims the principal may not read are left out with their edges (adjusters see their own
claims only), so the graph never reveals another adjuster's claim ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from claimlens.core.auth import Principal
from claimlens.core.models import Claim, ClaimLink, ClaimOutcome

MAX_DEPTH = 4
MAX_NODES = 200
# reasons of the edges read off the claim records (not finding codes)
SAME_VIN = "claim.same_vin"
SAME_PLATE = "claim.same_plate"

# why two claims are linked, from the finding code that created the link (prefix match)
REASON_LABELS = (
    ("exact_duplicate.", "shared photo (same picture)"),
    ("reused_photo.", "near-duplicate photo"),
    ("plate_vin.vin", "shared VIN"),
    ("plate_vin.cloned_plate", "shared plate / VIN"),
    ("plate_vin.", "shared plate / VIN"),
    ("damage.", "same damaged part"),
    (SAME_VIN, "same VIN on both claims"),
    (SAME_PLATE, "same plate on both claims"),
)


def reason_label(code: str) -> str:
    return next((label for prefix, label in REASON_LABELS if code.startswith(prefix)), code)


@dataclass
class LinkGraph:
    root: str
    depth: int
    nodes: list[dict[str, Any]]
    edges: list[dict[str, Any]]
    truncated: bool

    def to_json(self) -> dict[str, Any]:
        return {"claim_id": self.root, "depth": self.depth, "nodes": self.nodes, "edges": self.edges,
                "truncated": self.truncated}


def _edges_of(s: Session, frontier: list[str], limit: int) -> list[tuple[str, str, str]]:
    """Edges touching ``frontier``: the stored claim links plus claims sharing a VIN or a plate (a ≤ b)."""
    rows = [tuple(r) for r in s.execute(
        select(ClaimLink.claim_a, ClaimLink.claim_b, ClaimLink.reason)
        .where(or_(ClaimLink.claim_a.in_(frontier), ClaimLink.claim_b.in_(frontier)))).all()]
    for column, reason in ((Claim.vin, SAME_VIN), (Claim.plate, SAME_PLATE)):
        values = {v for v in s.scalars(select(column).where(Claim.id.in_(frontier))).all() if v}
        if not values:
            continue
        walking = set(frontier)
        for members in _claims_by_value(s, column, values, limit).values():
            mine = [c for c in members if c in walking]
            rows.extend((*sorted((m, o)), reason) for m in mine for o in members if o != m)
    return rows


def _claims_by_value(s: Session, column: Any, values: set[str], limit: int) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for cid, value in s.execute(select(Claim.id, column).where(column.in_(values)).order_by(Claim.id)
                                .limit(limit * 4)).all():
        out.setdefault(value, []).append(cid)
    return out


def link_graph(s: Session, principal: Principal, root: str, *, depth: int = 2,
               max_nodes: int = MAX_NODES) -> LinkGraph:
    depth = max(1, min(depth, MAX_DEPTH))
    max_nodes = max(2, min(max_nodes, MAX_NODES))
    levels = {root: 0}
    frontier = [root]
    edges: dict[tuple[str, str], set[str]] = {}
    truncated = False
    for level in range(1, depth + 1):
        if not frontier:
            break
        rows = _edges_of(s, frontier, max_nodes)
        nxt: list[str] = []
        for a, b, reason in sorted(set(rows)):
            for c in (a, b):
                if c not in levels:
                    if len(levels) >= max_nodes:
                        truncated = True
                        continue
                    levels[c] = level
                    nxt.append(c)
            if a in levels and b in levels:
                edges.setdefault((a, b), set()).add(reason)
        frontier = nxt
    if frontier and depth < MAX_DEPTH:
        # links beyond the last level walked exist when a frontier node has an edge to an unseen claim
        more = _edges_of(s, frontier, max_nodes)
        truncated = truncated or any(a not in levels or b not in levels for a, b, _ in more)
    claims = {c.id: c for c in s.scalars(select(Claim).where(Claim.id.in_(list(levels)))).all()}
    outcomes = dict(s.execute(select(ClaimOutcome.claim_id, ClaimOutcome.outcome)
                              .where(ClaimOutcome.claim_id.in_(list(levels)))).all())
    visible = {cid for cid, c in claims.items() if principal.can_read_all() or c.owner == principal.name}
    nodes = [{"claim_id": cid, "level": lvl, "score": claims[cid].score, "status": claims[cid].status,
              "plate": claims[cid].plate, "outcome": outcomes.get(cid)}
             for cid, lvl in sorted(levels.items(), key=lambda kv: (kv[1], kv[0])) if cid in visible]
    out_edges = [{"source": a, "target": b, "reasons": sorted(rs), "labels": sorted({reason_label(r) for r in rs})}
                 for (a, b), rs in sorted(edges.items()) if a in visible and b in visible]
    return LinkGraph(root=root, depth=depth, nodes=nodes, edges=out_edges, truncated=truncated)
