"""Webhook SSRF rules: which addresses may receive a webhook, the allow-list, https in production, and the
delivery itself (pinned to the checked address, no redirects, bounded read) against local HTTP servers."""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from claimlens.config import Settings
from claimlens.core.webhooks import (
    WebhookNotAllowed,
    address_refusal,
    check_webhook_url,
    host_allowed,
    post_webhook,
)

REFUSED = ["127.0.0.1", "127.9.9.9", "10.0.0.5", "172.16.3.4", "172.31.255.255", "192.168.1.10",
           "169.254.169.254", "169.254.1.1", "224.0.0.251", "239.255.255.250", "0.0.0.0", "240.0.0.1",
           "255.255.255.255", "100.64.0.1", "::1", "::", "fe80::1", "fc00::1", "fd00:ec2::254", "ff02::1",
           "::ffff:127.0.0.1", "::ffff:169.254.169.254", "::ffff:10.0.0.1", "::7f00:1", "64:ff9b::a9fe:a9fe",
           "2002:a00:1::1", "2001:db8::1", "fec0::1"]
PUBLIC = ["8.8.8.8", "93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "2a00:1450:4001:81c::200e"]


def settings(**kw: object) -> Settings:
    return Settings(_env_file=None, **kw)  # type: ignore[call-arg]


@pytest.mark.parametrize("address", REFUSED)
def test_internal_addresses_are_refused(address: str) -> None:
    assert address_refusal(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", PUBLIC)
def test_public_unicast_addresses_pass(address: str) -> None:
    assert address_refusal(ipaddress.ip_address(address)) is None


def test_metadata_and_mapped_loopback_name_their_reason() -> None:
    assert "link-local" in address_refusal(ipaddress.ip_address("169.254.169.254"))  # type: ignore[operator]
    assert "loopback" in address_refusal(ipaddress.ip_address("::ffff:127.0.0.1"))  # type: ignore[operator]


def fixed(mapping: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    """A resolver whose answers the test controls (no DNS)."""
    def resolve(host: str, _port: int) -> list[str]:
        if host not in mapping:
            raise OSError("no such host")
        return mapping[host]
    return resolve


@pytest.mark.parametrize("url", ["http://127.0.0.1:6390/", "http://[::1]/x", "http://169.254.169.254/latest/meta-data",
                                 "http://10.1.2.3/hook", "http://[::ffff:127.0.0.1]:6390/",
                                 "http://2130706433/", "http://0x7f.1/"])
def test_check_refuses_internal_literals_and_odd_spellings(url: str) -> None:
    # 2130706433 and 0x7f.1 are 127.0.0.1 to inet_aton: they are names to the URL parser, so they resolve
    with pytest.raises(WebhookNotAllowed):
        check_webhook_url(url, settings(), resolver=fixed({"2130706433": ["127.0.0.1"], "0x7f.1": ["127.0.0.1"]}))


def test_check_refuses_a_name_with_any_internal_answer() -> None:
    resolver = fixed({"hooks.example.com": ["93.184.216.34", "10.0.0.7"], "good.example.com": ["93.184.216.34"]})
    with pytest.raises(WebhookNotAllowed, match="private"):
        check_webhook_url("https://hooks.example.com/h", settings(), resolver=resolver)
    target = check_webhook_url("https://good.example.com/h", settings(), resolver=resolver)
    assert target.addresses == ("93.184.216.34",) and target.host == "good.example.com" and target.port == 443


def test_check_refuses_unresolvable_and_non_http() -> None:
    with pytest.raises(WebhookNotAllowed, match="does not resolve"):
        check_webhook_url("https://nowhere.invalid/h", settings(), resolver=fixed({}))
    for url in ("ftp://93.184.216.34/", "file:///etc/passwd", "gopher://127.0.0.1:6390/_INFO", "not a url"):
        with pytest.raises(WebhookNotAllowed):
            check_webhook_url(url, settings(), resolver=fixed({}))


def test_production_requires_https_even_for_allowed_hosts() -> None:
    prod = settings(environment="production", webhook_allowed_hosts=["127.0.0.1"])
    with pytest.raises(WebhookNotAllowed, match="https"):
        check_webhook_url("http://93.184.216.34/h", prod, resolver=fixed({}))
    with pytest.raises(WebhookNotAllowed, match="https"):
        check_webhook_url("http://127.0.0.1/h", prod, resolver=fixed({}))
    assert check_webhook_url("https://127.0.0.1/h", prod, resolver=fixed({})).allow_listed


def test_allow_list_matches_what_the_url_says() -> None:
    assert host_allowed("Hooks.Internal.", ["hooks.internal"])
    assert host_allowed("10.1.2.3", ["10.1.0.0/16"])
    assert not host_allowed("10.2.0.1", ["10.1.0.0/16"])
    # a name is not allowed because it resolves into an allowed network: the list speaks about the URL
    assert not host_allowed("localhost", ["127.0.0.0/8"])
    s = settings(webhook_allowed_hosts=["127.0.0.1"])
    assert check_webhook_url("http://127.0.0.1:9/h", s, resolver=fixed({})).allow_listed
    with pytest.raises(WebhookNotAllowed, match="loopback"):
        check_webhook_url("http://localhost:9/h", s, resolver=fixed({"localhost": ["127.0.0.1"]}))


def test_allowed_hosts_setting_reads_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAIMLENS_WEBHOOK_ALLOWED_HOSTS", "127.0.0.1, hooks.internal ,")
    assert settings().webhook_allowed_hosts == ["127.0.0.1", "hooks.internal"]


# --- delivery against real local HTTP servers ------------------------------------------------------------

class Receiver:
    """A local HTTP server that records requests and answers with a programmable handler."""

    def __init__(self, answer) -> None:  # type: ignore[no-untyped-def]
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.requests.append((self.path, dict(self.headers), body))
                answer(self)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    made: list[Receiver] = []
    yield made
    for r in made:
        r.close()


def test_delivery_to_a_name_resolving_to_loopback_is_refused_before_connecting(receivers: list[Receiver]) -> None:
    target = Receiver(lambda h: (h.send_response(204), h.end_headers()))
    receivers.append(target)
    rebinding = fixed({"hooks.example.com": ["127.0.0.1"], "localhost": ["127.0.0.1"]})
    for url in (f"http://hooks.example.com:{target.port}/h", f"http://localhost:{target.port}/h"):
        with pytest.raises(WebhookNotAllowed, match="loopback"):
            post_webhook(url, b"{}", {}, settings(webhook_allowed_hosts=["127.0.0.1"]), resolver=rebinding)
    assert target.requests == []


def test_delivery_connects_to_the_checked_address_with_the_original_host(receivers: list[Receiver]) -> None:
    target = Receiver(lambda h: (h.send_response(204), h.end_headers()))
    receivers.append(target)
    s = settings(webhook_allowed_hosts=["hooks.internal"])
    resp = post_webhook(f"http://hooks.internal:{target.port}/hook?x=1", b'{"a":1}',
                        {"Content-Type": "application/json"}, s, resolver=fixed({"hooks.internal": ["127.0.0.1"]}))
    assert resp.status_code == 204
    path, headers, body = target.requests[0]
    assert path == "/hook?x=1" and body == b'{"a":1}' and headers["Host"] == f"hooks.internal:{target.port}"


def test_redirects_are_not_followed(receivers: list[Receiver]) -> None:
    inner = Receiver(lambda h: (h.send_response(204), h.end_headers()))
    receivers.append(inner)

    def redirect(h: BaseHTTPRequestHandler) -> None:
        h.send_response(307)
        h.send_header("Location", f"http://127.0.0.1:{inner.port}/stolen")
        h.end_headers()

    outer = Receiver(redirect)
    receivers.append(outer)
    resp = post_webhook(f"http://127.0.0.1:{outer.port}/h", b"{}", {}, settings(webhook_allowed_hosts=["127.0.0.1"]))
    assert resp.status_code == 307 and len(outer.requests) == 1 and inner.requests == []


def test_response_read_is_bounded(receivers: list[Receiver]) -> None:
    def endless(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(50 * 1024 * 1024))
        h.end_headers()
        try:
            for _ in range(50 * 16):
                h.wfile.write(b"x" * 65536)
        except OSError:
            pass  # the client stopped reading, as it should

    big = Receiver(endless)
    receivers.append(big)
    seen: list[int] = []
    import claimlens.core.webhooks as wh

    original = wh._read_bounded

    def spy(response: httpx.Response, limit: int) -> bytes:
        data = original(response, limit)
        seen.append(len(data))
        return data

    wh._read_bounded = spy
    try:
        resp = post_webhook(f"http://127.0.0.1:{big.port}/h", b"{}", {},
                            settings(webhook_allowed_hosts=["127.0.0.1"], webhook_max_response_bytes=1000))
    finally:
        wh._read_bounded = original
    assert resp.status_code == 200 and seen == [1000]


def test_proxies_from_the_environment_are_ignored(receivers: list[Receiver], monkeypatch: pytest.MonkeyPatch) -> None:
    target = Receiver(lambda h: (h.send_response(204), h.end_headers()))
    receivers.append(target)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    resp = post_webhook(f"http://127.0.0.1:{target.port}/h", b"{}", {}, settings(webhook_allowed_hosts=["127.0.0.1"]))
    assert resp.status_code == 204


@pytest.fixture
def tls_receiver(tmp_path, receivers: list[Receiver]):  # type: ignore[no-untyped-def]
    """A local HTTPS receiver whose certificate names only ``hooks.internal`` (self-signed, used as the CA)."""
    import shutil
    import ssl
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=hooks.internal",
                    "-addext", "subjectAltName=DNS:hooks.internal"], check=True, capture_output=True)
    r = Receiver(lambda h: (h.send_response(204), h.end_headers()))
    receivers.append(r)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(cert), str(key))
    r.server.socket = ctx.wrap_socket(r.server.socket, server_side=True)
    return r, cert


def test_https_is_pinned_to_the_checked_address_with_the_hosts_sni_and_certificate(tls_receiver) -> None:  # type: ignore[no-untyped-def]
    receiver, cert = tls_receiver
    resolver = fixed({"hooks.internal": ["127.0.0.1"], "other.internal": ["127.0.0.1"]})
    s = settings(webhook_allowed_hosts=["hooks.internal", "other.internal"], webhook_ca_bundle=cert,
                 environment="production", s3_secret_key="x")
    resp = post_webhook(f"https://hooks.internal:{receiver.port}/h", b"{}", {}, s, resolver=resolver)
    assert resp.status_code == 204 and receiver.requests[0][1]["Host"] == f"hooks.internal:{receiver.port}"
    # the certificate is checked against the URL's host, not the IP connected to: another name fails
    with pytest.raises(httpx.ConnectError, match="(?i)certificate|hostname"):
        post_webhook(f"https://other.internal:{receiver.port}/h", b"{}", {}, s, resolver=resolver)
    assert len(receiver.requests) == 1


def test_a_name_that_stops_resolving_is_a_transient_failure_at_delivery() -> None:
    # refused at the API (422), but at delivery a DNS hiccup must be retried, not dropped as "not allowed"
    with pytest.raises(WebhookNotAllowed):
        check_webhook_url("https://hooks.example.com/h", settings(), resolver=fixed({}))
    with pytest.raises(httpx.ConnectError, match="does not resolve"):
        post_webhook("https://hooks.example.com/h", b"{}", {}, settings(), resolver=fixed({}))


def test_the_next_checked_address_is_tried_when_one_refuses_the_connection(receivers: list[Receiver]) -> None:
    target = Receiver(lambda h: (h.send_response(204), h.end_headers()))  # listens on 127.0.0.1 only
    receivers.append(target)
    s = settings(webhook_allowed_hosts=["hooks.internal"])
    resp = post_webhook(f"http://hooks.internal:{target.port}/h", b"{}", {}, s,
                        resolver=fixed({"hooks.internal": ["127.0.0.2", "127.0.0.1"]}))
    assert resp.status_code == 204 and len(target.requests) == 1
