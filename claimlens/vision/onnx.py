"""The one loader for the ONNX models the project ships or takes from a pinned registry package.

Every model is an entry of ``weights/MANIFEST.json`` (a JSON object whose ``"models"`` list holds
``{name, file, sha256, bytes, source, licence, recipe, metrics, ...}``; entries under a ``"files"`` list are
read too). An entry's bytes live either

* in ``weights/`` (``"file": "clp_det.onnx"``), copied into the repository, or
* inside an installed, version-pinned registry package (``"package": {"name": "rapidocr", "version":
  "3.10.0", "path": "models/PP-OCRv6_rec_small.onnx"}``, ``"file": null``), so that a 21 MB model the
  wheel already ships is not committed twice.

Either way the sha256 is verified when the model is first loaded: a missing or changed file raises
:class:`ModelFileError` with a message saying which file and what to do, never silently different results.

Sessions are cached per process (per name, thread count and providers) and built lazily: importing this
module does no work. Build them after a worker forks (ONNX Runtime sessions do not survive ``fork``).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import onnxruntime

WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "weights"
MANIFEST_NAME = "MANIFEST.json"
DEFAULT_PROVIDERS: tuple[str, ...] = ("CPUExecutionProvider",)

_LOCK = threading.Lock()
_SESSIONS: dict[tuple[Any, ...], onnxruntime.InferenceSession] = {}
_VERIFIED: dict[tuple[str, str], Path] = {}  # (path, sha256) -> path, so a file is hashed once per process


class ModelFileError(RuntimeError):
    """A model is not in the manifest, its file is missing, or its sha256 is not the manifest's."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_manifest(weights_dir: Path | None = None) -> dict[str, Any]:
    """The manifest as a JSON object (``{"models": []}`` when there is none yet)."""
    path = (weights_dir or WEIGHTS_DIR) / MANIFEST_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"models": []}
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"weights manifest {path} is not valid JSON: {exc}") from exc
    if isinstance(data, list):  # tolerate a bare list of entries
        data = {"models": data}
    if not isinstance(data, dict):
        raise ModelFileError(f"weights manifest {path} must be a JSON object with a 'models' list")
    return data


def manifest_entries(weights_dir: Path | None = None) -> dict[str, dict[str, Any]]:
    """name -> entry over the ``models`` (and, for compatibility, ``files``) lists."""
    data = read_manifest(weights_dir)
    out: dict[str, dict[str, Any]] = {}
    for key in ("files", "models"):
        for entry in data.get(key) or []:
            if isinstance(entry, dict) and entry.get("name"):
                out[entry["name"]] = entry
    return out


def model_entry(name: str, weights_dir: Path | None = None) -> dict[str, Any]:
    entries = manifest_entries(weights_dir)
    if name not in entries:
        raise ModelFileError(
            f"model {name!r} is not listed in {(weights_dir or WEIGHTS_DIR) / MANIFEST_NAME} "
            f"(listed: {', '.join(sorted(entries)) or 'none'})"
        )
    return entries[name]


def _entry_path(entry: dict[str, Any], weights_dir: Path) -> Path:
    package = entry.get("package")
    if entry.get("file"):
        return weights_dir / entry["file"]
    if isinstance(package, dict) and package.get("name") and package.get("path"):
        spec = importlib.util.find_spec(package["name"])
        if spec is None or not spec.submodule_search_locations:
            raise ModelFileError(
                f"model {entry['name']!r} lives in the package {package['name']}=={package.get('version')}, "
                "which is not installed (pip install it at that exact version)"
            )
        return Path(next(iter(spec.submodule_search_locations))) / package["path"]
    raise ModelFileError(f"manifest entry {entry.get('name')!r} names neither a file nor a package path")


def model_path(name: str, weights_dir: Path | None = None) -> Path:
    """The verified path of a manifest model (sha256 checked once per process)."""
    weights_dir = weights_dir or WEIGHTS_DIR
    entry = model_entry(name, weights_dir)
    path = _entry_path(entry, weights_dir)
    expected = entry.get("sha256")
    if not expected:
        raise ModelFileError(f"manifest entry {name!r} has no sha256")
    key = (str(path), expected)
    if key in _VERIFIED:
        return _VERIFIED[key]
    if not path.is_file():
        pkg = entry.get("package") or {}
        hint = (f"install {pkg.get('name')}=={pkg.get('version')}" if pkg
                else "restore it from git or rebuild it with the manifest's recipe")
        raise ModelFileError(f"model file {path} for {name!r} is missing ({hint})")
    digest = sha256_file(path)
    if digest != expected:
        raise ModelFileError(
            f"sha256 mismatch for model {name!r} at {path}: the file has {digest}, the manifest says "
            f"{expected} (a different package version or a changed file; fix the file or the manifest)"
        )
    _VERIFIED[key] = path
    return path


def choose_providers(providers: Sequence[str] | None = None) -> list[str]:
    """The asked providers (default CPU only) that this onnxruntime build offers, in the asked order."""
    import onnxruntime as ort

    asked = list(providers or DEFAULT_PROVIDERS)
    available = set(ort.get_available_providers())
    chosen = [p for p in asked if p in available]
    if not chosen:
        chosen = ["CPUExecutionProvider"] if "CPUExecutionProvider" in available else list(available)[:1]
    return chosen


def load_session(name: str, *, threads: int = 1, providers: Sequence[str] | None = None,
                 weights_dir: Path | None = None) -> onnxruntime.InferenceSession:
    """An ``InferenceSession`` for the manifest model ``name``, built once per process and reused.

    Args:
        name: the manifest entry's name.
        threads: intra-op threads (default 1: workers run one process per core).
        providers: execution providers to try, intersected with ``ort.get_available_providers()``
            (default CPU only).
        weights_dir: another weights folder (tests).

    Raises:
        ModelFileError: unknown name, missing file, sha256 mismatch.
    """
    chosen = tuple(choose_providers(providers))
    key = (name, int(threads), chosen, str(weights_dir or WEIGHTS_DIR))
    session = _SESSIONS.get(key)
    if session is not None:
        return session
    with _LOCK:
        session = _SESSIONS.get(key)
        if session is None:
            import onnxruntime as ort

            path = model_path(name, weights_dir)
            options = ort.SessionOptions()
            options.intra_op_num_threads = max(1, int(threads))
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            session = ort.InferenceSession(str(path), sess_options=options, providers=list(chosen))
            _SESSIONS[key] = session
    return session


def clear_cache() -> None:
    """Forget cached sessions and verifications (tests; after a fork a process should build its own)."""
    with _LOCK:
        _SESSIONS.clear()
        _VERIFIED.clear()


@contextlib.contextmanager
def _manifest_lock(weights_dir: Path) -> Iterator[None]:
    """An advisory lock around read-modify-write of the manifest (other writers may run concurrently)."""
    weights_dir.mkdir(parents=True, exist_ok=True)
    tag = hashlib.sha256(str(weights_dir.resolve()).encode()).hexdigest()[:16]
    lock_path = Path(tempfile.gettempdir()) / f"claimlens-manifest-{tag}.lock"  # not inside the repo
    with open(lock_path, "a+") as handle:
        try:
            import fcntl

            fcntl.flock(handle, fcntl.LOCK_EX)
        except ImportError:  # pragma: no cover - not POSIX
            pass
        yield


def upsert_manifest_entry(entry: dict[str, Any], weights_dir: Path | None = None) -> None:
    """Add or replace one entry (by name) in the manifest's ``models`` list, keeping every other entry
    and every other top-level key; the file is replaced atomically."""
    weights_dir = weights_dir or WEIGHTS_DIR
    if not entry.get("name"):
        raise ValueError("a manifest entry needs a name")
    with _manifest_lock(weights_dir):
        data = read_manifest(weights_dir)
        for key in ("models", "files"):
            if isinstance(data.get(key), list):
                data[key] = [e for e in data[key] if not (isinstance(e, dict) and e.get("name") == entry["name"])]
        data.setdefault("models", []).append(entry)
        data["models"].sort(key=lambda e: e.get("name", "") if isinstance(e, dict) else "")
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        fd, tmp = tempfile.mkstemp(dir=weights_dir, prefix=".MANIFEST.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, weights_dir / MANIFEST_NAME)
