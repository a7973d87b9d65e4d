"""Short-lived GET URLs for one object (photos, thumbnails, evidence images) for the browser.

With the S3 backend they are the object store's own presigned URLs. The local store (embedded mode) has no
HTTP server, so the API serves the object itself behind an HMAC-signed URL with the same properties: one
object, an expiry, nothing else readable with it.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import quote, urlencode

from claimlens.core.layout import claim_prefix
from claimlens.core.pipeline import Runtime
from claimlens.core.storage import S3Store

OBJECT_ROUTE = "/v1/objects/"


def _secret(rt: Runtime) -> bytes:
    ui = rt.settings.ui
    if ui.url_signing_secret is not None:
        return ui.url_signing_secret.get_secret_value().encode()
    # stable across API worker processes without more configuration; never leaves the server
    seed = rt.settings.s3_secret_key.get_secret_value() + "|" + rt.settings.effective_database_url
    return hashlib.sha256(("claimlens-object-urls|" + seed).encode()).digest()


def _signature(rt: Runtime, key: str, expires: int) -> str:
    return hmac.new(_secret(rt), f"{key}\n{expires}".encode(), hashlib.sha256).hexdigest()


def key_in_claim(claim_id: str, key: str) -> bool:
    """Whether an object key lies under this claim's prefix (and nowhere else)."""
    return key.startswith(claim_prefix(claim_id)) and ".." not in key.split("/")


def view_url(rt: Runtime, key: str, expires_seconds: int | None = None) -> str:
    expires_seconds = expires_seconds or rt.settings.ui.view_url_expiry_seconds
    if isinstance(rt.store, S3Store):
        return rt.store.presigned_get_url(key, expires_seconds)
    expires = int(time.time()) + expires_seconds
    query = urlencode({"expires": expires, "signature": _signature(rt, key, expires)})
    return f"{OBJECT_ROUTE}{quote(key)}?{query}"


def verify(rt: Runtime, key: str, expires: int, signature: str) -> bool:
    if expires < time.time():
        return False
    # bytes: compare_digest refuses str with non-ASCII characters (a forged query string may hold any)
    return hmac.compare_digest(_signature(rt, key, expires).encode(), signature.encode("utf-8", "replace"))
