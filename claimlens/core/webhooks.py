"""Webhook URLs and their delivery without server-side request forgery (SSRF).

A claim's ``webhook_url`` is chosen by an API client, and the worker POSTs to it from inside the network, so
an unchecked URL would let any adjuster reach Redis on loopback, a database on a private address or the cloud
metadata service at 169.254.169.254. Two checks close that:

* at the API (claim create/update/submit), :func:`check_webhook_url` parses the URL, resolves its host and
  refuses it (422 ``webhook_url_not_allowed``) unless every address is a public unicast address;
* at delivery, :func:`post_webhook` resolves the host again, checks every address, and connects to the very
  address it checked (the URL is rewritten to that IP, with the ``Host`` header and TLS SNI/certificate name
  kept), so a DNS answer that changes between the check and the connection (DNS rebinding) cannot redirect
  the request. Redirects are never followed, proxies from the environment are ignored, the response body is
  read up to a small bound and the timeouts are short.

Hosts in ``CLAIMLENS_WEBHOOK_ALLOWED_HOSTS`` (names as written in the URL, IP literals or CIDR networks that
an IP-literal host falls in) skip the address rules: an internal receiver an operator chose on purpose.
Production (``CLAIMLENS_ENVIRONMENT=production``) requires https, allow-listed or not.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import httpx

from claimlens.config import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

# IPv6 prefixes that carry an IPv4 address an attacker could aim at (besides ::ffff:0:0/96, IPv4-mapped)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")


class WebhookNotAllowed(ValueError):
    """The URL (or an address its host resolves to) may not receive webhooks. ``str()`` is safe to show."""


class WebhookUnresolvable(WebhookNotAllowed):
    """The host did not resolve: refused at the API, but only a transient failure at delivery (DNS hiccup)."""


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, 6to4, NAT64), if any."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64 or ip in _NAT64_LOCAL:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_refusal(ip: IPAddress) -> str | None:
    """Why a webhook may not go to ``ip`` (e.g. ``"loopback"``), or None for a public unicast address.

    ``is_global`` alone is not enough: Python counts IPv4 multicast and IPv4-compatible IPv6 (``::7f00:1``)
    as global, so each category is tested on its own, and on the IPv4 address an IPv6 one embeds.
    """
    inner = embedded_ipv4(ip)
    if inner is not None:
        reason = address_refusal(inner)
        if reason is not None:
            return f"{reason} (inside IPv6 {ip})"
    for reason, flag in (("unspecified", ip.is_unspecified), ("loopback", ip.is_loopback),
                         ("link-local (cloud metadata lives here)", ip.is_link_local),
                         ("multicast", ip.is_multicast), ("private", ip.is_private),
                         ("reserved", ip.is_reserved),
                         ("site-local", isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local)):
        if flag:
            return reason
    if not ip.is_global:
        return "not globally routable"
    return None


def host_allowed(host: str, allowed: Iterable[str]) -> bool:
    """Whether the URL's host is on the allow-list: a name (case-insensitive, exact), an IP literal or a
    CIDR network that the host, when it is an IP literal, falls in. Resolved addresses of a name never
    match a CIDR entry: the list speaks about what the URL says."""
    host = host.lower().rstrip(".")
    literal = _ip_or_none(host)
    for entry in allowed:
        entry = entry.strip().lower().rstrip(".")
        if not entry:
            continue
        if entry == host:
            return True
        if literal is not None:
            try:
                if literal in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
    return False


def _ip_or_none(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for ``host`` (IPv4 and IPv6, TCP)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class WebhookTarget:
    """A checked webhook URL: where to connect (``addresses``, each checked) and what to say (host, port)."""

    url: httpx.URL
    host: str
    port: int
    addresses: tuple[str, ...]
    allow_listed: bool


def check_webhook_url(url: str, settings: Settings, resolver: Resolver = system_resolver) -> WebhookTarget:
    """Parse, resolve and check a webhook URL; raises :class:`WebhookNotAllowed` with a reason.

    Every address the host resolves to must pass :func:`address_refusal` (one private answer among public
    ones is refused too: a name that can point inside is not a safe target), unless the host is allow-listed.
    """
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise WebhookNotAllowed(f"not a valid URL: {exc}") from None
    scheme = parsed.scheme.lower()
    if scheme not in ("http", "https"):
        raise WebhookNotAllowed("the webhook URL must be http or https")
    if settings.environment == "production" and scheme != "https":
        raise WebhookNotAllowed("https is required for webhooks in production")
    host = parsed.host
    if not host:
        raise WebhookNotAllowed("the webhook URL has no host")
    port = parsed.port or (443 if scheme == "https" else 80)
    allow_listed = host_allowed(host, settings.webhook_allowed_hosts)
    literal = _ip_or_none(host)
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            addresses = resolver(host, port)
        except (OSError, UnicodeError) as exc:
            raise WebhookUnresolvable(f"the webhook host {host} does not resolve ({type(exc).__name__})") from None
        if not addresses:
            raise WebhookUnresolvable(f"the webhook host {host} does not resolve")
    if not allow_listed:
        for address in addresses:
            reason = address_refusal(ipaddress.ip_address(address.split("%", 1)[0]))
            if reason is not None:
                raise WebhookNotAllowed(f"the webhook host {host} resolves to a {reason} address; such "
                                        "addresses are only reachable through CLAIMLENS_WEBHOOK_ALLOWED_HOSTS")
    return WebhookTarget(url=parsed, host=host, port=port, addresses=tuple(addresses), allow_listed=allow_listed)


def _pinned_url(target: WebhookTarget, address: str) -> httpx.URL:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return target.url.copy_with(host=str(ip))


def post_webhook(url: str, body: bytes, headers: dict[str, str], settings: Settings,
                 resolver: Resolver = system_resolver) -> httpx.Response:
    """POST ``body`` to a checked webhook URL, connecting only to addresses that were checked.

    Returns the response (its body read up to ``webhook_max_response_bytes`` and then closed), redirects
    included: a 3xx is the receiver's answer, never followed. Raises :class:`WebhookNotAllowed` for a refused
    target, and ``httpx.HTTPError`` for transport failures (each checked address is tried in turn until one
    accepts the connection; a failure after that is not repeated elsewhere, so a receiver gets one POST per
    attempt) and for a host that does not resolve at the moment (the task retries both).
    """
    try:
        target = check_webhook_url(url, settings, resolver)
    except WebhookUnresolvable as exc:
        raise httpx.ConnectError(str(exc)) from None
    default_port = 443 if target.url.scheme == "https" else 80
    host_header = target.host if ":" not in target.host else f"[{target.host}]"
    if target.port != default_port:
        host_header = f"{host_header}:{target.port}"
    timeout = httpx.Timeout(settings.webhook_timeout_seconds,
                            connect=min(settings.webhook_connect_timeout_seconds, settings.webhook_timeout_seconds))
    # TLS: SNI and the certificate's name check use the URL's host, not the pinned IP
    extensions = {"sni_hostname": target.host} if target.url.scheme == "https" else {}
    verify: ssl.SSLContext | bool = True
    if settings.webhook_ca_bundle is not None:
        verify = ssl.create_default_context(cafile=str(settings.webhook_ca_bundle))
    last_error: httpx.HTTPError | None = None
    with httpx.Client(trust_env=False, follow_redirects=False, timeout=timeout, verify=verify) as client:
        for address in target.addresses:
            request = client.build_request("POST", _pinned_url(target, address), content=body,
                                           headers={**headers, "Host": host_header}, extensions=extensions)
            try:
                response = client.send(request, stream=True)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                last_error = exc  # nothing was sent: the next checked address may answer
                continue
            try:
                _read_bounded(response, settings.webhook_max_response_bytes)
            finally:
                response.close()
            return response
    assert last_error is not None
    raise last_error


def _read_bounded(response: httpx.Response, limit: int) -> bytes:
    """At most ``limit`` bytes of the body (a receiver streaming without end cannot hold the worker)."""
    out = bytearray()
    for chunk in response.iter_raw():
        out.extend(chunk[: max(0, limit - len(out))])
        if len(out) >= limit:
            break
    return bytes(out)
