"""Object storage behind one small interface: MinIO (S3 API, ``minio`` SDK) or a local directory.

The local store mirrors the bucket layout on disk (``var/objects/<bucket>/claims/...``) so the embedded mode
writes exactly what the service writes. Every put is atomic for readers: S3 PUTs are, and the local store
writes a temporary file and renames it.
"""

from __future__ import annotations

import io
import os
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Protocol

from claimlens.config import Settings

# S3 error codes that mean "try again later" (a server starting up or overloaded), not "bad request"
TRANSIENT_S3_CODES = {"InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout",
                      "XMinioServerNotInitialized", "OperationAborted"}


class StorageUnavailable(RuntimeError):
    """The object store did not answer (down, timeout, 5xx). Transient: callers retry."""


class ObjectNotFound(KeyError):
    """No object at that key."""


class ObjectStore(Protocol):
    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None: ...
    def get(self, key: str) -> bytes: ...
    def size(self, key: str) -> int | None:
        """Size in bytes, or None when there is no object at ``key``."""
        ...
    def delete(self, key: str) -> None: ...
    def list(self, prefix: str) -> list[str]: ...
    def presigned_put_url(self, key: str, expires_seconds: int) -> str: ...


class LocalStore:
    """Directory-backed store for the embedded mode and unit tests."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError(f"object key escapes the store: {key!r}")
        return path

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise ObjectNotFound(key) from exc

    def size(self, key: str) -> int | None:
        path = self._path(key)
        return path.stat().st_size if path.is_file() else None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def list(self, prefix: str) -> list[str]:
        base = self.root
        return sorted(
            str(p.relative_to(base)) for p in base.rglob("*")
            if p.is_file() and not p.name.startswith(".tmp-") and str(p.relative_to(base)).startswith(prefix)
        )

    def presigned_put_url(self, key: str, expires_seconds: int) -> str:
        raise NotImplementedError("presigned uploads need the S3 backend (CLAIMLENS_STORAGE_BACKEND=s3)")


class S3Store:
    """MinIO / any S3 server through the ``minio`` SDK (7.2.20, keyword arguments only).

    The client is created lazily in the process that uses it (after a Celery worker forks) with short
    timeouts and few retries, so an outage surfaces quickly as :class:`StorageUnavailable`.

    Server-side encryption (``CLAIMLENS_S3_SSE``): every PUT carries the SSE-S3 or SSE-KMS header, and a
    bucket this class creates gets the same default-encryption rule, so objects a client PUTs through a
    presigned URL (which cannot carry our header) are encrypted too.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.bucket = settings.bucket
        self._client = None
        self._bucket_checked = False

    @property
    def client(self):  # type: ignore[no-untyped-def]
        if self._client is None:
            import urllib3
            from minio import Minio

            http = urllib3.PoolManager(
                timeout=urllib3.Timeout(connect=3.0, read=30.0),
                retries=urllib3.Retry(total=2, backoff_factor=0.2, status_forcelist=[502, 503, 504]),
                maxsize=10,
            )
            self._client = Minio(
                endpoint=self.settings.s3_endpoint,
                access_key=self.settings.s3_access_key.get_secret_value(),
                secret_key=self.settings.s3_secret_key.get_secret_value(),
                secure=self.settings.s3_secure,
                region=self.settings.s3_region,
                http_client=http,
            )
        return self._client

    def _call(self, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        """Run an SDK call, mapping connection failures and 5xx to StorageUnavailable."""
        import urllib3
        from minio.error import S3Error, ServerError

        try:
            if not self._bucket_checked:
                self._ensure_bucket()
            return fn(*args, **kwargs)
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject"):
                raise ObjectNotFound(kwargs.get("object_name", "")) from exc
            status = getattr(exc.response, "status", 0) or 0
            if exc.code in TRANSIENT_S3_CODES or status >= 500:
                raise StorageUnavailable(f"object store unavailable: {exc.code}") from exc
            raise
        except (ServerError, urllib3.exceptions.HTTPError, OSError) as exc:
            raise StorageUnavailable(f"object store unavailable: {type(exc).__name__}") from exc

    def _ensure_bucket(self) -> None:
        if not self.client.bucket_exists(bucket_name=self.bucket):
            try:
                self.client.make_bucket(bucket_name=self.bucket)
            except Exception:  # a concurrent worker created it first
                if not self.client.bucket_exists(bucket_name=self.bucket):
                    raise
            else:
                self._set_default_encryption()
        self._bucket_checked = True

    @property
    def sse(self):  # type: ignore[no-untyped-def]
        """The SDK's SSE object for PUTs, or None (the bucket's own default applies)."""
        from minio.sse import SseKMS, SseS3

        if self.settings.s3_sse == "sse-s3":
            return SseS3()
        if self.settings.s3_sse == "sse-kms":
            return SseKMS(self.settings.s3_sse_kms_key_id or "", None)
        return None

    def _set_default_encryption(self) -> None:
        """Give a bucket we just created the configured encryption as its default rule."""
        from minio.sseconfig import Rule, SSEConfig

        if self.settings.s3_sse == "sse-s3":
            rule = Rule.new_sse_s3_rule()
        elif self.settings.s3_sse == "sse-kms":
            rule = Rule.new_sse_kms_rule(self.settings.s3_sse_kms_key_id)
        else:
            return
        self.client.set_bucket_encryption(bucket_name=self.bucket, config=SSEConfig(rule))

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self._call(self.client.put_object, bucket_name=self.bucket, object_name=key,
                   data=io.BytesIO(data), length=len(data), content_type=content_type, sse=self.sse)

    def get(self, key: str) -> bytes:
        def _get() -> bytes:
            resp = self.client.get_object(bucket_name=self.bucket, object_name=key)
            try:
                return resp.read()
            finally:
                resp.close()
                resp.release_conn()

        return self._call(_get)

    def size(self, key: str) -> int | None:
        try:
            stat = self._call(self.client.stat_object, bucket_name=self.bucket, object_name=key)
        except ObjectNotFound:
            return None
        return int(stat.size)

    def delete(self, key: str) -> None:
        self._call(self.client.remove_object, bucket_name=self.bucket, object_name=key)

    def list(self, prefix: str) -> list[str]:
        objs = self._call(lambda: list(self.client.list_objects(
            bucket_name=self.bucket, prefix=prefix, recursive=True)))
        return sorted(o.object_name for o in objs)

    def presigned_put_url(self, key: str, expires_seconds: int) -> str:
        return self._call(self.client.presigned_put_object, bucket_name=self.bucket, object_name=key,
                          expires=timedelta(seconds=expires_seconds))

    def presigned_get_url(self, key: str, expires_seconds: int) -> str:
        """A GET URL for exactly this object, valid ``expires_seconds`` (the workbench's images)."""
        return self._call(self.client.presigned_get_object, bucket_name=self.bucket, object_name=key,
                          expires=timedelta(seconds=expires_seconds))


def make_store(settings: Settings) -> ObjectStore:
    if settings.storage_backend == "s3":
        return S3Store(settings)
    if settings.storage_backend == "local":
        return LocalStore(settings.objects_dir)
    raise ValueError(f"CLAIMLENS_STORAGE_BACKEND must be 's3' or 'local', not {settings.storage_backend!r}")
