"""The workbench pages: sign-in, queue, claim, linked-claims graph, decisions, precision table, audit log."""

from __future__ import annotations

import json
import secrets
from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy import select

from claimlens.api.deps import get_runtime, request_meta
from claimlens.api.routes.objects import is_evidence_of, photo_object_key
from claimlens.core import layout
from claimlens.core.audit import ACTIONS, AuditContext, AuditFilters, query_events, record
from claimlens.core.auth import Principal
from claimlens.core.db import session_scope
from claimlens.core.decisions import (
    DISMISS_REASONS,
    FINDING_ACTIONS,
    OUTCOMES,
    SEVERITY_LABELS,
    DecisionError,
    DecisionInput,
    claim_decisions,
    current_by_key,
    merge_into_report,
    precision_table,
    record_decision,
    row_key,
)
from claimlens.core.findings import group_findings
from claimlens.core.links import MAX_DEPTH, link_graph
from claimlens.core.models import Claim, FindingRow, Photo
from claimlens.core.object_urls import view_url
from claimlens.core.queue import (
    DECISION_STATES,
    SEVERITIES,
    STATUSES,
    QueueFilters,
    facet_counts,
    list_claims,
)
from claimlens.core.schemas import validate_claim_id
from claimlens.core.sessions import revoke, sign_in_with_key
from claimlens.core.storage import ObjectNotFound
from claimlens.ui.web import (
    SESSION_COOKIE,
    SIGNIN_CSRF_COOKIE,
    SignInRequired,
    UiContext,
    UiDep,
    UiError,
    check_csrf,
    finish,
    is_https,
    render,
    session_cookie_kwargs,
)

router = APIRouter(prefix="/ui", include_in_schema=False)
PAGE_SIZE = 50
OUTCOME_LABELS = {"cleared": "Cleared", "referred_siu": "Referred to SIU", "fraud_confirmed": "Fraud confirmed",
                  "undecided": "Undecided"}
ACTION_LABELS = {"confirm": "Confirm", "dismiss": "Dismiss", "escalate": "Escalate", **OUTCOME_LABELS}


def _redirect(request: Request, url: str, ctx: UiContext | None = None) -> RedirectResponse:
    response = RedirectResponse(url, status_code=303)
    finish(request, response, ctx)
    return response


def _safe_next(next_url: str | None) -> str:
    """Only same-site paths under /ui, so the sign-in page cannot be used as an open redirect."""
    if next_url and next_url.startswith("/ui/") and not next_url.startswith("//") and "\\" not in next_url:
        return next_url
    return "/ui/"


# ------------------------------------------------------------------------------------------- sign-in


@router.get("/signin")
def signin_form(request: Request, next: str | None = None) -> Response:
    rt = get_runtime()
    if rt.settings.ui.local_user:
        return _redirect(request, _safe_next(next))
    token = secrets.token_urlsafe(32)
    response = render(request, "signin.html", None, csrf_token=token, next=_safe_next(next), error=None)
    response.set_cookie(SIGNIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=is_https(request),
                        path="/ui", max_age=1800)
    return response


@router.post("/signin")
def signin(request: Request, api_key: Annotated[str, Form(max_length=200)],
           csrf_token: Annotated[str, Form(max_length=100)] = "",
           next: Annotated[str, Form(max_length=500)] = "/ui/") -> Response:
    cookie = request.cookies.get(SIGNIN_CSRF_COOKIE, "")
    if not cookie or not secrets.compare_digest(cookie.encode("utf-8", "replace"),
                                                csrf_token.encode("utf-8", "replace")):
        raise UiError(403, "Form expired or forged", "The sign-in form's security token is missing or wrong. "
                      "Reload the sign-in page and try again.")
    rt = get_runtime()
    addr, request_id = request_meta(request)
    with session_scope(rt.db_url) as s:
        made = sign_in_with_key(s, api_key.strip())
        who = made[1].principal if made else Principal("anonymous", "")
        record(s, AuditContext(who.name, who.role or None, addr, request_id, channel="ui"),
               "sign_in" if made else "sign_in_failed")
    if made is None:
        fresh = secrets.token_urlsafe(32)
        response = render(request, "signin.html", None, status=401, csrf_token=fresh, next=_safe_next(next),
                          error="That key is not valid (unknown, revoked or expired).")
        response.set_cookie(SIGNIN_CSRF_COOKIE, fresh, httponly=True, samesite="strict",
                            secure=is_https(request), path="/ui", max_age=1800)
        return response
    token, _ = made
    response = _redirect(request, _safe_next(next))
    response.set_cookie(SESSION_COOKIE, token, **session_cookie_kwargs(request))
    response.delete_cookie(SIGNIN_CSRF_COOKIE, path="/ui")
    return response


@router.post("/signout")
def signout(request: Request, ctx: UiDep, csrf_token: Annotated[str, Form(max_length=100)] = "") -> Response:
    check_csrf(ctx, csrf_token)
    with session_scope(get_runtime().db_url) as s:
        revoke(s, ctx.session.token_hash)
        record(s, ctx.audit, "sign_out")
    response = _redirect(request, "/ui/signin")
    response.delete_cookie(SESSION_COOKIE, path="/ui")
    return response


# ------------------------------------------------------------------------------------------- queue


def _param(request: Request, name: str) -> str | None:
    value = request.query_params.get(name, "").strip()
    return value or None


def _date(value: str | None, *, end: bool = False) -> datetime | None:
    if not value:
        return None
    try:
        day = datetime.fromisoformat(value).replace(tzinfo=UTC)
    except ValueError as exc:
        raise UiError(422, "Invalid date", f"{value!r} is not a date (YYYY-MM-DD).") from exc
    return day + timedelta(days=1) if end else day


@router.get("/")
def queue_page(request: Request, ctx: UiDep) -> Response:
    raw = {k: _param(request, k) for k in ("severity", "code", "check", "status", "decision", "adjuster", "q",
                                           "from", "to")}
    try:
        f = QueueFilters(severity=raw["severity"], code=raw["code"], check=raw["check"], status=raw["status"],
                         decision=raw["decision"], adjuster=raw["adjuster"], q=raw["q"],
                         date_from=_date(raw["from"]), date_to=_date(raw["to"], end=True)).validate()
        with session_scope(get_runtime().db_url) as s:
            page = list_claims(s, ctx.principal, f, cursor=_param(request, "cursor"), limit=PAGE_SIZE)
            counts = facet_counts(s, ctx.principal, f)
            record(s, ctx.audit, "list_claims", filters={k: str(v) for k, v in f.active().items()},
                   returned=len(page.claims))
    except ValueError as exc:
        raise UiError(422, "Invalid filter", str(exc)) from exc
    kept = {k: v for k, v in raw.items() if v}
    next_url = "/ui/?" + urlencode({**kept, "cursor": page.next_cursor}) if page.next_cursor else None
    return render(request, "queue.html", ctx, page=page, counts=counts, filters=raw,
                  first_url="/ui/?" + urlencode(kept), next_url=next_url, paged=bool(_param(request, "cursor")),
                  severities=list(SEVERITIES)[::-1], statuses=STATUSES, decision_states=DECISION_STATES,
                  outcome_labels=OUTCOME_LABELS)


# ------------------------------------------------------------------------------------------- claim


def _visible_claim(s: Any, principal: Principal, claim_id: str) -> Claim:
    """The claim if this user may read it; the same 404 whether it does not exist or is someone else's."""
    try:
        claim_id = validate_claim_id(claim_id)
    except ValueError as exc:
        raise UiError(404, "Claim not found", "No claim with that id.") from exc
    claim = s.get(Claim, claim_id)
    if claim is None or not (principal.can_read_all() or claim.owner == principal.name):
        raise UiError(404, "Claim not found", f"No claim {claim_id} that you can open.")
    return claim


def can_decide(principal: Principal) -> bool:
    return principal.role in ("investigator", "admin")


EXIF_FIELDS = (("capture_time", "Taken"), ("make", "Camera make"), ("model", "Camera model"),
               ("software", "Software"), ("gps", "GPS"), ("width", "Width"), ("height", "Height"),
               ("format", "Format"))


def exif_summary(photo: Photo) -> list[tuple[str, str]]:
    md = (photo.analysis or {}).get("metadata_timeline") or {}
    out = []
    for key, label in EXIF_FIELDS:
        value = md.get(key)
        if key == "gps" and isinstance(value, dict):
            value = f"{value.get('lat'):.5f}, {value.get('lon'):.5f}" if value.get("lat") is not None else None
        if value not in (None, "", [], {}):
            out.append((label, str(value)))
    return out


def evidence_numbers(evidence: dict[str, Any]) -> list[tuple[str, str]]:
    """The rule and its numbers as short label/value pairs (long lists and nested blocks abbreviated)."""
    out = []
    for key, value in (evidence or {}).items():
        if isinstance(value, float):
            text = f"{value:.4g}"
        elif isinstance(value, (dict, list)):
            text = json.dumps(value, ensure_ascii=False, default=str)
            text = text if len(text) <= 160 else text[:157] + "..."
        else:
            text = str(value)
        out.append((key.replace("_", " "), text))
    return out


def fact_groups(items: list[dict[str, Any]], claim_id: str) -> list[dict[str, Any]]:
    """The page's findings as the report's fact groups (claimlens.core.findings: one group per fact, the
    strongest finding first), so a picture flagged by both duplicate checks, or copied five times, is shown
    once. ``items`` are the page's finding dicts (``code, check, severity, photo_id, evidence_raw, message``);
    the grouping is the same function the pipeline used to write the report's ``groups`` and ``group_id``."""
    grouped = group_findings([{**it, "evidence": it["evidence_raw"], "_i": i} for i, it in enumerate(items)],
                             claim_id)
    out = []
    for g in grouped.groups:
        members = [items[grouped.findings[m]["_i"]] for m in g["members"]]
        out.append({"group_id": g["group_id"], "kind": g["kind"], "severity": g["severity"],
                    "summary": g["summary"], "checks": g["checks"], "photo_ids": g["photo_ids"],
                    "lead": members[0], "others": members[1:]})
    return out


def place_groups(groups: list[dict[str, Any]], photo_ids: list[str]
                 ) -> tuple[OrderedDict[str | None, list[dict[str, Any]]], dict[str, list[dict[str, Any]]]]:
    """Each group once, under the photo of its strongest finding (None: claim-wide), and for the other photos
    of a group a pointer to it (``also_in``), in the report's group order."""
    by_photo: OrderedDict[str | None, list[dict[str, Any]]] = OrderedDict((p, []) for p in photo_ids)
    by_photo[None] = []
    also_in: dict[str, list[dict[str, Any]]] = {}
    for g in groups:
        home = g["lead"]["photo_id"]
        by_photo.setdefault(home, []).append(g)
        for p in g["photo_ids"]:
            if p != home:
                also_in.setdefault(p, []).append(g)
    return by_photo, also_in


@router.get("/claims/{claim_id}")
def claim_page(request: Request, claim_id: str, ctx: UiDep) -> Response:
    rt = get_runtime()
    with session_scope(rt.db_url) as s:
        claim = _visible_claim(s, ctx.principal, claim_id)
        photos = s.scalars(select(Photo).where(Photo.claim_id == claim.id)
                           .order_by(Photo.created_at, Photo.id)).all()
        rows = s.scalars(select(FindingRow).where(FindingRow.claim_id == claim.id)
                         .order_by(FindingRow.severity.desc(), FindingRow.code, FindingRow.id)).all()
        history = claim_decisions(s, claim.id)
        graph = link_graph(s, ctx.principal, claim.id, depth=1)
        mentioned = {str((r.evidence or {}).get("linked_claim_id")) for r in rows} - {"None"}
        openable = {c for c, owner in s.execute(select(Claim.id, Claim.owner).where(Claim.id.in_(mentioned))).all()
                    if ctx.principal.can_read_all() or owner == ctx.principal.name}
        record(s, ctx.audit, "read_claim", claim_id=claim.id, photos=len(photos), findings=len(rows))
    current = current_by_key(history)
    items = []
    for r in rows:
        key = row_key(r)
        items.append({"key": key, "code": r.code, "check": r.check, "photo_id": r.photo_id,
                      "severity": SEVERITY_LABELS.get(r.severity, "info"), "message": r.message,
                      "evidence_raw": r.evidence or {}, "numbers": evidence_numbers(r.evidence),
                      "evidence": [(name, f"/ui/claims/{claim.id}/evidence?key={k}") for name, k in
                                   sorted((r.evidence_keys or {}).items())],
                      "linked_claim": (r.evidence or {}).get("linked_claim_id") if (r.evidence or {}).get(
                          "linked_claim_id") in openable else None, "decision": current.get(key)})
    by_photo, also_in = place_groups(fact_groups(items, claim.id), [p.id for p in photos])
    photo_docs = [{"id": p.id, "filename": p.filename, "stage": p.stage, "role": p.role, "status": p.status,
                   "exif": exif_summary(p), "sha256": p.sha256, "size": p.size_bytes,
                   "has_thumb": p.status == "analysed"} for p in photos]
    outcome = current.get("")
    linked = [n for n in graph.nodes if n["claim_id"] != claim.id]
    return render(request, "claim.html", ctx, claim=claim, photos=photo_docs, groups=by_photo, also_in=also_in,
                  history=history, outcome=outcome, linked=linked, can_decide=can_decide(ctx.principal),
                  finding_actions=FINDING_ACTIONS, outcomes=OUTCOMES, reasons=DISMISS_REASONS,
                  action_labels=ACTION_LABELS, error=_param(request, "error"), saved=_param(request, "saved"))


def _object_redirect(request: Request, ctx: UiContext, key: str) -> Response:
    url = view_url(get_runtime(), key)
    response = RedirectResponse(url, status_code=302)
    finish(request, response, ctx)
    return response


@router.get("/claims/{claim_id}/photos/{photo_id}/{variant}")
def photo_redirect(request: Request, claim_id: str, photo_id: str, variant: str, ctx: UiDep) -> Response:
    """Thumbnail or full-size photo: recorded in the audit log, then a redirect to a short-lived presigned
    URL for exactly that object (the page never holds long-lived object URLs)."""
    if variant not in ("thumbnail", "original"):
        raise UiError(404, "Not found", "No such photo view.")
    with session_scope(get_runtime().db_url) as s:
        claim = _visible_claim(s, ctx.principal, claim_id)
        photo = s.get(Photo, photo_id)
        if photo is None or photo.claim_id != claim.id:
            raise UiError(404, "Photo not found", "No such photo in this claim.")
        key = photo_object_key(photo, variant)
        record(s, ctx.audit, "read_photo", claim_id=claim.id, target=key, variant=variant)
    return _object_redirect(request, ctx, key)


@router.get("/claims/{claim_id}/evidence")
def evidence_redirect(request: Request, claim_id: str, key: str, ctx: UiDep) -> Response:
    with session_scope(get_runtime().db_url) as s:
        claim = _visible_claim(s, ctx.principal, claim_id)
        if not is_evidence_of(s, claim.id, key):
            raise UiError(404, "Evidence not found", "No such evidence image in this claim.")
        record(s, ctx.audit, "read_evidence", claim_id=claim.id, target=key)
    return _object_redirect(request, ctx, key)


@router.get("/claims/{claim_id}/report.html")
def report_html(request: Request, claim_id: str, ctx: UiDep) -> Response:
    """The self-contained HTML report (the one stored next to the claim), for reading, printing or saving."""
    rt = get_runtime()
    with session_scope(rt.db_url) as s:
        claim = _visible_claim(s, ctx.principal, claim_id)
        key = layout.report_html_key(claim.id)
        try:
            data = rt.store.get(key)
        except ObjectNotFound as exc:
            raise UiError(404, "No report yet", "This claim has no final report yet.") from exc
        record(s, ctx.audit, "read_report", claim_id=claim.id, target=key)
    response = Response(data, media_type="text/html; charset=utf-8")
    finish(request, response, ctx)
    # its own stylesheet is inline and its images are data URIs; nothing may run
    response.headers["Content-Security-Policy"] = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
                                                   "sandbox")
    return response


@router.get("/claims/{claim_id}/report.json")
def report_json(request: Request, claim_id: str, ctx: UiDep) -> Response:
    """The report JSON as the API serves it (``GET /v1/claims/{id}/report``): the stored analysis result with
    the decisions recorded so far merged in, through the session."""
    rt = get_runtime()
    with session_scope(rt.db_url) as s:
        claim = _visible_claim(s, ctx.principal, claim_id)
        key = layout.report_json_key(claim.id)
        try:
            report = json.loads(rt.store.get(key))
        except ObjectNotFound as exc:
            raise UiError(404, "No report yet", "This claim has no final report yet.") from exc
        merge_into_report(s, report)
        record(s, ctx.audit, "read_report", claim_id=claim.id, target=key)
    response = Response(json.dumps(report, ensure_ascii=False, default=str),
                        media_type="application/json")
    finish(request, response, ctx)
    return response


@router.post("/claims/{claim_id}/decisions")
def post_decision(request: Request, claim_id: str, ctx: UiDep,
                  action: Annotated[str, Form(max_length=32)],
                  csrf_token: Annotated[str, Form(max_length=100)] = "",
                  finding_key: Annotated[str, Form(max_length=64)] = "",
                  reason: Annotated[str, Form(max_length=64)] = "",
                  note: Annotated[str, Form(max_length=2000)] = "") -> Response:
    check_csrf(ctx, csrf_token)
    if not can_decide(ctx.principal):
        raise UiError(403, "Not allowed", f"Role {ctx.principal.role} cannot record decisions.")
    anchor = f"#f-{finding_key}" if finding_key else "#outcome"
    with session_scope(get_runtime().db_url) as s:
        claim = _visible_claim(s, ctx.principal, claim_id)
        try:
            d = record_decision(s, claim.id, ctx.principal.name, DecisionInput(
                action=action, finding_key=finding_key or None, reason=reason or None, note=note))
        except DecisionError as exc:
            s.rollback()
            return _redirect(request, f"/ui/claims/{claim.id}?{urlencode({'error': str(exc)})}{anchor}", ctx)
        record(s, ctx.audit, "decision", claim_id=claim.id, target=d.finding_key or "outcome",
               decision=d.action, reason=d.reason, code=d.code)
    return _redirect(request, f"/ui/claims/{claim.id}?saved={d.action}{anchor}", ctx)


# ------------------------------------------------------------------------------------------- graph


@router.get("/claims/{claim_id}/graph")
def graph_page(request: Request, claim_id: str, ctx: UiDep, depth: int = 2) -> Response:
    depth = max(1, min(depth, MAX_DEPTH))
    with session_scope(get_runtime().db_url) as s:
        claim = _visible_claim(s, ctx.principal, claim_id)
        graph = link_graph(s, ctx.principal, claim.id, depth=depth)
        record(s, ctx.audit, "read_links", claim_id=claim.id, depth=depth, nodes=len(graph.nodes))
    return render(request, "graph.html", ctx, claim=claim, graph=graph, depth=depth, max_depth=MAX_DEPTH,
                  outcome_labels=OUTCOME_LABELS,
                  graph_json=json.dumps(graph.to_json(), ensure_ascii=False).replace("<", "\\u003c"))


# ------------------------------------------------------------------------------------------- admin


@router.get("/admin/precision")
def precision_page(request: Request, ctx: UiDep) -> Response:
    if not ctx.principal.can_read_all():
        raise UiError(403, "Not allowed", "Investigators and admins see the precision table.")
    with session_scope(get_runtime().db_url) as s:
        rows = precision_table(s)
    return render(request, "precision.html", ctx, rows=rows)


@router.get("/admin/audit")
def audit_page(request: Request, ctx: UiDep) -> Response:
    if ctx.principal.role != "admin" and not get_runtime().settings.ui.local_user:
        raise UiError(403, "Not allowed", "Only admins read the audit log.")
    raw = {k: _param(request, k) for k in ("principal", "action", "claim_id", "from", "to")}
    f = AuditFilters(principal=raw["principal"], action=raw["action"], claim_id=raw["claim_id"],
                     since=_date(raw["from"]), until=_date(raw["to"], end=True))
    try:
        with session_scope(get_runtime().db_url) as s:
            events, nxt = query_events(s, f, cursor=_param(request, "cursor"), limit=100)
    except ValueError as exc:
        raise UiError(422, "Invalid filter", str(exc)) from exc
    kept = {k: v for k, v in raw.items() if v}
    next_url = "/ui/admin/audit?" + urlencode({**kept, "cursor": nxt}) if nxt else None
    return render(request, "audit.html", ctx, events=events, filters=raw, actions=ACTIONS, next_url=next_url)


# ------------------------------------------------------------------------------------------- errors


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(SignInRequired)
    async def _signin(request: Request, exc: SignInRequired) -> Response:
        if request.method == "GET":
            response: Response = RedirectResponse("/ui/signin?" + urlencode({"next": exc.next_url}), 303)
        else:
            response = JSONResponse({"error": {"code": "unauthorized", "message": "sign in first"}}, 401)
        finish(request, response, None)
        return response

    @app.exception_handler(UiError)
    async def _ui_error(request: Request, exc: UiError) -> Response:
        return render(request, "error.html", None, status=exc.status, title=exc.title, message=exc.message)
