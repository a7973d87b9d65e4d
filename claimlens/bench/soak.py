"""``claimlens bench soak [DIR]``: sustained load with faults on the real stack, loopback only.

Starts its own API (uvicorn) and Celery workers against the running services (``make services``), in a
bucket of its own, then uploads ``--opt photos=400`` distinct photos (DIR's JPEGs resized to 640x480 with a
unique stamp; synthetic pictures without DIR) over ``--opt claims=20`` claims from ``--opt concurrency=16``
client threads, half multipart and half presigned (PUT straight to S3, then commit), as fast as they can or
paced at ``--opt upload_rate=R`` photos per second (sustained load); each claim is submitted when its last
photo is in. Meanwhile it injects the faults of ``--opt faults=worker[,s3,redis,postgres]``, one
after another at evenly spaced points of the upload progress:

* ``worker``: SIGKILL to a worker's process group (main process and pool), a replacement started
  ``down_s`` later. Its unacknowledged tasks come back after the visibility timeout (``visibility_timeout``,
  60 s here).
* ``s3``, ``redis``, ``postgres``: ``scripts/services stop NAME``, ``down_s`` seconds, ``start NAME``. These stop
  services other programs on the machine may use, so they run only with ``--opt allow_service_restarts=1``.

The clients behave like real ones: 429/5xx and connection errors are retried (honouring ``Retry-After``).
Bounded: at most ``max_seconds`` (default 900) in all. At the end it checks, for its claims only: every
claim has a final report; every photo is stored once, analysed (status, ``analysis.json``) and has one
original object; no duplicate photo or finding rows, no objects of unknown photos. The JSON reports
throughput, upload / photo / claim latency p50 and p95, and per fault the outage and the recovery time
(from the fault until an upload succeeded and a photo analysis finished after the service was back).
``ok`` is true only if every check passed.

Its own broker: workers already listening on the broker database would take the soak's tasks with their
settings, so the bench refuses to start then (``--opt redis_db=N`` picks databases N and N+1;
``--opt shared_broker=1 --opt bucket=B`` shares them knowingly, as the test does with the test stack's).
"""

from __future__ import annotations

import io
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np
from PIL import Image

from claimlens.bench.upload import REPO, _port, _services_env
from claimlens.datasets.demo import SHARED_DAMAGE

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
SERVICE_FAULTS = ("s3", "redis", "postgres")
RETRY_STATUSES = {429, 502, 503, 504}


def _photos(src: Path | None, n: int, seed: int) -> list[bytes]:
    """n distinct JPEGs (bytes and pixels): real photos when available, each with a unique stamp."""
    files = sorted(src.rglob("*.jpg")) if src and src.is_dir() else []
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        if files:
            img = np.asarray(Image.open(files[i % len(files)]).convert("RGB").resize((640, 480))).copy()
        else:
            small = rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)
            img = np.asarray(Image.fromarray(small).resize((640, 480), Image.Resampling.BICUBIC)).copy()
        img[8:40, 8:40] = rng.integers(0, 255, (4, 4, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=88)
        out.append(buf.getvalue())
    return out


def _require_loopback(env: dict[str, str]) -> None:
    hosts = {"database": urlsplit(env["CLAIMLENS_DATABASE_URL"]).hostname,
             "object store": env["CLAIMLENS_S3_ENDPOINT"].rsplit(":", 1)[0],
             "broker": urlsplit(env["CLAIMLENS_BROKER_URL"]).hostname}
    for what, host in hosts.items():
        if host not in LOOPBACK:
            raise SystemExit(f"bench soak runs against loopback services only; the {what} is at {host}")


def _require_own_broker(broker_url: str) -> None:
    """Workers already consuming this broker database would take the soak's tasks with their own settings
    (another bucket, another database): refuse, and name the way out."""
    import redis

    db = int(urlsplit(broker_url).path.strip("/") or 0)
    with redis.Redis.from_url(broker_url, socket_timeout=2) as client:
        consumers = [c for c in client.client_list() if int(c.get("db", -1)) == db
                     and c.get("cmd", "").lower() in ("brpop", "blpop", "bzpopmin")]
    if consumers:
        raise SystemExit(f"{len(consumers)} other workers consume broker database {db}: pick a free one with "
                         "--opt redis_db=N (N and N+1 are used), or --opt shared_broker=1 with --opt bucket= "
                         "their bucket")


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))], 3)


@dataclass
class FaultRecord:
    name: str
    at_fraction: float
    t_fault: float = 0.0
    t_back: float = 0.0
    first_upload_ok: float | None = None
    first_analysis: float | None = None
    client_retries: int = 0

    def summary(self) -> dict[str, Any]:
        marks = [t for t in (self.first_upload_ok, self.first_analysis) if t is not None]
        return {"fault": self.name, "at_upload_fraction": round(self.at_fraction, 2),
                "outage_s": round(self.t_back - self.t_fault, 2),
                "first_upload_ok_after_s": None if self.first_upload_ok is None
                else round(self.first_upload_ok - self.t_fault, 2),
                "first_analysis_after_s": None if self.first_analysis is None
                else round(self.first_analysis - self.t_fault, 2),
                # both marks; only the analysis when every upload was done before the service came back
                "recovery_s": None if self.first_analysis is None else round(max(marks) - self.t_fault, 2),
                "client_retries": self.client_retries}


@dataclass
class Soak:
    env: dict[str, str]
    key: str
    photos: list[bytes]
    claims: int
    concurrency: int
    faults: list[str]
    down_s: float
    deadline: float
    api_workers: int = 2
    workers: int = 2
    worker_concurrency: int = 2
    presigned_share: float = 0.5
    upload_rate: float = 0.0  # photos per second for all clients together; 0: as fast as they can
    run_id: str = field(default_factory=lambda: secrets.token_hex(3))
    log_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="claimlens-soak-")))
    procs: list[subprocess.Popen] = field(default_factory=list)
    worker_procs: list[subprocess.Popen] = field(default_factory=list)
    base_url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)
    upload_times: list[tuple[float, float, str]] = field(default_factory=list)  # (end, seconds, kind)
    photo_ids: dict[str, list[str]] = field(default_factory=dict)
    submitted: dict[str, float] = field(default_factory=dict)
    finals: dict[str, float] = field(default_factory=dict)
    fault_log: list[FaultRecord] = field(default_factory=list)
    current_fault: FaultRecord | None = None
    retries: int = 0
    errors: list[str] = field(default_factory=list)

    # --- processes -------------------------------------------------------------------------------------
    def _spawn(self, name: str, argv: list[str], extra: dict[str, str]) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - open for the process's lifetime
        proc = subprocess.Popen(argv, cwd=REPO, env={**self.env, **extra}, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.procs.append(proc)
        return proc

    def start_api(self) -> None:
        port = _port()
        self._spawn("api", [sys.executable, "-m", "uvicorn", "claimlens.api.main:app", "--host", "127.0.0.1",
                            "--port", str(port), "--workers", str(self.api_workers)],
                    {"PROMETHEUS_MULTIPROC_DIR": str(self.log_dir / "metrics-api")})
        self.base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base_url}/v1/health/live", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise SystemExit(f"the soak API did not start; see {self.log_dir / 'api.log'}")

    def start_worker(self) -> subprocess.Popen:
        n = len(self.worker_procs)
        proc = self._spawn(f"worker-{n}", [
            sys.executable, "-m", "celery", "-A", "claimlens.workers.celery_app", "worker", "-Q", "cpu,io",
            "-c", str(self.worker_concurrency), "--pool", "prefork", "-n", f"soak{n}-{self.run_id}@%h",
            "--loglevel", "INFO", "--without-gossip", "--without-mingle"],
            {"PROMETHEUS_MULTIPROC_DIR": str(self.worker_metrics_dir), "CLAIMLENS_METRICS__WORKER_PORT": "0",
             "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"})
        self.worker_procs.append(proc)
        return proc

    @property
    def worker_metrics_dir(self) -> Path:
        return self.log_dir / "metrics-worker"

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(timeout=30)
                except (ProcessLookupError, subprocess.TimeoutExpired):
                    os.killpg(proc.pid, signal.SIGKILL)

    # --- the client ------------------------------------------------------------------------------------
    def _retrying(self, what: str, fn: Callable[[], httpx.Response], ok: tuple[int, ...]) -> httpx.Response:
        """A well-behaved client: retries 429/5xx and connection errors until the run's deadline."""
        while True:
            try:
                r = fn()
                if r.status_code in ok:
                    return r
                if r.status_code not in RETRY_STATUSES:
                    raise RuntimeError(f"{what}: {r.status_code} {r.text[:300]}")
                wait = min(2.0, float(r.headers.get("Retry-After", "0.5")))
            except httpx.TransportError:
                wait = 0.5
            with self.lock:
                self.retries += 1
                if self.current_fault is not None:
                    self.current_fault.client_retries += 1
            if time.time() > self.deadline:
                raise RuntimeError(f"{what}: still failing at the deadline")
            time.sleep(wait)

    def upload(self, c: httpx.Client, claim_id: str, i: int, data: bytes, presigned: bool) -> str:
        t0 = time.perf_counter()
        if presigned:
            r = self._retrying("presign", lambda: c.post(f"/v1/claims/{claim_id}/uploads",
                                                          json={"stage": "survey", "filename": f"{i}.jpg",
                                                                "content_type": "image/jpeg"}), (201,))
            slot = r.json()
            self._retrying("PUT", lambda: httpx.put(slot["upload_url"], content=data,
                                                     headers={"Content-Type": "image/jpeg"}, timeout=60), (200,))
            r = self._retrying("commit", lambda: c.post(slot["commit_url"]), (200, 201))
        else:
            r = self._retrying("upload", lambda: c.post(
                f"/v1/claims/{claim_id}/photos", data={"stage": "survey"},
                files={"file": (f"{i}.jpg", data, "image/jpeg")}), (200, 201))
        photo_id = r.json()["photo_id"]
        with self.lock:
            self.upload_times.append((time.time(), time.perf_counter() - t0, "presigned" if presigned else "multipart"))
            self.photo_ids[claim_id].append(photo_id)
        return photo_id

    def is_presigned(self, i: int) -> bool:
        """Spreads the presigned share evenly over the photos (0.5: every other one)."""
        return int((i + 1) * self.presigned_share) > int(i * self.presigned_share)

    def claim_ids(self) -> list[str]:
        return [f"SOAK-{self.run_id}-{i:03d}" for i in range(self.claims)]

    def run_clients(self) -> None:
        ids = self.claim_ids()
        per_claim = {cid: [] for cid in ids}
        for i, data in enumerate(self.photos):
            per_claim[ids[i % len(ids)]].append((i, data))
        remaining = {cid: len(v) for cid, v in per_claim.items()}
        headers = {"X-API-Key": self.key}
        with httpx.Client(base_url=self.base_url, headers=headers, timeout=60,
                          limits=httpx.Limits(max_connections=self.concurrency + 4)) as c:
            for cid in ids:
                self.photo_ids[cid] = []
                self._retrying("create", lambda cid=cid: c.put(f"/v1/claims/{cid}", json={"loss_type": "collision"}),
                               (200, 201))
            # claims arrive one after another (each submitted after its last photo), so that uploads,
            # submits and claim reports are all in flight while the faults happen
            jobs = [(cid, i, data) for cid in ids for i, data in per_claim[cid]]
            jobs_index = {i: n for n, (_, i, _) in enumerate(jobs)}

            t0 = time.time()

            def one(job: tuple[str, int, bytes]) -> None:
                cid, i, data = job
                if self.upload_rate > 0:  # sustained load: photo n starts n / rate seconds into the run
                    time.sleep(max(0.0, t0 + jobs_index[i] / self.upload_rate - time.time()))
                try:
                    self.upload(c, cid, i, data, presigned=self.is_presigned(i))
                    with self.lock:
                        remaining[cid] -= 1
                        last = remaining[cid] == 0
                    if last:
                        self._retrying("submit", lambda: c.post(f"/v1/claims/{cid}/submit"), (202,))
                        with self.lock:
                            self.submitted[cid] = time.time()
                except Exception as exc:  # noqa: BLE001 - recorded, the run goes on and the checks fail
                    with self.lock:
                        self.errors.append(f"{cid} photo {i}: {exc}")

            with ThreadPoolExecutor(self.concurrency) as pool:
                list(pool.map(one, jobs))

    # --- faults ----------------------------------------------------------------------------------------
    def uploaded_fraction(self) -> float:
        with self.lock:
            return len(self.upload_times) / max(1, len(self.photos))

    def run_faults(self) -> None:
        try:
            self._inject_faults()
        except Exception as exc:  # noqa: BLE001 - reported as a problem of the run
            with self.lock:
                self.errors.append(f"fault injection failed: {type(exc).__name__}: {exc}")

    def _inject_faults(self) -> None:
        for k, name in enumerate(self.faults):
            rec = FaultRecord(name, (k + 1) / (len(self.faults) + 1))
            while self.uploaded_fraction() < rec.at_fraction and time.time() < self.deadline:
                time.sleep(0.1)
            self.current_fault = rec
            rec.t_fault = time.time()
            if name == "worker":
                victim = next(p for p in self.worker_procs if p.poll() is None)
                os.killpg(victim.pid, signal.SIGKILL)
                victim.wait(timeout=30)
                time.sleep(self.down_s)
                self.start_worker()
            else:
                service = {"s3": "s3", "redis": "redis", "postgres": "postgres"}[name]
                subprocess.run([str(REPO / "scripts" / "services"), "stop", service], check=True,
                               stdout=subprocess.DEVNULL)
                time.sleep(self.down_s)
                subprocess.run([str(REPO / "scripts" / "services"), "start", service], check=True,
                               stdout=subprocess.DEVNULL)
            rec.t_back = time.time()
            self.fault_log.append(rec)
            self._await_recovery(rec)
            self.current_fault = None

    def _await_recovery(self, rec: FaultRecord, limit: float = 180) -> None:
        from sqlalchemy import func, select

        from claimlens.core.models import Photo

        end = min(self.deadline, time.time() + limit)
        since = datetime.fromtimestamp(rec.t_back, UTC)
        while time.time() < end and (rec.first_upload_ok is None or rec.first_analysis is None):
            with self.lock:
                later = [t for t, _, _ in self.upload_times if t >= rec.t_back]
            if later and rec.first_upload_ok is None:
                rec.first_upload_ok = min(later)
            if rec.first_analysis is None:
                try:
                    with self.session() as s:
                        first = s.scalar(select(func.min(Photo.analysed_at)).where(
                            Photo.claim_id.like(f"SOAK-{self.run_id}-%"), Photo.analysed_at >= since))
                    if first is not None:
                        rec.first_analysis = first.timestamp()
                except Exception:  # noqa: BLE001, S110 - the database may be the service that is down
                    pass
            if self.uploaded_fraction() >= 1.0 and rec.first_analysis is not None:
                break  # no uploads left to succeed after this fault
            time.sleep(0.2)

    def session(self):  # type: ignore[no-untyped-def]
        from claimlens.core.db import session_scope

        return session_scope(self.env["CLAIMLENS_DATABASE_URL"])

    # --- waiting and checking --------------------------------------------------------------------------
    def wait_finals(self) -> None:
        from sqlalchemy import select

        from claimlens.core.models import Claim

        ids = set(self.claim_ids())
        while time.time() < self.deadline and len(self.finals) < len(ids):
            try:
                with self.session() as s:
                    rows = s.execute(select(Claim.id, Claim.status, Claim.revision, Claim.report_revision)
                                     .where(Claim.id.in_(ids - set(self.finals)))).all()
                now = time.time()
                for cid, status, revision, report_revision in rows:
                    if status == "final" and report_revision == revision and cid in self.submitted:
                        self.finals[cid] = now
            except Exception:  # noqa: BLE001, S110 - a database restart in progress
                pass
            time.sleep(0.5)

    def check(self) -> dict[str, Any]:
        """The end-state invariants, for this run's claims only."""
        from minio import Minio
        from sqlalchemy import func, select

        from claimlens.core.models import Claim, FindingRow, Photo

        problems: list[str] = list(self.errors[:20])
        prefix = f"SOAK-{self.run_id}-%"
        with self.session() as s:
            claims = {c.id: c for c in s.scalars(select(Claim).where(Claim.id.like(prefix)))}
            photos = s.scalars(select(Photo).where(Photo.claim_id.like(prefix))).all()
            dup_findings = s.execute(
                select(FindingRow.claim_id, FindingRow.photo_id, FindingRow.phase, FindingRow.check, FindingRow.code,
                       FindingRow.message, func.count()).where(FindingRow.claim_id.like(prefix))
                .group_by(FindingRow.claim_id, FindingRow.photo_id, FindingRow.phase, FindingRow.check,
                          FindingRow.code, FindingRow.message).having(func.count() > 1)).all()
            photo_rows = [(p.id, p.claim_id, p.status, p.sha256, p.analysed_at, p.uploaded_at) for p in photos]
            not_final = [cid for cid in self.claim_ids()
                         if cid not in claims or claims[cid].status != "final"
                         or claims[cid].report_revision != claims[cid].revision]
        if not_final:
            problems.append(f"{len(not_final)} claims without a final report: {not_final[:5]}")
        stored = [r for r in photo_rows if r[2] != "awaiting_upload"]
        orphans = len(photo_rows) - len(stored)
        if len(stored) != len(self.photos):
            problems.append(f"{len(stored)} stored photo rows for {len(self.photos)} photos uploaded")
        not_analysed = [r[0] for r in stored if r[2] != "analysed"]
        if not_analysed:
            problems.append(f"{len(not_analysed)} photos not analysed: {not_analysed[:5]}")
        shas = [(r[1], r[3]) for r in stored]
        if len(set(shas)) != len(shas):
            problems.append("duplicate photo rows (same claim and sha256)")
        client_ids = {pid for ids in self.photo_ids.values() for pid in ids}
        if client_ids != {r[0] for r in stored}:
            problems.append("the photo ids the clients got differ from the stored photos")
        if dup_findings:
            problems.append(f"{len(dup_findings)} duplicated finding rows, e.g. {dup_findings[0][:5]}")

        env = self.env
        client = Minio(endpoint=env["CLAIMLENS_S3_ENDPOINT"], access_key=env["CLAIMLENS_S3_ACCESS_KEY"],
                       secret_key=env["CLAIMLENS_S3_SECRET_KEY"], secure=False)
        objects_per_photo: dict[str, dict[str, int]] = {}
        reports = 0
        for cid in self.claim_ids():
            for obj in client.list_objects(bucket_name=env["CLAIMLENS_BUCKET"], prefix=f"claims/{cid}/",
                                           recursive=True):
                parts = obj.object_name.split("/")
                if parts[2:3] == ["report.json"]:
                    reports += 1
                if len(parts) >= 5 and parts[2] == "photos":
                    kind = "original" if parts[4].startswith("original.") else parts[4]
                    counts = objects_per_photo.setdefault(parts[3], {})
                    counts[kind] = counts.get(kind, 0) + 1
        if reports != self.claims:
            problems.append(f"{reports} report.json objects for {self.claims} claims")
        unknown = set(objects_per_photo) - {r[0] for r in stored}
        if unknown:
            problems.append(f"objects of {len(unknown)} unknown photos")
        bad = [pid for pid in {r[0] for r in stored}
               if objects_per_photo.get(pid, {}).get("original") != 1
               or objects_per_photo.get(pid, {}).get("analysis.json") != 1]
        if bad:
            problems.append(f"{len(bad)} photos without exactly one original and one analysis.json: {bad[:5]}")

        photo_latency = [(r[4] - r[5]).total_seconds() for r in stored if r[4] and r[5]]
        return {"problems": problems, "orphan_reservations": orphans, "photos_stored": len(stored),
                "photo_latency": photo_latency}

    def analysis_runs(self) -> int | None:
        """Completed per-photo analyses seen by this run's workers (from their metric files): more than
        the photos means work redone after a kill, never a second stored result."""
        from prometheus_client import CollectorRegistry
        from prometheus_client.multiprocess import MultiProcessCollector

        if not self.worker_metrics_dir.exists():
            return None
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(self.worker_metrics_dir))
        per_check: dict[str, float] = {}
        for metric in registry.collect():
            if metric.name == "claimlens_check_duration_seconds":
                for sample in metric.samples:
                    if sample.name.endswith("_count") and sample.labels.get("phase") == "photo":
                        per_check[sample.labels["check"]] = per_check.get(sample.labels["check"], 0) + sample.value
        return int(max(per_check.values())) if per_check else 0


def _env(options: dict[str, str], env: dict[str, str] | None) -> dict[str, str]:
    base = {**os.environ, **(env or _services_env())}
    base.pop("CLAIMLENS_BOOTSTRAP_ADMIN_KEY", None)  # the soak's own key; never replace a shared bootstrap key
    base.pop("PROMETHEUS_MULTIPROC_DIR", None)
    if "redis_db" in options or "redis" in options:
        db = int(options.get("redis_db", 0))
        host = options.get("redis") or urlsplit(base["CLAIMLENS_BROKER_URL"]).netloc  # e.g. 127.0.0.1:6391
        base["CLAIMLENS_BROKER_URL"] = f"redis://{host}/{db}"
        base["CLAIMLENS_RESULT_BACKEND"] = f"redis://{host}/{db + 1}"
    base.update({
        "CLAIMLENS_BUCKET": options.get("bucket") or f"soak-{secrets.token_hex(3)}",
        "CLAIMLENS_VISIBILITY_TIMEOUT_SECONDS": options.get("visibility_timeout", "60"),
        "CLAIMLENS_TASK_TIME_LIMIT_SECONDS": "45",
        # the soak measures the stack, not the limiter: 16 clients on one key would trip the defaults
        **{f"CLAIMLENS_RATE_LIMIT__{g}__{s}": "100000/second" for g in ("UPLOADS", "READS", "WRITES", "ADMIN")
           for s in ("PER_KEY", "PER_ADDRESS")},
        "PYTHONPATH": str(REPO),
    })
    return base


def soak(dataset_dir: Path | None, options: dict[str, str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run the soak and return the bench JSON (``env``: the services' CLAIMLENS_* settings; default: the
    local stack's, from ``scripts/services env``)."""
    from claimlens.core.auth import create_key
    from claimlens.core.migrate import upgrade
    from claimlens.core.models import ApiKey

    faults = [f for f in options.get("faults", "worker").split(",") if f]
    unknown = set(faults) - {"worker", *SERVICE_FAULTS}
    if unknown:
        raise SystemExit(f"unknown faults {sorted(unknown)}; use worker, s3, redis, postgres")
    if set(faults) & set(SERVICE_FAULTS) and options.get("allow_service_restarts") != "1":
        raise SystemExit("service restarts stop servers that other programs on this machine may use: "
                         "add --opt allow_service_restarts=1 when you own them")
    run_env = _env(options, env)
    _require_loopback(run_env)
    if options.get("shared_broker") != "1":
        _require_own_broker(run_env["CLAIMLENS_BROKER_URL"])
    max_seconds = float(options.get("max_seconds", 900))
    n_photos, n_claims = int(options.get("photos", 400)), int(options.get("claims", 20))
    t_begin = time.time()
    photos = _photos(dataset_dir or SHARED_DAMAGE, n_photos, seed=int(options.get("seed", 0)))
    upgrade(run_env["CLAIMLENS_DATABASE_URL"])
    from claimlens.core.db import session_scope

    run = Soak(env=run_env, key="", photos=photos, claims=n_claims, concurrency=int(options.get("concurrency", 16)),
               faults=faults, down_s=float(options.get("down_s", 5)), deadline=t_begin + max_seconds,
               api_workers=int(options.get("api_workers", 2)), workers=int(options.get("workers", 2)),
               worker_concurrency=int(options.get("worker_concurrency", 2)),
               presigned_share=float(options.get("presigned_share", 0.5)),
               upload_rate=float(options.get("upload_rate", 0)))
    key_name = f"soak-{run.run_id}"
    with session_scope(run_env["CLAIMLENS_DATABASE_URL"]) as s:
        run.key = create_key(s, name=key_name, role="admin", actor="bench-soak")
    try:
        run.start_api()
        for _ in range(run.workers):
            run.start_worker()
        t_start = time.time()
        fault_thread = threading.Thread(target=run.run_faults, daemon=True)
        fault_thread.start()
        run.run_clients()
        t_uploaded = time.time()
        run.wait_finals()
        t_end = max(run.finals.values()) if run.finals else time.time()
        fault_thread.join(timeout=max(1.0, run.deadline - time.time()))
        checks = run.check()
        runs = run.analysis_runs()
    finally:
        run.stop_all()
        try:
            with session_scope(run_env["CLAIMLENS_DATABASE_URL"]) as s:
                row = s.query(ApiKey).filter(ApiKey.name == key_name).first()
                if row is not None:
                    row.revoked_at = datetime.now(UTC)
        except Exception:  # noqa: BLE001, S110 - best effort; the key is a bench key
            pass
    up = [sec for _, sec, _ in run.upload_times]
    claim_latency = [run.finals[c] - run.submitted[c] for c in run.finals if c in run.submitted]
    missing_faults = [f for f in faults if f not in {r.name for r in run.fault_log}]
    problems = checks["problems"] + [f"fault {f} was not injected before the deadline" for f in missing_faults]
    metrics = {
        "ok": not problems,
        "problems": problems,
        "photos": n_photos, "claims": n_claims, "client_concurrency": run.concurrency,
        "api_workers": run.api_workers, "workers": run.workers, "worker_concurrency": run.worker_concurrency,
        "presigned_share": run.presigned_share, "upload_rate": run.upload_rate,
        "photos_per_s": round(n_photos / max(1e-6, t_end - t_start), 2),
        "uploads_per_s": round(len(up) / max(1e-6, t_uploaded - t_start), 2),
        "upload_latency_p50_ms": None if not up else round(1000 * _pct(up, 0.5)),
        "upload_latency_p95_ms": None if not up else round(1000 * _pct(up, 0.95)),
        "upload_latency_p95_ms_by_kind": {k: round(1000 * _pct([s for _, s, kk in run.upload_times if kk == k], 0.95))
                                          for k in ("multipart", "presigned")
                                          if any(kk == k for _, _, kk in run.upload_times)},
        "photo_upload_to_analysed_p50_s": _pct(checks["photo_latency"], 0.5),
        "photo_upload_to_analysed_p95_s": _pct(checks["photo_latency"], 0.95),
        "claim_submit_to_final_p50_s": _pct(claim_latency, 0.5),
        "claim_submit_to_final_p95_s": _pct(claim_latency, 0.95),
        "client_retries": run.retries,
        "faults": [r.summary() for r in run.fault_log],
        "analysis_runs": runs,
        "orphan_reservations": checks["orphan_reservations"],
        "logs": str(run.log_dir),
    }
    return {"bench": "soak", "dataset": str(dataset_dir or SHARED_DAMAGE), "n_images": n_photos,
            "seconds": round(time.time() - t_begin, 1), "metrics": metrics, "peers": {}}


def run(dataset_dir: Path | None, *, suite: bool, options: dict[str, str]) -> dict[str, Any]:
    return soak(dataset_dir, options)
