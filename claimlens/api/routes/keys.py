"""API keys (admin only): create (optionally expiring), list without secrets, rotate with a grace period,
revoke."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from claimlens.api.deps import AuditDep, PrincipalDep, RuntimeDep
from claimlens.api.errors import ApiError
from claimlens.core.audit import record
from claimlens.core.auth import (
    DEFAULT_ROTATION_GRACE,
    KeyOperationError,
    aware,
    create_key,
    key_state,
    list_keys,
    revoke_key,
    rotate_key,
)
from claimlens.core.db import session_scope
from claimlens.core.models import ApiKey
from claimlens.core.sessions import revoke_for_key

router = APIRouter(prefix="/keys", tags=["keys"])


class KeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
    role: str = Field(pattern=r"^(adjuster|investigator|admin)$")
    expires_in_seconds: int | None = Field(None, gt=0, le=10 * 365 * 86400,
                                           description="the key stops working this long after creation")


class KeyCreated(BaseModel):
    name: str
    role: str
    key: str = Field(description="shown once; only its hash is stored")
    expires_at: datetime | None = None
    previous_key_expires_at: datetime | None = Field(None, description="rotation: the old key works until then")


class KeyRotate(BaseModel):
    grace_seconds: int = Field(int(DEFAULT_ROTATION_GRACE.total_seconds()), ge=0, le=30 * 86400,
                               description="how long the current key keeps working (0: it stops now)")
    expires_in_seconds: int | None = Field(None, gt=0, le=10 * 365 * 86400,
                                           description="the new key's lifetime; left out, the expiry is kept")


class KeyInfo(BaseModel):
    """A key as an admin may see it: never the secret or its hash."""

    name: str
    role: str
    state: str = Field(description="active | rotating | expired | revoked")
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None = Field(description="to the minute: written at most once a minute")
    revoked_at: datetime | None
    previous_key_expires_at: datetime | None


def _seconds(value: int | None) -> timedelta | None:
    return timedelta(seconds=value) if value is not None else None


def _admin_only(principal: PrincipalDep) -> None:
    if principal.role != "admin":
        raise ApiError(403, "forbidden", "only admins manage keys")


@router.get("", response_model=list[KeyInfo])
def list_api_keys(principal: PrincipalDep, rt: RuntimeDep) -> list[KeyInfo]:
    """Every key with its role, state, expiry and last use (never a secret)."""
    _admin_only(principal)
    with session_scope(rt.db_url) as s:
        return [KeyInfo(name=r.name, role=r.role, state=key_state(r), created_at=aware(r.created_at),
                        expires_at=aware(r.expires_at), last_used_at=aware(r.last_used_at),
                        revoked_at=aware(r.revoked_at),
                        previous_key_expires_at=aware(r.previous_expires_at) if r.previous_key_hash else None)
                for r in list_keys(s)]


@router.post("/{name}/rotate", response_model=KeyCreated)
def rotate_api_key(name: str, body: KeyRotate, principal: PrincipalDep, rt: RuntimeDep, audit: AuditDep) -> KeyCreated:
    """A new secret for the key ``name`` (same name, role and claims); the old secret keeps working for
    ``grace_seconds``, then stops. The new key is shown only here."""
    _admin_only(principal)
    try:
        with session_scope(rt.db_url) as s:
            key, row = rotate_key(s, name, grace=timedelta(seconds=body.grace_seconds),
                                  expires_in=_seconds(body.expires_in_seconds), actor=principal.name)
            record(s, audit, "key_rotated", target=name, grace_seconds=body.grace_seconds)
            out = KeyCreated(name=row.name, role=row.role, key=key, expires_at=aware(row.expires_at),
                             previous_key_expires_at=aware(row.previous_expires_at))
    except KeyOperationError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from exc
    return out


@router.post("", response_model=KeyCreated, status_code=201)
def create_api_key(body: KeyCreate, principal: PrincipalDep, rt: RuntimeDep, audit: AuditDep) -> KeyCreated:
    """Create a key for a user or system; the plaintext key is returned only here."""
    if principal.role != "admin":
        raise ApiError(403, "forbidden", "only admins manage keys")
    try:
        with session_scope(rt.db_url) as s:
            key = create_key(s, name=body.name, role=body.role, expires_in=_seconds(body.expires_in_seconds),
                             actor=principal.name)
            expires_at = aware(s.scalars(select(ApiKey.expires_at).where(ApiKey.name == body.name)).one())
            record(s, audit, "key_created", target=body.name, role=body.role)
    except IntegrityError as exc:
        raise ApiError(409, "conflict", f"a key named {body.name} exists") from exc
    return KeyCreated(name=body.name, role=body.role, key=key, expires_at=expires_at)


@router.delete("/{name}", status_code=204)
def revoke_api_key(name: str, principal: PrincipalDep, rt: RuntimeDep, audit: AuditDep) -> None:
    """Revoke a key by name; the workbench sessions signed in with it end too."""
    if principal.role != "admin":
        raise ApiError(403, "forbidden", "only admins manage keys")
    with session_scope(rt.db_url) as s:
        row = s.scalars(select(ApiKey).where(ApiKey.name == name)).first()
        if row is None:
            raise ApiError(404, "not_found", f"no key named {name}")
        revoke_key(s, name, actor=principal.name)
        revoke_for_key(s, row.id)
        record(s, audit, "key_revoked", target=name)
