"""API keys and roles: creation, expiry, rotation with a grace period, last use, revocation, the bootstrap key.

Keys are 256-bit random tokens shown once at creation; only their sha256 is stored (a fast hash is right
for high-entropy tokens: there is no dictionary to attack, and lookups stay one indexed query).
Roles: ``adjuster`` creates claims, uploads and reads its own claims; ``investigator`` reads every claim and
report; ``admin`` does everything, including managing keys.

A key is known by its name, which is also the owner recorded on the claims it creates, so rotation keeps the
name and replaces the secret: the old secret moves to ``previous_key_hash`` and keeps working until the end of
the grace period, then never again. Every change is logged as one structured line (never the key) and
recorded in the audit trail (:mod:`claimlens.core.audit`).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from claimlens.config import get_settings
from claimlens.core.db import session_scope
from claimlens.core.models import ApiKey, utcnow

ROLES = ("adjuster", "investigator", "admin")
KEY_PREFIX = "clk_"
BOOTSTRAP_NAME = "bootstrap-admin"
# last_used_at is written at most this often per key: one UPDATE a minute, not one per request
LAST_USED_RESOLUTION = timedelta(seconds=60)
DEFAULT_ROTATION_GRACE = timedelta(hours=24)

log = logging.getLogger("claimlens.keys")


@dataclass(frozen=True)
class Principal:
    name: str
    role: str

    def can_write(self) -> bool:
        return self.role in ("adjuster", "admin")

    def can_read_all(self) -> bool:
        return self.role in ("investigator", "admin")


class KeyOperationError(ValueError):
    """A key operation the caller asked for cannot be done (unknown name, bad role); ``status`` for the API."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def aware(dt: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes for timezone-aware columns; everything here is stored in UTC."""
    return dt.replace(tzinfo=UTC) if dt is not None and dt.tzinfo is None else dt


def key_event(action: str, name: str, *, actor: str, **details: Any) -> None:
    """Log a key change as one structured line: name, action, actor (never the key or its hash)."""
    log.info("api key %s: %s by %s", name, action, actor,
             extra={"event": "api_key", "action": action, "key_name": name, "actor": actor, **details})


def audit_key_event(s: Session, action: str, name: str, *, actor: str, role: str | None = None,
                    client_addr: str | None = None, request_id: str | None = None, **details: Any) -> None:
    """Append an audit event for a key change made outside the API routes (which audit with the request's
    context): the ``claimlens keys`` command and the bootstrap key at start."""
    from claimlens.core import audit

    ctx = audit.AuditContext(principal=actor, role=role, client_addr=client_addr, request_id=request_id)
    audit.record(s, ctx, action, target=name, **details)


def _new_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def _expiry(expires_in: timedelta | None, now: datetime) -> datetime | None:
    if expires_in is None:
        return None
    if expires_in <= timedelta(0):
        raise KeyOperationError(422, "invalid_request", "expires_in must be positive")
    return now + expires_in


def create_key(s: Session, *, name: str, role: str, expires_in: timedelta | None = None,
               actor: str = "cli") -> str:
    """Create a key and return the plaintext (the only time it exists outside the caller)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    key = _new_secret()
    now = utcnow()
    s.add(ApiKey(name=name, role=role, key_hash=hash_key(key), created_at=now, expires_at=_expiry(expires_in, now)))
    s.flush()
    key_event("key_created", name, actor=actor, role=role,
              expires_at=(now + expires_in).isoformat() if expires_in else None)
    return key


def rotate_key(s: Session, name: str, *, grace: timedelta = DEFAULT_ROTATION_GRACE,
               expires_in: timedelta | None = None, actor: str = "cli") -> tuple[str, ApiKey]:
    """Give the key ``name`` a new secret; the current one keeps working for ``grace`` (0: stops now).

    Rotating again within a grace period ends the older secret at once: at most two secrets work at a time.
    The new secret expires ``expires_in`` from now; None keeps the key's expiry (never lengthened unasked).
    """
    row = s.scalars(select(ApiKey).where(ApiKey.name == name).with_for_update()).first()
    if row is None or row.revoked_at is not None:
        raise KeyOperationError(404, "not_found", f"no active key named {name}")
    if grace < timedelta(0):
        raise KeyOperationError(422, "invalid_request", "the grace period cannot be negative")
    now = utcnow()
    key = _new_secret()
    row.previous_key_hash = row.key_hash if grace > timedelta(0) else None
    row.previous_expires_at = now + grace if grace > timedelta(0) else None
    row.key_hash = hash_key(key)
    if expires_in is not None:
        row.expires_at = _expiry(expires_in, now)
    s.flush()
    key_event("key_rotated", name, actor=actor, grace_seconds=int(grace.total_seconds()),
              previous_expires_at=row.previous_expires_at.isoformat() if row.previous_expires_at else None)
    return key, row


def revoke_key(s: Session, name: str, *, actor: str = "cli") -> ApiKey:
    """Revoke the key ``name`` (its current and any previous secret). Idempotent on a revoked key."""
    row = s.scalars(select(ApiKey).where(ApiKey.name == name)).first()
    if row is None:
        raise KeyOperationError(404, "not_found", f"no key named {name}")
    if row.revoked_at is None:
        from claimlens.core.sessions import revoke_for_key

        row.revoked_at = utcnow()
        revoke_for_key(s, row.id)  # workbench sessions signed in with it end too
        key_event("key_revoked", name, actor=actor)
    return row


def key_state(row: ApiKey, now: datetime | None = None) -> str:
    """``active``, ``rotating`` (a previous secret still in its grace period), ``expired`` or ``revoked``."""
    now = now or utcnow()
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None and aware(row.expires_at) <= now:  # type: ignore[operator]
        return "expired"
    if row.previous_key_hash and row.previous_expires_at and aware(row.previous_expires_at) > now:  # type: ignore[operator]
        return "rotating"
    return "active"


def list_keys(s: Session) -> list[ApiKey]:
    return list(s.scalars(select(ApiKey).order_by(ApiKey.name)))


def authenticate(s: Session, key: str | None) -> Principal | None:
    """The principal of a valid key: not revoked, not expired, the current secret or a previous one still in
    its grace period. Updates ``last_used_at`` at most once per :data:`LAST_USED_RESOLUTION`."""
    if not key:
        return None
    digest = hash_key(key)
    row = s.scalars(select(ApiKey).where(or_(ApiKey.key_hash == digest, ApiKey.previous_key_hash == digest),
                                         ApiKey.revoked_at.is_(None))).first()
    if row is None:
        return None
    now = utcnow()
    if row.expires_at is not None and aware(row.expires_at) <= now:  # type: ignore[operator]
        return None
    if row.key_hash != digest and (row.previous_expires_at is None
                                   or aware(row.previous_expires_at) <= now):  # type: ignore[operator]
        return None
    if row.last_used_at is None or aware(row.last_used_at) < now - LAST_USED_RESOLUTION:  # type: ignore[operator]
        # conditional, so concurrent requests of one key write once; no lock is taken on a hot row
        s.execute(update(ApiKey).where(ApiKey.id == row.id, or_(ApiKey.last_used_at.is_(None),
                                                                ApiKey.last_used_at < now - LAST_USED_RESOLUTION))
                  .values(last_used_at=now).execution_options(synchronize_session=False))
    return Principal(row.name, row.role)


def ensure_bootstrap_admin(s: Session, key: str) -> str:
    """Make CLAIMLENS_BOOTSTRAP_ADMIN_KEY the secret of the ``bootstrap-admin`` key. Returns what happened:
    ``created``, ``unchanged`` or ``replaced`` (a changed key: the old secret stops working at once).

    One statement (INSERT ... ON CONFLICT (name) DO UPDATE ... WHERE the hash differs), so API worker processes
    starting at the same moment all succeed and leave one row. A bootstrap key that an admin revoked stays
    revoked while the same key is configured (a warning says so); configuring a new key re-activates the name.
    Raises ValueError when the key is already registered under another name (it could not be told apart).
    """
    digest = hash_key(key)
    clash = s.scalars(select(ApiKey.name).where(ApiKey.key_hash == digest, ApiKey.name != BOOTSTRAP_NAME)).first()
    if clash is not None:
        raise ValueError(f"CLAIMLENS_BOOTSTRAP_ADMIN_KEY is already the key named {clash}; choose another key")
    before = s.scalars(select(ApiKey).where(ApiKey.name == BOOTSTRAP_NAME)).first()
    if before is not None and before.key_hash == digest:
        if before.revoked_at is not None:
            log.warning("the bootstrap admin key was revoked and stays revoked; configure a new one to re-enable it")
        return "unchanged"
    had_row = before is not None
    now = utcnow()
    dialect = s.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(ApiKey).values(name=BOOTSTRAP_NAME, role="admin", key_hash=digest, created_at=now)
    stmt = stmt.on_conflict_do_update(
        index_elements=[ApiKey.name],
        set_={"key_hash": digest, "role": "admin", "revoked_at": None, "expires_at": None,
              "previous_key_hash": None, "previous_expires_at": None, "created_at": now},
        where=ApiKey.key_hash != digest)
    s.execute(stmt)
    action = "key_rotated" if had_row else "key_created"
    if had_row:  # workbench sessions signed in with the replaced key end with it
        from claimlens.core.sessions import revoke_for_key

        revoke_for_key(s, before.id)  # type: ignore[union-attr]
    key_event(action, BOOTSTRAP_NAME, actor="bootstrap", grace_seconds=0)
    audit_key_event(s, action, BOOTSTRAP_NAME, actor="bootstrap", role="admin")
    return "replaced" if had_row else "created"


# --- the `claimlens keys` command ------------------------------------------------------------------------

def _iso(dt: datetime | None) -> str | None:
    return aware(dt).isoformat() if dt is not None else None  # type: ignore[union-attr]


def key_public(row: ApiKey) -> dict[str, Any]:
    """What may be shown about a key: never a secret or its hash."""
    return {"name": row.name, "role": row.role, "state": key_state(row), "created_at": _iso(row.created_at),
            "expires_at": _iso(row.expires_at), "last_used_at": _iso(row.last_used_at),
            "revoked_at": _iso(row.revoked_at),
            "previous_key_expires_at": _iso(row.previous_expires_at) if row.previous_key_hash else None}


def keys_command(action: str, *, name: str | None = None, role: str | None = None,
                 expires_in: timedelta | None = None, grace: timedelta = DEFAULT_ROTATION_GRACE) -> int:
    """``claimlens keys create|list|rotate|revoke``: prints the new key (create, rotate) once, or JSON."""
    import json

    with session_scope(get_settings().effective_database_url) as s:
        if action == "list":
            print(json.dumps([key_public(r) for r in list_keys(s)], indent=1))
            return 0
        if not name:
            raise SystemExit(f"claimlens keys {action} needs --name")
        try:
            if action == "create":
                if not role:
                    raise SystemExit("claimlens keys create needs --role")
                print(create_key(s, name=name, role=role, expires_in=expires_in))
            elif action == "rotate":
                key, _ = rotate_key(s, name, grace=grace, expires_in=expires_in)
                print(key)
            elif action == "revoke":
                revoke_key(s, name)
            else:
                raise SystemExit(f"unknown action {action}")
            audit_key_event(s, f"key_{action}d", name, actor="cli")  # key_created, key_rotated, key_revoked
        except KeyOperationError as exc:
            print(exc.message)
            return 1
    return 0
