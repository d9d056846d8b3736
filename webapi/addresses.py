"""The one rule for a request's client address, which the rate limits count by.

Behind ``HASHBANK_TRUSTED_PROXIES`` proxies, each of which appends the address
it received the request from to ``X-Forwarded-For``, the client is the Nth
entry from the right. Everything to its left was written by the client itself
and may be forged, so it is never read. With no proxies the header is ignored
and the client is ``REMOTE_ADDR``.

A header that is missing, too short or does not hold an IP address where the
client should be falls back to ``REMOTE_ADDR`` (the nearest proxy): those
requests share one budget, which is stricter, never looser. No address is ever
logged or stored.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest

# The budget of requests whose REMOTE_ADDR is not an address either (a Unix
# socket between proxy and server): one shared bucket rather than an error.
UNKNOWN_ADDRESS = "0.0.0.0"  # noqa: S104 (a rate-limit key, not a bind address)


def client_address(request: HttpRequest) -> str:
    """The client's IP address in canonical form (django-ratelimit masks IPv6 to /64)."""
    proxies: int = settings.HASHBANK_TRUSTED_PROXIES
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if proxies and forwarded is not None:
        entries = forwarded.split(",")
        if len(entries) >= proxies:
            address = _address(entries[-proxies])
            if address is not None:
                return address
    return _address(request.META.get("REMOTE_ADDR", "")) or UNKNOWN_ADDRESS


def _address(text: str) -> str | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        # An IPv4 client seen through a dual-stack proxy: counted as itself,
        # not inside the /64 that holds every IPv4 address.
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        # Drop a zone ("fe80::1%eth0"): it names the proxy's interface, not the client.
        return str(ipaddress.IPv6Address(address.packed))
    return str(address)
