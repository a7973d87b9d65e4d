"""Candidate search of the cross-claim index on Milvus (``CLAIMLENS_INDEX_ENGINE=milvus``), through pymilvus only.

What it serves: the same call as :meth:`claimlens.core.hamming_index.HammingIndex.search` (photos with a
code of a kind within a Hamming radius of any query code, one row per photo, best first), so the
reused-photo check runs unchanged on either engine. The database stays the system of record: the
``hamming_codes`` table is still written in the photo's transaction (it is what ``claimlens index rebuild``
reads to re-create the collections), and this index is written in the same transaction, before it commits,
so a Milvus outage fails the photo task (retried like an S3 or database outage) instead of losing codes.

Layout (docs/index.md, "Milvus"):

* one collection per code kind, ``<prefix>_<kind>`` (``claimlens_phash64``, ``claimlens_emb64``): a photo's
  query for a kind is one search request carrying all its query codes (nq = up to 41 pHash codes), against
  one collection, with no scalar filter. Why not one collection with a ``kind`` partition key: filtered
  BIN_FLAT searches on the Milvus 2.3.5 server return wrong neighbours (measured: the exact match at
  distance 0 is missed with the filter ``kind == "phash64"`` that every row satisfies, found without it);
* rows: ``pk`` = ``<photo_id>:<code hex>`` (an upsert of the same photo's codes is a no-op), ``photo_id``,
  ``claim_id``, ``code`` (BINARY_VECTOR of the kind's width, big-endian bytes: bit 0 is the most
  significant bit of the code, as in the Hamming table);
* index ``BIN_FLAT`` (exact, metric HAMMING): chosen by ``claimlens bench index --opt engine=milvus``;
* consistency ``Strong`` for searches: the claim phase must see the codes its photo tasks wrote moments
  ago (a Strong read waits for the server's next time tick: ``scripts/services`` sets it to 20 ms).

A photo's codes are replaced (delete by ``photo_id``, then upsert) when it is re-analysed; a claim's are
deleted with the claim.

The float embedding (``PhotoResult.vectors``: the copy embedding's first 256 PCA coordinates, L2-normalised
again; kind ``embf256``, a float kind, not a 256-bit code) goes to one more collection,
``<prefix>_vectors_<kind>``: ``pk`` = photo id (one row per photo: an upsert is idempotent), ``claim_id``,
``vec`` (FLOAT_VECTOR, metric IP: the vectors are unit length, so IP is the cosine), index ``IVF_FLAT``
(nlist 1024, nprobe 256: chosen against HNSW by ``claimlens bench index --opt engine=milvus``, docs/index.md).
It is written and deleted with the codes, on the same paths. ``claimlens index rebuild`` does not drop it:
the vectors are not in the database.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Sequence
from typing import Any

from claimlens.core.hamming_index import HammingHit, kind_bits

log = logging.getLogger(__name__)

INDEX_TYPE = "BIN_FLAT"
"""Exact Hamming search (measured in docs/index.md: at 10^6 codes BIN_IVF_FLAT did not pay for its recall loss)."""
ROWS_PER_PHOTO = 8
"""At most this many codes of one kind are stored per photo (``PhotoHashes.stored_codes``): a query code asks
for ``limit * ROWS_PER_PHOTO`` rows so that ``limit`` distinct photos are always among them."""
MAX_TOPK = 16384  # Milvus' limit on topk
VECTOR_INDEX = {"index_type": "IVF_FLAT", "metric_type": "IP", "params": {"nlist": 1024}}
"""The float collection's ANN index, chosen by ``claimlens bench index --opt engine=milvus`` (docs/index.md,
"The float embedding in Milvus"): at 10^5 vectors IVF_FLAT nprobe 256 found 0.997 of the planted copies in
its top 10 (recall_vs_exact 0.90), HNSW (M 16, efConstruction 200) at ef 512 0.98 (0.91), at the same
latency (both ~40 ms, mostly the Strong read's wait); the whitened embedding is nearly isotropic, which
graph and cluster indexes both find hard."""
VECTOR_SEARCH_NPROBE = 256
"""IVF lists probed per search (of 1024): see VECTOR_INDEX."""
VECTOR_COLLECTION_TAG = "vectors"
_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


class IndexUnavailable(RuntimeError):
    """The Milvus server did not answer (down, restarting, overloaded): a transient failure to retry."""


def code_bytes(code: int, bits: int) -> bytes:
    """A code as the big-endian bytes of a Milvus BINARY_VECTOR of ``bits`` dimensions."""
    if code < 0 or code >> bits:
        raise ValueError(f"code {code:#x} does not fit in {bits} bits")
    return int(code).to_bytes(bits // 8, "big")


def _quoted(value: str) -> str:
    """A photo or claim id inside a Milvus filter expression (ids are uuids or API-given slugs: checked)."""
    if not _ID.match(value):
        raise ValueError(f"id {value!r} cannot be used in an index filter")
    return f'"{value}"'


class MilvusCodeIndex:
    """Binary codes of every photo in Milvus collections, searchable by Hamming distance.

    The pymilvus client is created on first use (after a Celery worker forked) and re-created after a
    failure. Every call raises :class:`IndexUnavailable` when the server cannot be reached; each carries
    ``timeout`` (pymilvus otherwise retries a dead server for minutes, past the task's time limit).
    """

    def __init__(self, uri: str, *, token: str | None = None, prefix: str = "claimlens",
                 timeout: float = 10.0, index_type: str = INDEX_TYPE, index_params: dict | None = None,
                 vector_index: dict | None = None, vector_search: dict | None = None) -> None:
        self.uri = uri
        self.token = token
        self.prefix = prefix
        self.timeout = timeout
        self.index_type = index_type
        self.index_params = index_params or {}
        self.vector_index = vector_index or VECTOR_INDEX
        self.vector_search = vector_search or {"nprobe": VECTOR_SEARCH_NPROBE}
        self._client: Any = None
        self._ready: set[str] = set()
        self._lock = threading.Lock()

    # -- plumbing -----------------------------------------------------------------------------------------

    def collection(self, kind: str) -> str:
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,30}", kind):
            raise ValueError(f"code kind {kind!r} is not a valid collection suffix")
        return f"{self.prefix}_{kind}"

    def _call(self, fn, *args, **kwargs):
        """Run one client call; connection failures and server errors become IndexUnavailable."""
        from pymilvus.exceptions import MilvusException

        try:
            with self._lock:
                if self._client is None:
                    from pymilvus import MilvusClient

                    self._client = MilvusClient(uri=self.uri, token=self.token or "", timeout=self.timeout)
                client = self._client
            return fn(client, *args, **kwargs)
        except (MilvusException, ConnectionError, OSError, TimeoutError) as exc:
            self._forget_client()
            raise IndexUnavailable(f"Milvus at {self.uri}: {type(exc).__name__}: {exc}") from exc
        except Exception as exc:  # grpc errors surface as grpc.RpcError subclasses
            if type(exc).__module__.startswith("grpc"):
                self._forget_client()
                raise IndexUnavailable(f"Milvus at {self.uri}: {type(exc).__name__}: {exc}") from exc
            raise

    def _forget_client(self) -> None:
        with self._lock:
            client, self._client = self._client, None
            self._ready.clear()
        if client is not None:
            try:
                client.close()
            except Exception as exc:  # noqa: BLE001 - a broken channel may fail to close; dropped either way
                log.debug("closing the Milvus client failed: %s", exc)

    def ensure(self, kind: str) -> str:
        """Create (if missing) and load the collection of ``kind``; returns its name."""
        name = self.collection(kind)
        if name in self._ready:
            return name
        bits = kind_bits(kind)
        if bits % 8:
            raise ValueError(f"code kind {kind!r}: Milvus binary vectors need a multiple of 8 bits")

        def create(client):
            from pymilvus import DataType, MilvusClient

            if not client.has_collection(name, timeout=self.timeout):
                schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
                schema.add_field("pk", DataType.VARCHAR, max_length=64 + 2 + bits // 4, is_primary=True)
                schema.add_field("photo_id", DataType.VARCHAR, max_length=64)
                schema.add_field("claim_id", DataType.VARCHAR, max_length=64)
                schema.add_field("code", DataType.BINARY_VECTOR, dim=bits)
                index = client.prepare_index_params()
                index.add_index(field_name="code", index_type=self.index_type, metric_type="HAMMING",
                                params=self.index_params)
                client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong",
                                         timeout=self.timeout)
            client.load_collection(name, timeout=self.timeout)

        self._call(create)
        self._ready.add(name)
        return name

    def kinds(self) -> list[str]:
        """Code kinds that have a collection under this prefix (asked each time: another process may have
        created one; a list costs ~1 ms)."""
        names = self._call(lambda c: c.list_collections(timeout=self.timeout))
        vec = f"{self.prefix}_{VECTOR_COLLECTION_TAG}_"
        return sorted(n[len(self.prefix) + 1:] for n in names if n.startswith(self.prefix + "_")
                      and not n.startswith(vec) and re.fullmatch(r"[a-z][a-z0-9_]*\d", n[len(self.prefix) + 1:]))

    def vector_collection(self, kind: str) -> str:
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,30}", kind):
            raise ValueError(f"vector kind {kind!r} is not a valid collection suffix")
        return f"{self.prefix}_{VECTOR_COLLECTION_TAG}_{kind}"

    def vector_kinds(self) -> list[str]:
        """Vector kinds that have a collection under this prefix."""
        head = f"{self.prefix}_{VECTOR_COLLECTION_TAG}_"
        names = self._call(lambda c: c.list_collections(timeout=self.timeout))
        return sorted(n[len(head):] for n in names if n.startswith(head))

    def ensure_vectors(self, kind: str, dim: int) -> str:
        """Create (if missing) and load the float collection of ``kind``; returns its name."""
        name = self.vector_collection(kind)
        if name in self._ready:
            return name

        def create(client):
            from pymilvus import DataType, MilvusClient

            if not client.has_collection(name, timeout=self.timeout):
                schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
                schema.add_field("pk", DataType.VARCHAR, max_length=64, is_primary=True)
                schema.add_field("claim_id", DataType.VARCHAR, max_length=64)
                schema.add_field("vec", DataType.FLOAT_VECTOR, dim=dim)
                index = client.prepare_index_params()
                index.add_index(field_name="vec", **self.vector_index)
                client.create_collection(name, schema=schema, index_params=index, consistency_level="Strong",
                                         timeout=self.timeout)
            client.load_collection(name, timeout=self.timeout)

        self._call(create)
        self._ready.add(name)
        return name

    # -- writes -------------------------------------------------------------------------------------------

    @staticmethod
    def rows(kind: str, photo_id: str, claim_id: str, codes: Iterable[int]) -> list[dict]:
        bits = kind_bits(kind)
        out = {}
        for code in codes:
            out[int(code)] = {"pk": f"{photo_id}:{int(code):0{bits // 4}x}", "photo_id": photo_id,
                              "claim_id": claim_id, "code": code_bytes(int(code), bits)}
        return [out[k] for k in sorted(out)]

    def replace_photo(self, photo_id: str, claim_id: str, codes: dict[str, list[int]],
                      vectors: dict[str, Sequence[float]] | None = None) -> int:
        """Make the photo's codes and float vectors exactly these (idempotent). Returns the rows written."""
        expr = f"photo_id == {_quoted(photo_id)}"
        written = self._replace_vectors(photo_id, claim_id, vectors or {})
        kinds = set(self.kinds()) | {k for k, v in codes.items() if v}
        for kind in sorted(kinds):
            name = self.ensure(kind)
            rows = self.rows(kind, photo_id, claim_id, codes.get(kind, []))
            keep = {r["pk"] for r in rows}
            # Bounded: rows of an earlier analysis are seconds to weeks old; a Strong read would wait for the
            # next time tick (20 ms, 200 ms on a stock server) on every photo task
            old = self._call(lambda c, n=name: c.query(n, filter=expr, output_fields=["pk"],
                                                        consistency_level="Bounded", timeout=self.timeout))
            stale = [r["pk"] for r in old if r["pk"] not in keep]
            if stale:
                self._call(lambda c, n=name, s=stale: c.delete(n, ids=s, timeout=self.timeout))
            if rows:
                self._call(lambda c, n=name, r=rows: c.upsert(n, r, timeout=self.timeout))
                written += len(rows)
        return written

    def _replace_vectors(self, photo_id: str, claim_id: str, vectors: dict[str, Sequence[float]]) -> int:
        """One row per photo and vector kind (pk = photo id): upsert the given, delete the photo's others."""
        pk = _quoted(photo_id)
        written = 0
        for kind in sorted(set(self.vector_kinds()) | set(vectors)):
            vec = vectors.get(kind)
            if vec is None or not len(vec):
                name = self.vector_collection(kind)
                self._call(lambda c, n=name: c.delete(n, filter=f"pk == {pk}", timeout=self.timeout))
                continue
            values = [float(x) for x in vec]
            name = self.ensure_vectors(kind, len(values))
            row = {"pk": photo_id, "claim_id": claim_id, "vec": values}
            self._call(lambda c, n=name, r=row: c.upsert(n, [r], timeout=self.timeout))
            written += 1
        return written

    def bulk_insert_vectors(self, kind: str, photo_ids: Sequence[str], claim_ids: Sequence[str],
                            vecs: Any) -> None:
        """Insert float rows (bench); no delete of older rows."""
        name = self.ensure_vectors(kind, len(vecs[0]))
        for i in range(0, len(photo_ids), 5000):
            chunk = vecs[i:i + 5000]
            chunk = chunk.tolist() if hasattr(chunk, "tolist") else chunk
            rows = [{"pk": p, "claim_id": c, "vec": v}
                    for p, c, v in zip(photo_ids[i:i + 5000], claim_ids[i:i + 5000], chunk)]
            self._call(lambda c, r=rows: c.insert(name, r, timeout=self.timeout))

    def search_vectors(self, kind: str, vector: Sequence[float], limit: int = 10,
                       exclude_claim: str | None = None) -> list[tuple[str, str, float]]:
        """The ``limit`` photos nearest to ``vector`` (inner product, best first) as (photo id, claim id,
        similarity), photos of ``exclude_claim`` left out (a claim's own photos are found by the codes)."""
        name = self.vector_collection(kind)
        if name not in self._ready and kind not in self.vector_kinds():
            return []
        self.ensure_vectors(kind, len(vector))
        flt = f"claim_id != {_quoted(exclude_claim)}" if exclude_claim else ""
        result = self._call(lambda c: c.search(
            name, data=[[float(x) for x in vector]], anns_field="vec", limit=limit, filter=flt,
            output_fields=["claim_id"], timeout=self.timeout,
            search_params={"metric_type": self.vector_index["metric_type"],
                           "params": self.vector_search}))
        return [(h["id"], h["entity"]["claim_id"], float(h["distance"])) for h in result[0]]

    def remove_photo(self, photo_id: str) -> None:
        self.replace_photo(photo_id, "", {})

    def remove_claim(self, claim_id: str) -> None:
        """Delete every code of a claim's photos (claim erasure)."""
        expr = f"claim_id == {_quoted(claim_id)}"
        for kind in self.kinds():
            name = self.ensure(kind)
            self._call(lambda c, n=name: c.delete(n, filter=expr, timeout=self.timeout))
        for kind in self.vector_kinds():
            name = self.vector_collection(kind)
            self._call(lambda c, n=name: c.delete(n, filter=expr, timeout=self.timeout))

    def bulk_insert(self, kind: str, rows: list[dict]) -> None:
        """Insert rows made by :meth:`rows` (rebuild, bench); no delete of older codes."""
        name = self.ensure(kind)
        for i in range(0, len(rows), 5000):
            self._call(lambda c, r=rows[i:i + 5000]: c.insert(name, r, timeout=self.timeout))

    def drop_vectors(self) -> None:
        """Drop every float collection under the prefix (tests, bench)."""
        for kind in self.vector_kinds():
            name = self.vector_collection(kind)
            self._call(lambda c, n=name: c.drop_collection(n, timeout=self.timeout))
            self._ready.discard(name)

    def drop(self, kind: str | None = None) -> None:
        """Drop the code collection of ``kind`` (every code kind under the prefix when None; the float
        collections stay: ``rebuild_code_index`` cannot re-create them from the database)."""
        for k in [kind] if kind else self.kinds():
            name = self.collection(k)
            self._call(lambda c, n=name: c.drop_collection(n, timeout=self.timeout)
                       if c.has_collection(n, timeout=self.timeout) else None)
            self._ready.discard(name)

    # -- search -------------------------------------------------------------------------------------------

    def search(self, kind: str, codes: Sequence[int], max_distance: int, limit: int = 50) -> list[HammingHit]:
        """Photos with a code of ``kind`` within ``max_distance`` bits of any of ``codes``: one row per photo
        (its best code), smallest distance first, ties by photo id, at most ``limit`` (as HammingIndex)."""
        bits = kind_bits(kind)
        query = sorted({int(c) for c in codes})
        if not query or limit <= 0:
            return []
        name = self.collection(kind)
        if name not in self._ready and kind not in self.kinds():
            return []  # nothing of this kind was ever indexed
        self.ensure(kind)
        topk = min(MAX_TOPK, limit * ROWS_PER_PHOTO)
        result = self._call(lambda c: c.search(
            name, data=[code_bytes(q, bits) for q in query], anns_field="code", limit=topk,
            output_fields=["photo_id", "claim_id"], timeout=self.timeout,
            # a range search: only rows within the radius come back (range_filter <= d < radius). Measured:
            # 39 query codes at 3,000 photos, plain top-400 returned 15,600 rows in 150-390 ms, this 18 rows
            # in 33-66 ms (most of which is the Strong read's wait for the time tick)
            search_params={"metric_type": "HAMMING", "params": {"radius": max_distance + 1, "range_filter": 0}}))
        best: dict[str, HammingHit] = {}
        for hits in result:
            for h in hits:
                d = round(h["distance"])
                if d > max_distance:
                    continue
                pid = h["entity"]["photo_id"]
                if pid not in best or d < best[pid].distance:
                    best[pid] = HammingHit(pid, h["entity"]["claim_id"], d)
        return sorted(best.values(), key=lambda t: (t.distance, t.photo_id))[:limit]

    def count(self, kind: str) -> int:
        name = self.ensure(kind)
        res = self._call(lambda c: c.query(name, filter="", output_fields=["count(*)"], timeout=self.timeout))
        return int(res[0]["count(*)"])


def make_code_index(settings) -> MilvusCodeIndex | None:
    """The Milvus code index the settings ask for, or None for the database's own Hamming table."""
    if settings.index_engine != "milvus":
        return None
    token = settings.milvus_token.get_secret_value() if settings.milvus_token else None
    return MilvusCodeIndex(settings.milvus_uri, token=token, prefix=settings.milvus_prefix)
