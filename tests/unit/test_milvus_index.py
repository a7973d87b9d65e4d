"""Pure parts of the Milvus code index: code layout, row keys, filter quoting, engine choice (no server)."""

from __future__ import annotations

import pytest

from claimlens.config import Settings
from claimlens.core.milvus_index import MilvusCodeIndex, _quoted, code_bytes, make_code_index


def test_code_bytes_are_big_endian_like_the_hamming_table() -> None:
    assert code_bytes(1 << 63, 64) == b"\x80" + b"\x00" * 7  # bit 0 (most significant) first
    assert code_bytes(1, 64) == b"\x00" * 7 + b"\x01"
    assert len(code_bytes(3, 256)) == 32
    with pytest.raises(ValueError):
        code_bytes(1 << 64, 64)
    with pytest.raises(ValueError):
        code_bytes(-1, 64)


def test_rows_are_keyed_by_photo_and_code_and_deduplicated() -> None:
    rows = MilvusCodeIndex.rows("phash64", "p-1", "c-1", [5, 1, 5])
    assert [r["pk"] for r in rows] == ["p-1:0000000000000001", "p-1:0000000000000005"]
    assert all(r["photo_id"] == "p-1" and r["claim_id"] == "c-1" for r in rows)


def test_filter_values_are_checked() -> None:
    assert _quoted("CLM-2024.001") == '"CLM-2024.001"'
    for bad in ['a" or photo_id != "', "a b", "", "x" * 65]:
        with pytest.raises(ValueError):
            _quoted(bad)


def test_engine_setting() -> None:
    assert make_code_index(Settings(index_engine="postgres")) is None
    index = make_code_index(Settings(index_engine="milvus", milvus_uri="http://h:1", milvus_prefix="p1"))
    assert isinstance(index, MilvusCodeIndex) and index.uri == "http://h:1" and index.collection("emb64") == "p1_emb64"
    with pytest.raises(ValueError):
        Settings(index_engine="faiss")
