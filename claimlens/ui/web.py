"""Request plumbing of the workbench: the signed-in session, CSRF checks, templates, security headers.

Pages never call the API over HTTP; they use the same core functions as the API routes with a
:class:`~claimlens.core.auth.Principal` taken from the session, so roles mean the same thing in both.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from claimlens.api.deps import get_runtime, request_meta
from claimlens.core.audit import AuditContext
from claimlens.core.db import session_scope
from claimlens.core.sessions import ActiveSession, resolve, sign_in_local

SESSION_COOKIE = "cl_session"
SIGNIN_CSRF_COOKIE = "cl_signin_csrf"

TEMPLATES = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                        autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)


class SignInRequired(Exception):
    """No live session: GET pages redirect to the sign-in page, other requests get 401."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


class UiError(Exception):
    """An error page (404 for a claim the user may not see, 403 for a bad CSRF token, ...)."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(status, title, message)
        self.status, self.title, self.message = status, title, message


@dataclass(frozen=True)
class UiContext:
    session: ActiveSession
    audit: AuditContext
    set_cookie: str | None = None  # a fresh local-user session token to hand to the browser

    @property
    def principal(self):  # type: ignore[no-untyped-def]
        return self.session.principal


def is_https(request: Request) -> bool:
    """Behind a TLS-terminating proxy, run uvicorn with --proxy-headers (and --forwarded-allow-ips) so the
    scheme is the client's."""
    return request.url.scheme == "https"


def session_cookie_kwargs(request: Request) -> dict[str, Any]:
    ui = get_runtime().settings.ui
    # path /ui: the API never reads cookies (it takes X-API-Key), so the session is not even sent there
    return {"httponly": True, "samesite": "strict", "secure": is_https(request), "path": "/ui",
            "max_age": int(ui.session_max_hours * 3600)}


def current_ui(request: Request) -> UiContext:
    rt = get_runtime()
    token = request.cookies.get(SESSION_COOKIE)
    fresh: str | None = None
    with session_scope(rt.db_url) as s:
        active = resolve(s, token, rt.settings.ui)
        if active is None and rt.settings.ui.local_user:
            fresh, active = sign_in_local(s)
    if active is None:
        raise SignInRequired(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    addr, request_id = request_meta(request)
    audit = AuditContext(active.principal.name, active.principal.role, addr, request_id, channel="ui")
    return UiContext(session=active, audit=audit, set_cookie=fresh)


UiDep = Annotated[UiContext, Depends(current_ui)]


def check_csrf(ctx: UiContext, sent: str | None) -> None:
    """Every state-changing form carries the session's CSRF token (SameSite=Strict is the second wall)."""
    # bytes: compare_digest refuses str with non-ASCII characters, which a forged form may hold
    if not sent or not hmac.compare_digest(sent.encode("utf-8", "replace"), ctx.session.csrf_token.encode()):
        raise UiError(403, "Form expired or forged", "The form's security token is missing or wrong. Reload "
                      "the page and try again.")


SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # presigned URLs and claim ids never leak to other sites
    "Cache-Control": "no-store",
}


def csp(request: Request) -> str:
    """Scripts and styles only from the package's static folder; images also from the object store."""
    settings = get_runtime().settings
    img = "'self' data:"
    if settings.storage_backend == "s3":
        img += f" {'https' if settings.s3_secure else 'http'}://{settings.s3_endpoint}"
    return (f"default-src 'self'; img-src {img}; script-src 'self'; style-src 'self'; "
            "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def render(request: Request, template: str, ctx: UiContext | None, status: int = 200,
           **values: Any) -> HTMLResponse:
    html = TEMPLATES.get_template(template).render(request=request, ctx=ctx, quote=quote,
                                                   local_user=get_runtime().settings.ui.local_user, **values)
    response = HTMLResponse(html, status_code=status)
    finish(request, response, ctx)
    return response


def finish(request: Request, response: Any, ctx: UiContext | None) -> None:
    for k, v in SECURITY_HEADERS.items():
        response.headers[k] = v
    response.headers["Content-Security-Policy"] = csp(request)
    if ctx is not None and ctx.set_cookie:
        response.set_cookie(SESSION_COOKIE, ctx.set_cookie, **session_cookie_kwargs(request))
