"""Keeper URLs: which announced URLs a reader's client may contact, and how paths are joined.

Any account can announce any URL on chain, so a URL is checked before it is contacted:

* scheme ``http`` or ``https``, a host, and no user info, query or fragment (a ``?`` or ``#``
  would let an announcer aim the request at another path, such as a Kubo API command);
* no loopback, private, shared (CGNAT), link-local, multicast, reserved or unspecified address
  (nor an IPv6 address embedding one: mapped, 6to4, Teredo), by IP literal,
  by ``localhost``, or by what the name resolves to, unless private keepers are allowed.

Private keepers are allowed on the local development chain (id 31337) and wherever the
environment says ``MEDVAULT_ALLOW_PRIVATE_KEEPERS=1``; ``=0`` forbids them even there.
Paths are joined with ``httpx.URL.join``, never by string concatenation.
"""

from __future__ import annotations

import ipaddress
import os
import socket

import httpx

__all__ = ["ALLOW_PRIVATE_ENV", "InvalidKeeperUrl", "allow_private_keepers", "check_keeper_url", "join_keeper_url"]

ALLOW_PRIVATE_ENV = "MEDVAULT_ALLOW_PRIVATE_KEEPERS"
DEV_CHAIN_ID = 31337


class InvalidKeeperUrl(ValueError):
    """An announced keeper URL that a client will not contact, and why."""


def allow_private_keepers(chain_id: int) -> bool:
    """Whether keepers on loopback or private addresses may be contacted (see the module docstring)."""
    setting = os.environ.get(ALLOW_PRIVATE_ENV, "").strip().lower()
    if setting in ("1", "true", "yes", "on"):
        return True
    if setting in ("0", "false", "no", "off"):
        return False
    return chain_id == DEV_CHAIN_ID


def check_keeper_url(url: str, *, allow_private: bool) -> httpx.URL:
    """The parsed ``url`` if a client may contact it; else InvalidKeeperUrl saying why."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise InvalidKeeperUrl(f"{url!r} is not a URL ({exc})") from None
    if parsed.scheme not in ("http", "https"):
        raise InvalidKeeperUrl(f"{url!r}: only http and https keeper URLs are contacted")
    if not parsed.host:
        raise InvalidKeeperUrl(f"{url!r} names no host")
    if parsed.userinfo:
        raise InvalidKeeperUrl(f"{url!r} carries user info")
    if parsed.query or "?" in url:
        raise InvalidKeeperUrl(f"{url!r} carries a query")
    if parsed.fragment or "#" in url:
        raise InvalidKeeperUrl(f"{url!r} carries a fragment")
    if not allow_private:
        for address in _addresses(parsed.host):
            if _is_private(address):
                raise InvalidKeeperUrl(
                    f"{url!r} points at {address}, a loopback, private or link-local address "
                    f"(allowed only with {ALLOW_PRIVATE_ENV}=1)"
                )
    return parsed


def join_keeper_url(base: httpx.URL, path: str) -> httpx.URL:
    """``path`` (relative, such as ``v1/key-shares``) under ``base``'s path."""
    folder = base.path if base.path.endswith("/") else base.path + "/"
    return base.copy_with(path=folder).join(path.lstrip("/"))


def _addresses(host: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    if host.lower() == "localhost" or host.lower().endswith(".localhost"):
        return [ipaddress.ip_address("127.0.0.1")]
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise InvalidKeeperUrl(f"the keeper host {host!r} does not resolve ({exc})") from None
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


def _is_private(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Anything but a globally routable unicast address; an IPv6 address embedding an IPv4 one
    (mapped, 6to4, Teredo) is judged by the IPv4 address too."""
    embedded: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        embedded += [v4 for v4 in (address.ipv4_mapped, address.sixtofour) if v4 is not None]
        if address.teredo is not None:
            embedded += list(address.teredo)
    return any(
        not a.is_global or a.is_loopback or a.is_multicast or a.is_reserved or a.is_unspecified for a in embedded
    )
