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
