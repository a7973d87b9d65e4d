"""API keys (admin only)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from claimlens.api.deps import PrincipalDep, RuntimeDep
from claimlens.api.errors import ApiError
from claimlens.core.auth import create_key
from claimlens.core.db import session_scope
from claimlens.core.models import ApiKey

router = APIRouter(prefix="/keys", tags=["keys"])


class KeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
    role: str = Field(pattern=r"^(adjuster|investigator|admin)$")


class KeyCreated(BaseModel):
    name: str
    role: str
    key: str = Field(description="shown once; only its hash is stored")


@router.post("", response_model=KeyCreated, status_code=201)
def create_api_key(body: KeyCreate, principal: PrincipalDep, rt: RuntimeDep) -> KeyCreated:
    """Create a key for a user or system; the plaintext key is returned only here."""
    if principal.role != "admin":
        raise ApiError(403, "forbidden", "only admins manage keys")
    try:
        with session_scope(rt.db_url) as s:
            key = create_key(s, name=body.name, role=body.role)
    except IntegrityError as exc:
        raise ApiError(409, "conflict", f"a key named {body.name} exists") from exc
    return KeyCreated(name=body.name, role=body.role, key=key)


@router.delete("/{name}", status_code=204)
def revoke_api_key(name: str, principal: PrincipalDep, rt: RuntimeDep) -> None:
    """Revoke a key by name."""
    if principal.role != "admin":
        raise ApiError(403, "forbidden", "only admins manage keys")
    with session_scope(rt.db_url) as s:
        row = s.scalars(select(ApiKey).where(ApiKey.name == name)).first()
        if row is None:
            raise ApiError(404, "not_found", f"no key named {name}")
        row.revoked_at = datetime.now(UTC)
