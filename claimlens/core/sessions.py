"""Workbench sessions: an API key (or the embedded local user) exchanged for a server-side session.

The browser holds only a random token in an HttpOnly cookie; the table holds its sha256, the session's CSRF
token and the times that enforce idle and absolute expiry. Sign-out and revoking the API key end the session
on the server, whatever the cookie says.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from claimlens.config import UiSettings
from claimlens.core.auth import Principal, hash_key
from claimlens.core.models import ApiKey, UiSession, utcnow

LOCAL_PRINCIPAL = Principal("local", "investigator")


@dataclass(frozen=True)
class ActiveSession:
    principal: Principal
    csrf_token: str
    token_hash: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)  # SQLite returns naive datetimes


def sign_in_with_key(s: Session, api_key: str) -> tuple[str, ActiveSession] | None:
    """A new session for a valid, unrevoked API key; returns (cookie token, session) or None."""
    row = s.scalars(select(ApiKey).where(ApiKey.key_hash == hash_key(api_key), ApiKey.revoked_at.is_(None))).first()
    if row is None:
        return None
    return _create(s, Principal(row.name, row.role), api_key_id=row.id)


def sign_in_local(s: Session) -> tuple[str, ActiveSession]:
    return _create(s, LOCAL_PRINCIPAL, api_key_id=None)


def _create(s: Session, principal: Principal, *, api_key_id: int | None) -> tuple[str, ActiveSession]:
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    s.add(UiSession(token_hash=_hash(token), principal=principal.name, role=principal.role,
                    api_key_id=api_key_id, csrf_token=csrf))
    s.flush()
    return token, ActiveSession(principal, csrf, _hash(token))


def resolve(s: Session, token: str | None, ui: UiSettings) -> ActiveSession | None:
    """The live session for a cookie token (and its idle clock restarted), or None."""
    if not token:
        return None
    row = s.get(UiSession, _hash(token))
    if row is None or row.revoked_at is not None:
        return None
    now = datetime.now(UTC)
    if (now - _aware(row.created_at) > timedelta(hours=ui.session_max_hours)
            or now - _aware(row.last_seen_at) > timedelta(minutes=ui.session_idle_minutes)):
        row.revoked_at = now
        return None
    if row.api_key_id is not None:
        key = s.get(ApiKey, row.api_key_id)
        if key is None or key.revoked_at is not None:
            row.revoked_at = now
            return None
    row.last_seen_at = now
    return ActiveSession(Principal(row.principal, row.role), row.csrf_token, row.token_hash)


def revoke(s: Session, token_hash: str) -> None:
    s.execute(update(UiSession).where(UiSession.token_hash == token_hash, UiSession.revoked_at.is_(None))
              .values(revoked_at=utcnow()))


def revoke_for_key(s: Session, api_key_id: int) -> None:
    s.execute(update(UiSession).where(UiSession.api_key_id == api_key_id, UiSession.revoked_at.is_(None))
              .values(revoked_at=utcnow()))
