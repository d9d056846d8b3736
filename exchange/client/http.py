"""``BankClient``: the partner pull API over HTTP (what it serves: ``docs/LOG_FORMAT.md`` 5-6).

GETs only, all idempotent, so every transient failure is retried, by one urllib3 ``Retry``
policy: connection errors, timeouts, HTTP 429/500/502/503/504 and answers that break off in
their body, waiting the exponential backoff or the server's ``Retry-After``, both capped.
Answers are read in chunks up to a cap, so a broken or hostile server cannot make the client
hold more than ``MAX_PAGE_BYTES``. Nothing here verifies what was served: see
:mod:`exchange.client.verify`.

Redirects are not followed, by the CLI or by federation: the API lives at one base URL, a
3xx is reported with its ``Location`` so the operator fixes ``--base-url``, and a bank's
federation cannot be bounced to an address it would not connect to (with ``allow_private``
set, every connection also passes :mod:`exchange.client.addresses`).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import queue
import threading
from collections.abc import Generator
from typing import Any, Final
from urllib.parse import quote, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import InvalidHeader, MaxRetryError, ProtocolError
from urllib3.util.retry import Retry

from exchange.client import PROG, VERSION
from exchange.client.addresses import GuardedAdapter, guarded_session
from exchange.client.errors import AuthError, ConfigError, MalformedResponse, NotFound, ServerError
from exchange.client.wire import short, unb64
from hashbank import tlog

API_PREFIX: Final = "/exchange/v1"
DEFAULT_TIMEOUT: Final = 30.0
DEFAULT_RETRIES: Final = 3
#: Entries per page: the most the server serves, and what a client asks for by default.
MAX_PAGE_SIZE: Final = 10_000
DEFAULT_PAGE_SIZE: Final = 10_000
DEFAULT_BACKOFF: Final = 0.5
#: Largest response body read (a page of 10,000 entries is a few MB at most).
MAX_PAGE_BYTES: Final = 64 << 20
MAX_SMALL_BYTES: Final = 2 << 20
#: How much of an error answer is read, to quote it.
MAX_ERROR_BYTES: Final = 4096
RETRY_STATUSES: Final = frozenset({429, 500, 502, 503, 504})
#: Longest wait between two attempts, whatever the backoff or ``Retry-After`` says.
MAX_RETRY_AFTER: Final = 30


def is_loopback(host: str | None) -> bool:
    """Is ``host`` this computer (``localhost``, ``*.localhost``, 127.0.0.0/8, ``::1``)?"""
    if not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def normalize_base_url(url: str, *, allow_http: bool = False) -> str:
    """The server's base URL without a trailing slash (``https://bank.example.org``).

    Plain ``http://`` is refused unless the host is this computer or ``allow_http`` is set:
    the data is signed, but the bearer token would travel in clear.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"--base-url needs an http(s) URL such as https://bank.example.org, not {url!r}"
        )
    if parts.query or parts.fragment:
        raise ConfigError(f"--base-url must not have a query or fragment: {url!r}")
    if parts.scheme != "https" and not allow_http and not is_loopback(parts.hostname):
        raise ConfigError(
            f"{url} is not https: the token would travel unencrypted. Use https, or "
            "--allow-http if you really mean it."
        )
    path = parts.path.rstrip("/")
    if path.endswith(API_PREFIX):
        path = path[: -len(API_PREFIX)]
    return f"{parts.scheme}://{parts.netloc}{path}"


class _Retry(Retry):
    # urllib3 also retries a 413 that carries Retry-After; this client retries exactly
    # RETRY_STATUSES, with or without the header.
    RETRY_AFTER_STATUS_CODES = RETRY_STATUSES

    def parse_retry_after(self, retry_after: str) -> float:
        # A Retry-After that is neither seconds nor an HTTP date means the backoff applies
        # (0 = no wait asked); urllib3 would give up on the request instead.
        try:
            return super().parse_retry_after(retry_after)
        except InvalidHeader:
            return 0


def retry_policy(*, retries: int, backoff: float, max_wait: int = MAX_RETRY_AFTER) -> Retry:
    """``retries`` more attempts of a GET, ``backoff * 2**(n - 1)`` s or ``Retry-After`` apart.

    Both waits are capped at ``max_wait`` seconds. Once the retries are spent on a status,
    the last answer is returned (and reported with its body); on a network error, it raises.
    """
    return _Retry(
        total=retries,
        allowed_methods=frozenset({"GET"}),
        status_forcelist=RETRY_STATUSES,
        backoff_factor=backoff,
        backoff_max=max_wait,
        retry_after_max=max_wait,
        respect_retry_after_header=True,
        raise_on_status=False,
    )


_DONE: Final = object()


class _BrokenBody(Exception):
    """The answer's body broke off (connection reset or timed out while it was read)."""


class BankClient:
    """The partner pull API of one bank (``base_url`` as ``normalize_base_url`` returns it)."""

    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        backoff: float = DEFAULT_BACKOFF,
        max_retry_after: int = MAX_RETRY_AFTER,
        allow_private: bool | None = None,
    ) -> None:
        """``allow_private``: None connects anywhere (a partner's CLI, on its own network);
        True or False connects only where ``addresses.address_allowed`` says (a bank
        federating: ``HASHBANK_WEBHOOK_ALLOW_PRIVATE``), ignoring proxy variables."""
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self._retry = retry_policy(retries=retries, backoff=backoff, max_wait=max_retry_after)
        if allow_private is None:
            self.session = requests.Session()
            adapter = HTTPAdapter(max_retries=self._retry)
            self.session.mount("https://", adapter)
            self.session.mount("http://", adapter)
        else:
            self.session = guarded_session(
                allow_private=allow_private,
                adapter=GuardedAdapter(allow_private=allow_private, max_retries=self._retry),
            )
        self._headers = {"User-Agent": f"{PROG}/{VERSION}"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> BankClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _list_url(self, slug: str, tail: str) -> str:
        return f"{self.base_url}{API_PREFIX}/lists/{quote(slug, safe='')}/{tail}"

    def get(
        self,
        url: str,
        params: dict[str, int] | None = None,
        *,
        max_bytes: int = MAX_SMALL_BYTES,
        not_found: str = "not found",
        auth: bool = True,
    ) -> bytes:
        """GET ``url`` and return the body of a 200 answer (transient failures are retried)."""
        headers = self._headers if auth else {"User-Agent": self._headers["User-Agent"]}
        shown = url + ("?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else "")
        # urllib3 retries a request until its answer's headers arrive; an answer that breaks
        # off in its body is retried here, with the same policy.
        retry = self._retry
        while True:
            try:
                status, body, location = self._get_once(url, params, headers, max_bytes, shown)
                break
            except _BrokenBody as exc:
                try:
                    retry = retry.increment("GET", url, error=ProtocolError(str(exc)))
                except MaxRetryError:
                    raise ServerError(
                        f"GET {shown}: the answer broke off {self.retries + 1} time(s): {exc}",
                        url=shown,
                    ) from None
                retry.sleep()
        if status == 200:
            return body
        excerpt = body.decode("utf-8", "replace").strip()[:300]
        if status == 401:
            raise AuthError(
                f"the server refused the token (HTTP 401 from {shown}): check --token-file "
                "or HASHBANK_TOKEN",
                status=status,
                url=shown,
            )
        if status == 403:
            raise AuthError(
                f"the token is not allowed to read this (HTTP 403 from {shown}): {excerpt}",
                status=status,
                url=shown,
            )
        if status == 404:
            raise NotFound(f"{not_found} (HTTP 404 from {shown})", status=status, url=shown)
        if 300 <= status < 400:
            raise ServerError(
                f"GET {shown}: HTTP {status}, a redirect to {location or '(no Location)'}, "
                "not followed: set the base URL to where the API really is",
                status=status,
                url=shown,
            )
        raise ServerError(
            f"GET {shown}: HTTP {status}" + (f": {excerpt}" if excerpt else ""),
            status=status,
            url=shown,
        )

    def _get_once(
        self,
        url: str,
        params: dict[str, int] | None,
        headers: dict[str, str],
        max_bytes: int,
        shown: str,
    ) -> tuple[int, bytes, str]:
        """One GET (retried by urllib3 until its headers arrive): ``(status, body, Location)``.

        The body of an error answer is read up to ``MAX_ERROR_BYTES``, to quote it.
        """
        try:
            resp = self.session.get(
                url,
                params=params,
                headers=headers,
                timeout=self.timeout,
                stream=True,
                allow_redirects=False,
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise ServerError(
                f"GET {shown} failed after {self.retries + 1} attempt(s): "
                f"{type(exc).__name__}: {exc}",
                url=shown,
            ) from None
        except requests.RequestException as exc:
            raise ServerError(f"GET {shown} failed: {exc}", url=shown) from None
        with resp:
            status = resp.status_code
            location = resp.headers.get("Location", "")[:300]
            try:
                if status == 200:
                    return status, _read(resp, max_bytes, shown), location
                return status, _read(resp, MAX_ERROR_BYTES, shown, truncate=True), location
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
                raise _BrokenBody(f"{type(exc).__name__}: {exc}") from None
            except requests.RequestException as exc:
                raise ServerError(f"GET {shown} failed: {exc}", url=shown) from None

    def checkpoint(self, slug: str) -> bytes:
        """The newest signed note of the list (raw bytes, not verified)."""
        return self.get(
            self._list_url(slug, "checkpoint"),
            not_found=f"list {slug!r} is unknown or not granted to this token",
        )

    def entries(self, slug: str, start: int, limit: int) -> dict[str, Any]:
        """One page of entries from ``start`` (the JSON object, not verified)."""
        url = self._list_url(slug, "entries")
        body = self.get(
            url,
            {"start": start, "limit": limit},
            max_bytes=MAX_PAGE_BYTES,
            not_found=f"list {slug!r} is unknown or not granted to this token",
        )
        return _json(body, f"{url}?start={start}&limit={limit}")

    def pages(
        self, slug: str, start: int, end: int, page_size: int, prefetch: int
    ) -> Generator[tuple[int, dict[str, Any]]]:
        """Yield ``(start, page)`` for the entries [start, end), page after page.

        A page that holds no entry list ends the iteration (the caller reports it). With
        ``prefetch > 0`` a background thread downloads and decodes the next pages while the
        caller processes the current one, holding at most ``prefetch`` pages; closing the
        iterator stops it.
        """

        def fetch(pos: int) -> dict[str, Any]:
            return self.entries(slug, pos, min(page_size, end - pos))

        def next_start(pos: int, page: dict[str, Any]) -> int | None:
            entries = page.get("entries")
            if not isinstance(entries, list) or not entries:
                return None
            return pos + len(entries)

        if prefetch <= 0:
            pos: int | None = start
            while pos is not None and pos < end:
                page = fetch(pos)
                yield pos, page
                pos = next_start(pos, page)
            return

        q: queue.Queue[Any] = queue.Queue(maxsize=prefetch)
        stop = threading.Event()

        def put(item: Any) -> bool:
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def produce() -> None:
            pos: int | None = start
            try:
                while pos is not None and pos < end and not stop.is_set():
                    page = fetch(pos)
                    if not put((pos, page)):
                        return
                    pos = next_start(pos, page)
            except BaseException as exc:  # handed to the consumer
                put(exc)
                return
            put(_DONE)

        thread = threading.Thread(target=produce, name=f"{PROG}-download", daemon=True)
        thread.start()
        try:
            while True:
                item = q.get()
                if item is _DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            with contextlib.suppress(queue.Empty):
                while True:
                    q.get_nowait()
            thread.join(timeout=5)

    def consistency(self, slug: str, old: int, new: int) -> list[bytes]:
        """The consistency proof from size ``old`` to ``new`` (not verified)."""
        url = self._list_url(slug, "proof/consistency")
        shown = f"{url}?old={old}&new={new}"
        data = _json(
            self.get(url, {"old": old, "new": new}, not_found=f"no consistency proof for {slug!r}"),
            shown,
        )
        return _proof(data, shown, {"old": old, "new": new})

    def inclusion(self, slug: str, index: int, size: int) -> tuple[bytes, list[bytes]]:
        """``(leaf_hash, proof)`` for entry ``index`` in the tree of ``size`` (not verified)."""
        url = self._list_url(slug, "proof/inclusion")
        shown = f"{url}?index={index}&size={size}"
        data = _json(
            self.get(url, {"index": index, "size": size}, not_found=f"no proof for {slug!r}"),
            shown,
        )
        proof = _proof(data, shown, {"index": index, "size": size})
        lh = unb64(data.get("leaf_hash"))
        if lh is None or len(lh) != tlog.HASH_SIZE:
            raise MalformedResponse(f"GET {shown}: leaf_hash is not base64 of 32 bytes")
        return lh, proof

    def keys(self) -> list[dict[str, Any]]:
        """The published verifier keys (public endpoint; not a trust anchor by itself)."""
        url = f"{self.base_url}{API_PREFIX}/keys"
        data = _json(self.get(url, not_found="no keys endpoint: check --base-url", auth=False), url)
        keys = data.get("keys")
        if not isinstance(keys, list) or not all(isinstance(k, dict) for k in keys):
            raise MalformedResponse(f"GET {url}: keys is not a list of objects")
        return keys


def _read(resp: requests.Response, limit: int, url: str, *, truncate: bool = False) -> bytes:
    buf = bytearray()
    for chunk in resp.iter_content(1 << 20):
        buf += chunk
        if len(buf) > limit:
            if truncate:
                return bytes(buf[:limit])
            raise MalformedResponse(f"the answer to GET {url} is larger than {limit} bytes")
    return bytes(buf)


def _json(body: bytes, url: str) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise MalformedResponse(f"GET {url}: the answer is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise MalformedResponse(f"GET {url}: the answer is not a JSON object")
    return data


def _proof(data: dict[str, Any], url: str, echo: dict[str, int]) -> list[bytes]:
    for key, want in echo.items():
        if data.get(key) != want:
            raise MalformedResponse(f"GET {url}: {key} is {short(data.get(key))}, not {want}")
    raw = data.get("proof")
    if not isinstance(raw, list):
        raise MalformedResponse(f"GET {url}: proof is not a list")
    proof: list[bytes] = []
    for item in raw:
        h = unb64(item)
        if h is None or len(h) != tlog.HASH_SIZE:
            raise MalformedResponse(f"GET {url}: proof hashes must be base64 of 32 bytes")
        proof.append(h)
    return proof
