"""Which network addresses the bank may send to: webhooks and peer banks (no Django here).

A webhook or peer URL is typed by an operator, but its host is resolved by DNS that someone
else controls. Pointed at the bank's own network (``127.0.0.1``, ``10.0.0.5``, the cloud's
metadata service at ``169.254.169.254``), a POST or GET from the bank becomes a request
forged on the inside (SSRF). So:

* :func:`address_allowed` is the one rule: a public (globally routable, unicast) address, or
  any address but a cloud-metadata one when private addresses are allowed (development and
  tests, where receivers listen on 127.0.0.1).
* :func:`url_check` applies it when a URL is configured (``exchange.push.services`` and
  ``exchange.federation.services``), to give the operator an answer at once.
* :func:`resolve_checked` applies it when sending, which is what counts: each connection
  resolves the host once, checks **every** address it got, and connects to a checked address
  itself, so DNS that answers differently between the check and the connect (rebinding) gains
  nothing. :func:`guarded_session` does this for the partner client's GETs (federation);
  push's deadline-bound POST (``exchange.push.services.http_post_within``) does it on its own
  ``http.client`` connection. The request still names the host: ``Host`` header, TLS SNI
  and certificate check are the hostname's, as usual. Neither uses a proxy (a proxy would
  resolve the name itself, out of the check's reach) nor follows a redirect.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any, Final
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError
from urllib3.util import connection as urllib3_connection

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Cloud instance-metadata services: refused even where private addresses are allowed.
#: AWS, GCP, Azure, DigitalOcean, OpenStack: 169.254.169.254 (IPv6 on AWS: fd00:ec2::254);
#: Alibaba: 100.100.100.200; Oracle: 192.0.0.192.
METADATA_ADDRESSES: Final = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200", "192.0.0.192")
)
#: Names that mean this computer or a metadata service whatever DNS says.
_LOCAL_NAMES: Final = ("localhost", "metadata.google.internal", "metadata")


class AddressRefused(NewConnectionError):
    """A connection to an address :func:`address_allowed` refuses (never attempted)."""


def address_allowed(address: IPAddress, *, allow_private: bool) -> bool:
    """May the bank open a connection to ``address``?

    Refused: loopback, private (RFC 1918), shared (100.64/10), link-local, unique-local
    (fc00::/7), multicast, unspecified, reserved and documentation ranges, i.e. everything
    ``ipaddress`` does not call global, and cloud-metadata addresses. ``allow_private``
    (``HASHBANK_WEBHOOK_ALLOW_PRIVATE``, for development) allows all but the metadata ones.
    An IPv4-mapped IPv6 address (``::ffff:127.0.0.1``) is judged as the IPv4 it carries.
    """
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES:
        return False
    if allow_private:
        return True
    return address.is_global and not address.is_multicast


def _parse(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def _refusal(host: str, address: IPAddress | str) -> str:
    return (
        f"{host} is {address}, a loopback, private, link-local or metadata address: "
        "the bank sends only to public addresses (HASHBANK_WEBHOOK_ALLOW_PRIVATE allows "
        "private ones, for development)"
    )


def resolve_checked(host: str, port: int, *, allow_private: bool) -> list[IPAddress]:
    """Resolve ``host`` once and return its addresses, if every one of them is allowed.

    Raises ``ValueError`` naming the first refused address, ``OSError`` (``socket.gaierror``)
    when the name does not resolve. One refused address refuses the host: a name that
    also resolves to 127.0.0.1 would otherwise win a connection there on a retry.
    """
    literal = _parse(host)
    if literal is not None:
        found = [literal]
    else:
        if _local_name(host) and not allow_private:
            raise ValueError(_refusal(host, "a name for this computer or a metadata service"))
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        found = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
    for address in found:
        if not address_allowed(address, allow_private=allow_private):
            raise ValueError(_refusal(host, address))
    return found


def _local_name(host: str) -> bool:
    name = host.lower().rstrip(".")
    return name in _LOCAL_NAMES or name.endswith(".localhost")


def url_check(url: str, *, allow_private: bool) -> None:
    """Refuse a URL whose host is, or resolves to, an address the bank may not send to.

    Raises ``ValueError`` with a message for the operator. A name that does not resolve
    (yet) passes: it is checked again, and for real, on every connection.
    """
    parts = urlsplit(url.strip())
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise ValueError(f"{url!r} has an invalid port") from None
    try:
        resolve_checked(host, port, allow_private=allow_private)
    except OSError:
        return


class _GuardedHTTPConnection(HTTPConnection):
    """Connect only to an address :func:`resolve_checked` allowed, resolved once, here."""

    allow_private: bool = False

    def _new_conn(self) -> socket.socket:
        try:
            addresses = resolve_checked(self._dns_host, self.port, allow_private=self.allow_private)
        except ValueError as exc:
            raise AddressRefused(self, str(exc)) from None
        except OSError as exc:
            raise NewConnectionError(self, f"Failed to resolve {self.host}: {exc}") from exc
        error: OSError | None = None
        for address in addresses:
            try:
                # An IP literal: create_connection does no DNS lookup of its own.
                return urllib3_connection.create_connection(
                    (str(address), self.port),
                    self.timeout,
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except OSError as exc:
                error = exc
        raise NewConnectionError(
            self, f"Failed to establish a new connection to {self.host}: {error}"
        )


class _GuardedHTTPSConnection(_GuardedHTTPConnection, HTTPSConnection):
    """TLS as usual (SNI and certificate for the hostname), over the checked address."""


def _pools(allow_private: bool) -> dict[str, type[HTTPConnectionPool]]:
    policy = {"allow_private": allow_private}
    http_conn = type("GuardedHTTPConnection", (_GuardedHTTPConnection,), policy)
    https_conn = type("GuardedHTTPSConnection", (_GuardedHTTPSConnection,), policy)
    return {
        "http": type("GuardedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn}),
        "https": type("GuardedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn}),
    }


class GuardedAdapter(HTTPAdapter):
    """A requests transport whose every connection passes :func:`address_allowed`."""

    def __init__(self, *, allow_private: bool, **kwargs: Any) -> None:
        self._guard_pools = _pools(allow_private)
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self._guard_pools

    def proxy_manager_for(self, *args: Any, **kwargs: Any) -> Any:
        raise requests.exceptions.InvalidProxyURL(
            "the bank connects to webhooks and peers directly: a proxy would resolve their "
            "names out of the address check's reach"
        )


def guarded_session(*, allow_private: bool, adapter: HTTPAdapter | None = None) -> requests.Session:
    """A ``requests.Session`` that connects only to allowed addresses, without proxies.

    ``adapter`` (a :class:`GuardedAdapter`, e.g. with a retry policy) replaces the default.
    Callers pass ``allow_redirects=False`` for POSTs and GETs alike.
    """
    session = requests.Session()
    session.trust_env = False  # no *_PROXY, no .netrc
    mounted = adapter or GuardedAdapter(allow_private=allow_private)
    session.mount("https://", mounted)
    session.mount("http://", mounted)
    return session
