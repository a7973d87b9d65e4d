"""API keys and roles.

Keys are 256-bit random tokens shown once at creation; only their sha256 is stored (a fast hash is right
for high-entropy tokens: there is no dictionary to attack, and lookups stay one indexed query).
Roles: ``adjuster`` creates claims, uploads and reads its own claims; ``investigator`` reads every claim and
report; ``admin`` does everything, including managing keys.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from claimlens.config import get_settings
from claimlens.core.db import session_scope
from claimlens.core.models import ApiKey

ROLES = ("adjuster", "investigator", "admin")
KEY_PREFIX = "clk_"


@dataclass(frozen=True)
class Principal:
    name: str
    role: str

    def can_write(self) -> bool:
        return self.role in ("adjuster", "admin")

    def can_read_all(self) -> bool:
        return self.role in ("investigator", "admin")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(s: Session, *, name: str, role: str) -> str:
    """Create a key and return the plaintext (the only time it exists outside the caller)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    s.add(ApiKey(name=name, role=role, key_hash=hash_key(key)))
    s.flush()
    return key


def authenticate(s: Session, key: str | None) -> Principal | None:
    if not key:
        return None
    row = s.scalars(select(ApiKey).where(ApiKey.key_hash == hash_key(key), ApiKey.revoked_at.is_(None))).first()
    return Principal(row.name, row.role) if row else None


def ensure_bootstrap_admin(s: Session, key: str) -> None:
    """Register CLAIMLENS_BOOTSTRAP_ADMIN_KEY as an admin key if it is not known yet (idempotent)."""
    if s.scalars(select(ApiKey).where(ApiKey.key_hash == hash_key(key))).first() is None:
        s.add(ApiKey(name="bootstrap-admin", role="admin", key_hash=hash_key(key)))


def create_key_command(*, role: str, name: str) -> int:
    with session_scope(get_settings().effective_database_url) as s:
        key = create_key(s, name=name, role=role)
    print(key)
    return 0
