"""A Milvus outage mid-claim with real processes (CLAIMLENS_INDEX_ENGINE=milvus): the photo tasks that meet the
outage retry like they do for S3 or PostgreSQL, nothing is lost, and after the restart every photo's codes are
in Milvus exactly once, equal to the database's record; erasing the claim removes them from Milvus.

The test runs a Milvus server of its own (``python -m claimlens.core.milvus_server`` on a free port, its own
base dir), so stopping it disturbs nobody else's index; the shared Redis, PostgreSQL and S3 stay up.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from claimlens.core.db import session_scope
from claimlens.core.hamming_index import hamming_codes, join_code, to_unsigned64
from claimlens.core.milvus_index import MilvusCodeIndex
from claimlens.vision.duplicates import VECTOR_KIND, load_embedder
from tests.conftest import REPO, TEST_LANE
from tests.e2e.conftest import Stack, free_port
from tests.e2e.test_reliability import assert_complete, make_claim

pytestmark = pytest.mark.e2e


class OwnMilvus:
    """A Milvus standalone server process owned by the test (stop = SIGTERM, then SIGKILL after 30 s)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        (self.base / "metrics.port").unlink(missing_ok=True)
        log = open(self.base.parent / "milvus.log", "ab")  # noqa: SIM115 - open for the server's lifetime
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "claimlens.core.milvus_server", "--base-dir", str(self.base),
             "--port", str(self.port), "--metrics-port", str(free_port())],
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"milvus exited; see {self.base.parent / 'milvus.log'}"
            try:
                port = int((self.base / "metrics.port").read_text())
                if b"OK" in urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).read():
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.3)
        raise AssertionError("milvus did not become healthy in 120 s")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


@pytest.fixture()
def milvus_stack(stack: Stack, tmp_path: Path) -> Iterator[tuple[Stack, OwnMilvus, dict[str, str], str]]:
    """The stack's workers replaced by one on the Milvus engine (the queue is shared: a postgres-engine worker
    would take the tasks), plus an API on the Milvus engine; the stack's worker comes back afterwards."""
    server = OwnMilvus(tmp_path / "milvus")
    server.start()
    env = {**stack.env, "CLAIMLENS_INDEX_ENGINE": "milvus", "CLAIMLENS_MILVUS_URI": server.uri,
           "CLAIMLENS_MILVUS_PREFIX": f"outage_lane{TEST_LANE}"}
    for w in list(stack.workers):
        stack.kill_worker(w)
        stack.workers.remove(w)
    saved_env, stack.env = stack.env, env
    api = None
    try:
        api, base_url = stack.start_api("api-milvus", env=env, workers=1)
        yield stack, server, env, base_url
    finally:
        for w in list(stack.workers):
            stack.kill_worker(w)
            stack.workers.remove(w)
        if api is not None:
            stack.stop(api)
        stack.env = saved_env
        stack.start_worker("w1-again")
        server.stop()


def test_milvus_outage_mid_claim_every_photo_indexed_once(milvus_stack, run_id: str) -> None:
    import httpx

    stack, server, env, base_url = milvus_stack
    claim_id = f"MVOUT-{run_id}"
    with stack.client() as c:
        ids = make_claim(c, claim_id, 10, size=(1600, 1200))
        assert c.post(f"/v1/claims/{claim_id}/submit").status_code == 202
        stack.start_worker("milvus")
        deadline = time.monotonic() + 180
        done: list = []
        while time.monotonic() < deadline and not done:
            done = [p for p in c.get(f"/v1/claims/{claim_id}/photos").json() if p["status"] == "analysed"]
            time.sleep(0.05)
        assert done and len(done) < len(ids), "the outage must start in the middle of the claim"
        server.stop()
        try:
            stack.wait_log("IndexUnavailable", timeout=120)  # a photo task met the outage and is retrying
            assert not c.get(f"/v1/claims/{claim_id}/status").json()["final"]
        finally:
            server.start()
    stack.wait_final(claim_id, timeout=300)
    assert_complete(stack, claim_id, ids)

    # every photo's codes in Milvus exactly once, and the same as the database's record
    want: dict[str, set[str]] = {}
    with session_scope(env["CLAIMLENS_DATABASE_URL"]) as s:
        for kind, pid, code, ext in s.execute(select(hamming_codes.c.kind, hamming_codes.c.photo_id,
                                                     hamming_codes.c.code, hamming_codes.c.code_ext)
                                              .where(hamming_codes.c.claim_id == claim_id)):
            full = join_code(to_unsigned64(code), bytes(ext))
            want.setdefault(kind, set()).add(MilvusCodeIndex.rows(kind, pid, claim_id, [full])[0]["pk"])
    assert want.get("phash64") and {pk.split(":")[0] for pk in want["phash64"]} == set(ids)
    index = MilvusCodeIndex(server.uri, prefix=env["CLAIMLENS_MILVUS_PREFIX"])
    for kind, pks in want.items():
        got = index._call(lambda cl, k=kind: cl.query(index.collection(k), filter=f'claim_id == "{claim_id}"',
                                                      output_fields=["pk"], consistency_level="Strong"))
        got_pks = [r["pk"] for r in got]
        assert len(got_pks) == len(set(got_pks)) and set(got_pks) == pks, kind
    # the float embedding: one row per photo that has an embedding (those with an emb64 code)
    with_embedding = {pk.split(":")[0] for pk in want.get("emb64", set())}
    assert with_embedding or load_embedder() is None, "the embedding ran here, so the workers must have used it"
    vec_name = index.vector_collection(VECTOR_KIND)
    if with_embedding:
        got = index._call(lambda cl: cl.query(vec_name, filter=f'claim_id == "{claim_id}"', output_fields=["pk"],
                                              consistency_level="Strong"))
        assert sorted(r["pk"] for r in got) == sorted(with_embedding)

    # erasing the claim through the API (Milvus engine) removes its codes from Milvus
    with httpx.Client(base_url=base_url, headers=dict(stack.client().headers), timeout=60) as c:
        assert c.delete(f"/v1/claims/{claim_id}").status_code == 204
    for kind in want:
        left = index._call(lambda cl, k=kind: cl.query(index.collection(k), filter=f'claim_id == "{claim_id}"',
                                                       output_fields=["pk"], consistency_level="Strong"))
        assert left == [], kind
    if with_embedding:
        assert index._call(lambda cl: cl.query(vec_name, filter=f'claim_id == "{claim_id}"', output_fields=["pk"],
                                               consistency_level="Strong")) == []
