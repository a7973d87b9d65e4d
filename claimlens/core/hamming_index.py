"""The cross-claim Hamming index: binary codes of every photo, searchable by Hamming distance.

Scheme: multi-index hashing (Norouzi, Punjani, Fleet, "Fast search in Hamming space with multi-index
hashing", CVPR 2012). The 64-bit word of a code is cut into ``N_BANDS`` disjoint substrings ("bands"), each
stored in its own column with its own B-tree index ``(kind, band, code)``. If two codes differ in at most
``r`` bits and ``r = s*m + a`` (``m`` bands, ``0 <= a < m``), then (pigeonhole) one of the first ``a + 1``
bands differs in at most ``s`` bits or one of the others in at most ``s - 1`` bits. A search therefore
enumerates, for each band, every value within that band radius of the query's band, fetches the rows
whose band equals one of them (indexed equality lookups), and verifies the full distance: in SQL with
``bit_count`` on PostgreSQL (an index-only scan: the code is in the band index), in Python on SQLite.
The result is exact: no false negatives and no false positives within ``max_distance``.

Why three bands of 22/21/21 bits: measured in docs/index.md (``claimlens bench index``).

Codes wider than 64 bits (``emb128``, ``emb256``...) are stored as their top 64 bits in ``code`` (banded,
verified in SQL as a lower bound of the full distance) plus the remaining bits in ``code_ext``; the full
distance is verified in Python. That stays exact, but the bands only see the top word, so keep radii of
wide kinds small or give them their own table with more bands.

A search that would need more than ``MAX_PROBES`` band lookups (large radii, many query codes) scans the
kind instead: still exact, but linear in the number of codes (docs/index.md, "Large radii").

Both PostgreSQL (service mode) and SQLite (embedded mode) are served by the same table definition.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from itertools import combinations
from typing import NamedTuple

import numpy as np
from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    delete,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from claimlens.core.db import Base

log = logging.getLogger(__name__)

WORD_BITS = 64
N_BANDS = 3  # chosen by measurement, see docs/index.md
MAX_PROBES = 200_000  # above this many band lookups per search, scan the kind instead (exact, O(n))
_SQLITE_CHUNK = 10_000  # bound parameters per IN list on SQLite (its limit is 32766)


# --------------------------------------------------------------------------------------------------------
# Pure functions: code layout, band split, neighbour enumeration
# --------------------------------------------------------------------------------------------------------

def kind_bits(kind: str) -> int:
    """The bit width of a code kind, read from the digits that end its name (``phash64`` -> 64)."""
    m = re.search(r"(\d+)$", kind)
    if not m or int(m.group(1)) <= 0:
        raise ValueError(f"code kind {kind!r} must end with its bit width, e.g. 'phash64'")
    bits = int(m.group(1))
    if bits > WORD_BITS and bits % 8:
        raise ValueError(f"code kind {kind!r}: widths above 64 bits must be a multiple of 8")
    return bits


def band_widths(n_bands: int = N_BANDS, bits: int = WORD_BITS) -> tuple[int, ...]:
    """Widths of the ``n_bands`` substrings of a ``bits``-bit word, most significant first, wider first."""
    if not 1 <= n_bands <= bits:
        raise ValueError(f"n_bands must be in 1..{bits}, got {n_bands}")
    base, extra = divmod(bits, n_bands)
    return tuple(base + 1 if i < extra else base for i in range(n_bands))


def split_bands(word: int, widths: Sequence[int]) -> tuple[int, ...]:
    """Cut an unsigned word into its bands (most significant band first)."""
    out = []
    shift = sum(widths)
    for w in widths:
        shift -= w
        out.append((word >> shift) & ((1 << w) - 1))
    return tuple(out)


def band_radii(radius: int, n_bands: int) -> tuple[int, ...]:
    """Per-band search radius that keeps a search of ``radius`` bits exact (-1: the band is not probed).

    With ``radius = s * n_bands + a``: bands ``0..a`` get ``s``, the others ``s - 1`` (the tightened
    pigeonhole of Norouzi et al.: if every band differed more, the total would be at least ``radius + 1``).
    """
    if radius < 0:
        raise ValueError("radius must be >= 0")
    s, a = divmod(radius, n_bands)
    return tuple(s if i <= a else s - 1 for i in range(n_bands))


@lru_cache(maxsize=256)
def flip_masks(width: int, radius: int) -> np.ndarray:
    """Every ``width``-bit mask with at most ``radius`` bits set (uint64, ascending popcount)."""
    masks = [0]
    for k in range(1, min(radius, width) + 1):
        masks.extend(sum(1 << b for b in bits) for bits in combinations(range(width), k))
    arr = np.asarray(masks, dtype=np.uint64)
    arr.flags.writeable = False
    return arr


def n_neighbours(width: int, radius: int) -> int:
    """How many values lie within ``radius`` bits of a ``width``-bit value (without enumerating them)."""
    from math import comb

    return sum(comb(width, k) for k in range(min(radius, width) + 1)) if radius >= 0 else 0


def band_neighbours(value: int, width: int, radius: int) -> np.ndarray:
    """Every ``width``-bit value within ``radius`` bits of ``value`` (the value itself first)."""
    if radius < 0:
        return np.empty(0, dtype=np.uint64)
    return np.uint64(value) ^ flip_masks(width, radius)


def probe_keys(word: int, radius: int, widths: Sequence[int]) -> list[np.ndarray]:
    """For each band of an unsigned 64-bit query word, the sorted band values to look up (empty: skip)."""
    radii = band_radii(radius, len(widths))
    return [np.sort(band_neighbours(v, w, r)) for v, w, r in zip(split_bands(word, widths), widths, radii)]


def n_probes(radius: int, widths: Sequence[int]) -> int:
    """Band lookups one query word costs at ``radius``."""
    return sum(n_neighbours(w, r) for w, r in zip(widths, band_radii(radius, len(widths))))


def hamming(a: int, b: int) -> int:
    """Hamming distance of two non-negative ints."""
    return (a ^ b).bit_count()


def to_signed64(word: int) -> int:
    """Unsigned 64-bit word -> the signed value stored in a BIGINT column."""
    return word - (1 << 64) if word >= (1 << 63) else word


def to_unsigned64(value: int) -> int:
    return value & 0xFFFF_FFFF_FFFF_FFFF


def split_code(code: int, bits: int) -> tuple[int, bytes]:
    """A code of ``bits`` bits -> (unsigned top 64-bit word, remaining bits as big-endian bytes)."""
    if code < 0 or code >> bits:
        raise ValueError(f"code {code:#x} does not fit in {bits} bits")
    if bits <= WORD_BITS:
        return code, b""
    rest = bits - WORD_BITS
    return code >> rest, (code & ((1 << rest) - 1)).to_bytes(rest // 8, "big")


def join_code(word: int, ext: bytes) -> int:
    """Inverse of :func:`split_code` (``word`` unsigned)."""
    return (word << (8 * len(ext))) | int.from_bytes(ext, "big") if ext else word


# --------------------------------------------------------------------------------------------------------
# Storage
# --------------------------------------------------------------------------------------------------------

def make_table(metadata: MetaData, name: str = "hamming_codes", n_bands: int = N_BANDS,
               schema: str | None = None) -> Table:
    """The index table (also used by the bench to build throw-away copies with other band counts).

    One row per (kind, photo, code). ``code`` is the top 64-bit word as a signed BIGINT, ``code_ext`` the
    bits beyond 64 (empty for 64-bit kinds), ``b0..b{n-1}`` the bands of ``code`` as unsigned ints.
    """
    bands = [Column(f"b{i}", Integer, nullable=False) for i in range(n_bands)]
    return Table(
        name, metadata,
        Column("kind", String(32), nullable=False),
        Column("photo_id", String(36), nullable=False),
        Column("claim_id", String(64), nullable=False),
        Column("code", BigInteger, nullable=False),
        Column("code_ext", LargeBinary, nullable=False),
        *bands,
        # the natural key: idempotent inserts (ON CONFLICT DO NOTHING) and remove(photo_id)
        PrimaryKeyConstraint("photo_id", "kind", "code", "code_ext"),
        # one index per band: (kind, band, code) lets PostgreSQL verify candidates in an index-only scan
        *[Index(f"ix_{name}_kind_b{i}", "kind", f"b{i}", "code") for i in range(n_bands)],
        schema=schema,
    )


hamming_codes = make_table(Base.metadata)


class HammingCode(Base):
    """ORM view of one row of :data:`hamming_codes` (the index itself uses Core statements)."""

    __table__ = hamming_codes


class HammingHit(NamedTuple):
    photo_id: str
    claim_id: str
    distance: int


# --------------------------------------------------------------------------------------------------------
# The index
# --------------------------------------------------------------------------------------------------------

class HammingIndex:
    """Add, remove and search codes; the same calls on PostgreSQL and SQLite.

    ``table`` defaults to the application table; the bench passes a throw-away copy.
    The caller owns the transaction (``session_scope`` commits).
    """

    def __init__(self, table: Table = hamming_codes, *, parallel: bool = False) -> None:
        self.table = table
        # parallel workers cost more than they bring for these short index-only scans (measured on the
        # 2-core box: p95 doubled); False turns them off for the search statement only
        self.parallel = parallel
        self.band_cols = [c for c in table.c if re.fullmatch(r"b\d+", c.name)]
        self.widths = band_widths(len(self.band_cols))
        from sqlalchemy.dialects.postgresql.base import PGDialect

        self._pg_name = PGDialect().identifier_preparer.format_table(table)

    # -- writes ------------------------------------------------------------------------------------------

    def rows(self, kind: str, photo_id: str, claim_id: str, codes: Iterable[int]) -> list[dict]:
        """The rows ``add`` inserts, sorted by the unique key (a fixed order avoids deadlocks between
        concurrent transactions inserting the same rows)."""
        bits = kind_bits(kind)
        out = {}
        for code in codes:
            word, ext = split_code(int(code), bits)
            row = {"kind": kind, "photo_id": photo_id, "claim_id": claim_id,
                   "code": to_signed64(word), "code_ext": ext}
            row.update({c.name: b for c, b in zip(self.band_cols, split_bands(word, self.widths))})
            out[(row["code"], ext)] = row
        return [out[k] for k in sorted(out)]

    def add(self, session: Session, kind: str, photo_id: str, claim_id: str, codes: Iterable[int]) -> int:
        """Index ``codes`` of ``kind`` for a photo; re-adding existing codes is a no-op. Returns rows new."""
        rows = self.rows(kind, photo_id, claim_id, codes)
        if not rows:
            return 0
        dialect = session.get_bind().dialect.name
        ins = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = ins(self.table).values(rows).on_conflict_do_nothing().returning(self.table.c.code)
        return len(session.execute(stmt).all())  # RETURNING: rowcount is not reliable through the drivers

    def remove(self, session: Session, photo_id: str) -> int:
        """Drop every code of a photo (all kinds). Returns the number of rows removed."""
        return session.execute(delete(self.table).where(self.table.c.photo_id == photo_id)).rowcount

    # -- search ------------------------------------------------------------------------------------------

    def search(self, session: Session, kind: str, codes: Sequence[int], max_distance: int, limit: int = 50,
               exclude_photo_id: str | None = None) -> list[HammingHit]:
        """Photos with a code of ``kind`` within ``max_distance`` bits of any of ``codes``.

        Exact within the radius; one row per photo (its best code), smallest distance first (ties by
        photo id), at most ``limit`` rows. Pass every variant of the query (e.g. its dihedral transforms)
        in ``codes`` at once: one statement serves them all.
        """
        bits = kind_bits(kind)
        queries = sorted({split_code(int(c), bits) for c in codes})
        if not queries or limit <= 0:
            return []
        words = sorted({w for w, _ in queries})
        if n_probes(max_distance, self.widths) * len(words) > MAX_PROBES:
            # beyond what the bands can serve: an exact scan of the kind (fine for thousands of codes,
            # seconds at millions; see docs/index.md for the radii that scale)
            log.debug("hamming search of radius %d with %d codes: scanning", max_distance, len(words))
            return self._verify(self._scan(session, kind, words, max_distance, exclude_photo_id),
                                queries, max_distance, limit)
        plan = [(w, probe_keys(w, max_distance, self.widths)) for w in words]
        if session.get_bind().dialect.name == "postgresql":
            if bits <= WORD_BITS:
                return self._search_pg(session, kind, plan, max_distance, limit, exclude_photo_id)
            rows = self._candidates_pg(session, kind, plan, max_distance, exclude_photo_id)
        else:
            rows = self._candidates_sqlite(session, kind, plan, exclude_photo_id)
        return self._verify(rows, queries, max_distance, limit)

    def _scan(self, session: Session, kind: str, words: list[int], max_distance: int,
              exclude_photo_id: str | None) -> list[tuple[str, str, int, bytes]]:
        """Every row of ``kind`` whose 64-bit word is within the radius of a query word (numpy over all
        words of the kind; the full distance of wide codes is checked afterwards by ``_verify``)."""
        t = self.table
        stored = self._all_words(session, kind)
        if not len(stored):
            return []
        near = np.zeros(len(stored), dtype=bool)
        for w in words:
            near |= np.bitwise_count(stored ^ np.uint64(w)) <= max_distance
        matched = np.unique(stored[near])
        # b0 is a function of code: the extra condition only lets the first band's index find the rows
        b0 = (matched >> np.uint64(WORD_BITS - self.widths[0])).astype(np.int64).tolist()
        matched = matched.view(np.int64).tolist()
        rows = []
        for j in range(0, len(matched), _SQLITE_CHUNK):
            stmt = select(t.c.photo_id, t.c.claim_id, t.c.code, t.c.code_ext).where(
                t.c.kind == kind, self.band_cols[0].in_(sorted(set(b0[j:j + _SQLITE_CHUNK]))),
                t.c.code.in_(matched[j:j + _SQLITE_CHUNK]))
            if exclude_photo_id is not None:
                stmt = stmt.where(t.c.photo_id != exclude_photo_id)
            rows.extend(tuple(r) for r in session.execute(stmt))
        return rows

    def _all_words(self, session: Session, kind: str) -> np.ndarray:
        """The 64-bit words of every row of ``kind`` as uint64, without building a Python row per code."""
        if session.get_bind().dialect.name == "postgresql":
            blob = session.execute(text(f"SELECT string_agg(int8send(code), ''::bytea) FROM {self._pg_name} "
                                        f"WHERE kind = :kind"), {"kind": kind}).scalar_one()
            return np.frombuffer(blob or b"", dtype=">i8").astype(np.int64).view(np.uint64)
        from sqlalchemy.dialects.sqlite.base import SQLiteDialect

        name = SQLiteDialect().identifier_preparer.format_table(self.table)
        cur = session.connection().connection.cursor()
        try:
            cur.execute(f"SELECT code FROM {name} WHERE kind = ?", (kind,))
            return np.fromiter((r[0] for r in cur), dtype=np.int64).view(np.uint64)
        finally:
            cur.close()

    @staticmethod
    def _verify(rows: Iterable[tuple[str, str, int, bytes]], queries: list[tuple[int, bytes]],
                max_distance: int, limit: int) -> list[HammingHit]:
        full = [join_code(w, e) for w, e in queries]
        best: dict[str, HammingHit] = {}
        for photo_id, claim_id, code, ext in rows:
            c = join_code(to_unsigned64(code), bytes(ext))
            d = min(hamming(c, q) for q in full)
            if d <= max_distance and (photo_id not in best or d < best[photo_id].distance):
                best[photo_id] = HammingHit(photo_id, claim_id, d)
        return sorted(best.values(), key=lambda h: (h.distance, h.photo_id))[:limit]

    def _candidates_sqlite(self, session: Session, kind: str, plan: list[tuple[int, list[np.ndarray]]],
                           exclude_photo_id: str | None) -> list[tuple[str, str, int, bytes]]:
        t = self.table
        seen: dict[tuple[str, int, bytes], tuple[str, str, int, bytes]] = {}
        for i, col in enumerate(self.band_cols):
            keys = np.unique(np.concatenate([bands[i] for _, bands in plan])).tolist()
            for j in range(0, len(keys), _SQLITE_CHUNK):
                stmt = select(t.c.photo_id, t.c.claim_id, t.c.code, t.c.code_ext).where(
                    t.c.kind == kind, col.in_(keys[j:j + _SQLITE_CHUNK]))
                if exclude_photo_id is not None:
                    stmt = stmt.where(t.c.photo_id != exclude_photo_id)
                for row in session.execute(stmt):
                    seen[(row[0], row[2], bytes(row[3]))] = tuple(row)
        return list(seen.values())

    def _pg_parts(self, plan: list[tuple[int, list[np.ndarray]]]) -> tuple[str, dict]:
        """The candidate CTE: for each query word and probed band, one index-only scan of the band index
        over the sorted band keys (``= ANY(array)``), the full 64-bit distance checked on the index tuple."""
        params: dict = {}
        parts = []
        for j, (word, bands) in enumerate(plan):
            params[f"w{j}"] = to_signed64(word)
            dist = f"bit_count((h.code # CAST(:w{j} AS bigint))::bit(64))"
            for i, (col, keys) in enumerate(zip(self.band_cols, bands)):
                if not len(keys):
                    continue
                # a text array literal: far cheaper for the driver than adapting thousands of ints
                params[f"k{j}_{i}"] = "{" + ",".join(map(str, keys.tolist())) + "}"
                parts.append(f"SELECT h.code, {dist} AS d FROM {self._pg_name} h "
                             f"WHERE h.kind = :kind AND h.{col.name} = ANY(CAST(:k{j}_{i} AS integer[])) "
                             f"AND {dist} <= :r")
        return " UNION ALL ".join(parts), params

    def _join_back(self) -> str:
        """SQL condition that finds the rows of a matched word through the first band's index."""
        shift = WORD_BITS - self.widths[0]
        mask = (1 << self.widths[0]) - 1
        col = self.band_cols[0].name
        return f"r.kind = :kind AND r.{col} = ((m.code >> {shift}) & {mask})::int AND r.code = m.code"

    def _search_pg(self, session: Session, kind: str, plan: list[tuple[int, list[np.ndarray]]],
                   max_distance: int, limit: int, exclude_photo_id: str | None) -> list[HammingHit]:
        cand, params = self._pg_parts(plan)
        excl = "AND r.photo_id <> :exclude " if exclude_photo_id is not None else ""
        sql = (f"WITH c AS ({cand}), m AS (SELECT code, min(d) AS d FROM c GROUP BY code) "
               f"SELECT r.photo_id, min(r.claim_id), min(m.d) AS d FROM m JOIN {self._pg_name} r "
               f"ON {self._join_back()} {excl}"
               f"GROUP BY r.photo_id ORDER BY d, r.photo_id LIMIT :limit")
        params.update(kind=kind, r=max_distance, limit=limit, exclude=exclude_photo_id)
        return [HammingHit(p, c, int(d)) for p, c, d in self._execute_pg(session, sql, params)]

    def _candidates_pg(self, session: Session, kind: str, plan: list[tuple[int, list[np.ndarray]]],
                       max_distance: int, exclude_photo_id: str | None) -> list[tuple[str, str, int, bytes]]:
        cand, params = self._pg_parts(plan)
        excl = "AND r.photo_id <> :exclude" if exclude_photo_id is not None else ""
        sql = (f"WITH c AS ({cand}), m AS (SELECT DISTINCT code FROM c) "
               f"SELECT r.photo_id, r.claim_id, r.code, r.code_ext FROM m JOIN {self._pg_name} r "
               f"ON {self._join_back()} {excl}")
        params.update(kind=kind, r=max_distance, exclude=exclude_photo_id)
        return [tuple(row) for row in self._execute_pg(session, sql, params)]

    def _execute_pg(self, session: Session, sql: str, params: dict) -> list:
        if self.parallel:
            return session.execute(text(sql), params).all()
        old = session.execute(text("SELECT current_setting('max_parallel_workers_per_gather'), "
                                   "set_config('max_parallel_workers_per_gather', '0', true)")).scalar_one()
        rows = session.execute(text(sql), params).all()  # on error the rollback reverts the local setting
        session.execute(text("SELECT set_config('max_parallel_workers_per_gather', :v, true)"), {"v": old})
        return rows
