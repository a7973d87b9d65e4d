"""The final-report webhook: fired by the worker once per final revision, signed, retried on failure."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from tests.e2e.conftest import WEBHOOK_SECRET, Stack
from tests.support.photos import jpeg

pytestmark = pytest.mark.e2e


def test_webhook_fires_signed_after_final_and_retries(stack: Stack, run_id: str) -> None:
    received: list[tuple[dict, str]] = []
    attempts = {"n": 0}

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            attempts["n"] += 1
            if attempts["n"] == 1:  # the first delivery fails: the worker must retry
                self.send_response(503)
            else:
                received.append((json.loads(body), self.headers.get("X-Claimlens-Signature", "")))
                received[-1][0]["_raw"] = body.decode()
                self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/hook"
    claim_id = f"HOOK-{run_id}"
    try:
        with stack.client() as c:
            assert c.put(f"/v1/claims/{claim_id}", json={"webhook_url": url}).status_code == 201
            r = c.post(f"/v1/claims/{claim_id}/photos", data={"stage": "survey"},
                       files={"file": ("a.jpg", jpeg(f"{run_id}-hook"), "image/jpeg")})
            assert r.status_code == 201
            assert c.post(f"/v1/claims/{claim_id}/submit").status_code == 202
        status = stack.wait_final(claim_id)
        deadline = time.monotonic() + 60
        while not received and time.monotonic() < deadline:
            time.sleep(0.3)
    finally:
        server.shutdown()
    assert attempts["n"] >= 2 and len(received) == 1
    body, signature = received[0]
    raw = body.pop("_raw").encode()
    assert body["event"] == "claim.report.final" and body["claim_id"] == claim_id
    assert body["revision"] == status["revision"] and body["report_url"].endswith(f"/v1/claims/{claim_id}/report")
    expected = hmac.new(WEBHOOK_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    assert signature == f"sha256={expected}"


def _receiver(answer) -> tuple[HTTPServer, list[str]]:  # type: ignore[no-untyped-def]
    """A loopback HTTP receiver recording the paths it was POSTed to; ``answer(handler)`` replies."""
    paths: list[str] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            paths.append(self.path)
            answer(self)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, paths


def _no_content(h: BaseHTTPRequestHandler) -> None:
    h.send_response(204)
    h.end_headers()


@pytest.mark.parametrize("url", ["http://localhost:6390/", "http://127.0.0.2:6390/", "http://10.0.0.8/hook",
                                 "http://192.168.1.1/", "http://169.254.169.254/latest/meta-data/",
                                 "http://[::1]:6390/", "http://[::ffff:127.0.0.1]/", "http://[fd00::1]/",
                                 "http://224.0.0.1/", "http://0.0.0.0:8000/"])
def test_api_refuses_internal_webhook_urls(stack: Stack, run_id: str, url: str) -> None:
    claim_id = f"SSRF-{run_id}"
    with stack.client() as c:
        r = c.put(f"/v1/claims/{claim_id}", json={"webhook_url": url})
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "webhook_url_not_allowed"
        assert c.get(f"/v1/claims/{claim_id}").status_code == 404  # nothing was created
        assert c.put(f"/v1/claims/{claim_id}", json={"plate": "沪A00001"}).status_code == 201
        r = c.put(f"/v1/claims/{claim_id}", json={"webhook_url": url})
        assert r.status_code == 422 and r.json()["error"]["code"] == "webhook_url_not_allowed"
        r = c.post(f"/v1/claims/{claim_id}/submit", json={"webhook_url": url})
        assert r.status_code == 422 and r.json()["error"]["code"] == "webhook_url_not_allowed"


def _set_webhook_in_db(stack: Stack, claim_id: str, url: str) -> None:
    """Write a URL the API would refuse straight into the claim row: a URL stored before the check existed,
    or a name whose DNS answer changed since it was checked. The worker must refuse it on its own."""
    from sqlalchemy import create_engine, text

    engine = create_engine(stack.env["CLAIMLENS_DATABASE_URL"])
    with engine.begin() as conn:
        conn.execute(text("UPDATE claims SET webhook_url = :u WHERE id = :i"), {"u": url, "i": claim_id})
    engine.dispose()


def test_worker_refuses_a_name_resolving_to_loopback_at_delivery(stack: Stack, run_id: str) -> None:
    server, paths = _receiver(_no_content)
    claim_id = f"SSRF-DELIVER-{run_id}"
    try:
        with stack.client() as c:
            ok = f"http://127.0.0.1:{server.server_port}/ok"
            assert c.put(f"/v1/claims/{claim_id}", json={"webhook_url": ok}).status_code == 201
            r = c.post(f"/v1/claims/{claim_id}/photos", data={"stage": "survey"},
                       files={"file": ("a.jpg", jpeg(f"{run_id}-ssrf"), "image/jpeg")})
            assert r.status_code == 201
            # localhost resolves to 127.0.0.1 on the worker; only the literal 127.0.0.1 is allow-listed
            _set_webhook_in_db(stack, claim_id, f"http://localhost:{server.server_port}/stolen")
            assert c.post(f"/v1/claims/{claim_id}/submit").status_code == 202
        stack.wait_final(claim_id)
        line = stack.wait_log(f"webhook of claim {claim_id} revision 1 refused")
    finally:
        server.shutdown()
    assert "loopback" in line and paths == []


def test_worker_does_not_follow_redirects(stack: Stack, run_id: str) -> None:
    inner, inner_paths = _receiver(_no_content)

    def redirect(h: BaseHTTPRequestHandler) -> None:
        h.send_response(307)
        h.send_header("Location", f"http://127.0.0.1:{inner.server_port}/stolen")
        h.end_headers()

    outer, outer_paths = _receiver(redirect)
    claim_id = f"SSRF-REDIRECT-{run_id}"
    try:
        with stack.client() as c:
            url = f"http://127.0.0.1:{outer.server_port}/hook"
            assert c.put(f"/v1/claims/{claim_id}", json={"webhook_url": url}).status_code == 201
            r = c.post(f"/v1/claims/{claim_id}/photos", data={"stage": "survey"},
                       files={"file": ("a.jpg", jpeg(f"{run_id}-redirect"), "image/jpeg")})
            assert r.status_code == 201
            assert c.post(f"/v1/claims/{claim_id}/submit").status_code == 202
        stack.wait_final(claim_id)
        stack.wait_log(f"webhook of claim {claim_id} revision 1 answered 307")
    finally:
        inner.shutdown()
        outer.shutdown()
    assert outer_paths == ["/hook"] and inner_paths == []
