"""Webhook and peer URLs reach only public addresses: when set, and on every connection.

``exchange/client/addresses.py``. The resolver is the one thing faked here (a DNS server
that answers what a test wants is not cheap); the connections, receivers and peer banks are
real, on 127.0.0.1.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from exchange.client.addresses import address_allowed
from exchange.federation.services import peer_add, peer_sync
from exchange.models import Delivery, Partner
from exchange.push.services import delivery_run, webhook_secret_issue, webhook_secrets
from tests.admin_forms import post_change_form
from tests.exchange.client.fake_bank import TOKEN, FakeBank, FakeLog, served_bank, signer
from tests.exchange.push.receiver import Receiver
from tests.exchange.push.receiver import serve as serve_receiver

REFUSED = [
    "127.0.0.1", "127.8.9.10", "::1", "0.0.0.0", "::",  # loopback, unspecified
    "10.1.2.3", "172.16.0.1", "192.168.1.1", "100.64.0.1",  # private, shared
    "169.254.169.254", "169.254.1.1", "fe80::1",  # link-local, metadata
    "fd00:ec2::254", "fc00::1", "fd12:3456::1",  # unique-local, AWS metadata
    "100.100.100.200", "192.0.0.192",  # Alibaba and Oracle metadata
    "224.0.0.1", "239.1.2.3", "ff02::1",  # multicast
    "::ffff:127.0.0.1", "::ffff:169.254.169.254",  # IPv4-mapped
    "192.0.2.1", "2001:db8::1", "240.0.0.1",  # documentation, reserved
]  # fmt: skip
PUBLIC = ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "2a00:1450:4001::200e"]
METADATA = ["169.254.169.254", "fd00:ec2::254", "::ffff:169.254.169.254", "100.100.100.200"]


@pytest.mark.parametrize("address", REFUSED)
def test_loopback_private_link_local_metadata_and_multicast_are_refused(address):
    assert not address_allowed(ipaddress.ip_address(address), allow_private=False)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address):
    assert address_allowed(ipaddress.ip_address(address), allow_private=False)


@pytest.mark.parametrize("address", METADATA)
def test_metadata_addresses_are_refused_even_where_private_ones_are_allowed(address):
    assert not address_allowed(ipaddress.ip_address(address), allow_private=True)
    assert address_allowed(ipaddress.ip_address("127.0.0.1"), allow_private=True)


@pytest.fixture
def production(settings: Any) -> None:
    settings.HASHBANK_WEBHOOK_ALLOW_PRIVATE = False


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Names under ``.test`` resolve to what the test puts here (absent: they don't)."""
    answers: dict[str, list[str]] = {}
    lookups: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.endswith(".test"):
            lookups.append(host)
            if host not in answers:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            return [
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port or 0)))
                for address in answers[host]
            ]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    answers["__lookups__"] = lookups  # type: ignore[assignment]
    return answers


def command(name: str, *args: str) -> dict[str, Any]:
    out = StringIO()
    call_command(name, *args, stdout=out)
    return json.loads(out.getvalue())


# --- When the URL is set: commands and admin forms --------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://[::1]:8443/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://[fd00:ec2::254]/",
        "https://10.0.0.7/hook",
        "https://localhost/hook",
        "https://hooks.localhost/hook",
        "https://internal.test/hook",  # resolves to a private address
    ],
)
def test_webhook_commands_refuse_internal_addresses(production, dns, url):
    dns["internal.test"] = ["192.168.10.20"]
    with pytest.raises(CommandError, match="refused"):
        command("partner_create", "Platform SSRF", "--lists", "adult", "--webhook", url)
    assert not Partner.objects.filter(name="Platform SSRF").exists()
    command("partner_create", "Platform ok", "--lists", "adult")
    with pytest.raises(CommandError, match="refused"):
        command("partner_webhook", "Platform ok", "--url", url)
    assert Partner.objects.get(name="Platform ok").webhook_url == ""


@pytest.mark.django_db
def test_a_name_resolving_to_one_private_address_among_public_ones_is_refused(production, dns):
    dns["mixed.test"] = ["93.184.215.14", "127.0.0.1"]
    dns["public.test"] = ["93.184.215.14"]
    command("partner_create", "Platform", "--lists", "adult")
    with pytest.raises(CommandError, match=r"127\.0\.0\.1"):
        command("partner_webhook", "Platform", "--url", "https://mixed.test/hook")
    command("partner_webhook", "Platform", "--url", "https://public.test/hook")
    assert Partner.objects.get(name="Platform").webhook_url == "https://public.test/hook"


@pytest.mark.django_db
def test_peer_add_refuses_internal_addresses(production, dns, tmp_path):
    token = tmp_path / "token"
    token.write_text(TOKEN)
    bank = FakeBank(FakeLog([signer()]))
    for url in ("https://169.254.169.254", "https://127.0.0.1:8443", "https://internal.test"):
        dns["internal.test"] = ["10.20.30.40"]
        with pytest.raises(CommandError, match="refused"):
            command(
                "peer_add", "bank-b", "--base-url", url, "--list", "adult",
                "--token-file", str(token), "--vkey", bank.vkey, "--local-list", "adult",
            )  # fmt: skip


@pytest.mark.django_db
def test_the_admin_forms_refuse_internal_webhook_and_peer_urls(operator, production, dns):
    command("partner_create", "Platform", "--lists", "adult")
    partner = Partner.objects.get(name="Platform")
    url = f"/admin/exchange/partner/{partner.pk}/change/"
    refused = post_change_form(operator, url, webhook_url="https://169.254.169.254/hook")
    assert refused.status_code == 200 and "refused" in refused.content.decode()
    partner.refresh_from_db()
    assert partner.webhook_url == ""

    bank = FakeBank(FakeLog([signer()]))
    refused = post_change_form(
        operator,
        "/admin/exchange/peer/add/",
        name="bank-b",
        base_url="https://10.0.0.8",
        remote_list="adult",
        vkeys=bank.vkey,
        local_list="1",
        token=TOKEN,
    )
    assert refused.status_code == 200 and "refused" in refused.content.decode()


# --- When sending: every connection, so DNS rebinding fails -----------------------------


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    with serve_receiver(r) as url:
        r.url = url  # type: ignore[attr-defined]
        yield r


def hooked_partner(make_partner: Callable[..., Any], receiver: Receiver, url: str) -> Partner:
    partner, secrets = make_partner(("adult",), webhook_url=url)
    receiver.secret = secrets["webhook_secret"]
    return partner


@pytest.mark.django_db
def test_a_webhook_name_that_rebinds_to_loopback_after_the_check_gets_nothing(
    make_partner, make_case, receiver, dns, settings
):
    port = receiver.url.split(":")[2].split("/")[0]  # type: ignore[attr-defined]
    # Set while the name did not resolve (or resolved to a public address)...
    settings.HASHBANK_WEBHOOK_ALLOW_PRIVATE = False
    partner = hooked_partner(make_partner, receiver, f"http://rebind.test:{port}/hook")
    make_case()
    # ... then the name points at the bank's own network.
    dns["rebind.test"] = ["127.0.0.1"]
    delivery = Delivery.objects.get(partner=partner)
    assert delivery_run(delivery_id=delivery.pk) == "failed"
    delivery.refresh_from_db()
    assert "127.0.0.1" in delivery.last_error and "public addresses" in delivery.last_error
    assert receiver.requests == 0


@pytest.mark.django_db
def test_the_checked_address_is_the_one_connected_and_the_request_names_the_host(
    make_partner, make_case, receiver, dns
):
    port = receiver.url.split(":")[2].split("/")[0]  # type: ignore[attr-defined]
    dns["partner.test"] = ["127.0.0.1"]
    seen_hosts: list[str] = []
    handle = receiver.handle

    def record(headers: dict[str, str], body: bytes) -> int:
        seen_hosts.append(headers["host"])
        return handle(headers, body)

    receiver.handle = record  # type: ignore[method-assign]
    partner = hooked_partner(make_partner, receiver, f"http://partner.test:{port}/hook")
    make_case()
    lookups: list[str] = dns["__lookups__"]  # type: ignore[assignment]
    lookups.clear()
    delivery = Delivery.objects.get(partner=partner)
    assert delivery_run(delivery_id=delivery.pk) == "done"
    assert receiver.entries and seen_hosts == [f"partner.test:{port}"]
    assert lookups == ["partner.test"]  # resolved once, for the connection it made


@pytest.fixture
def peer_bank() -> Iterator[FakeBank]:
    with served_bank() as fake:
        yield fake


def fake_peer(url: str, bank: FakeBank) -> Any:
    return peer_add(
        name="bank-b",
        base_url=url,
        remote_list="adult",
        token=TOKEN,
        vkeys=[bank.vkey],
        local_list="minor",
    )


@pytest.mark.django_db
def test_a_peer_that_rebinds_to_loopback_is_not_reached(peer_bank, dns, settings):
    settings.HASHBANK_PEER_ALLOW_HTTP = True
    settings.HASHBANK_WEBHOOK_ALLOW_PRIVATE = False
    port = peer_bank.url.rsplit(":", 1)[1]
    peer = fake_peer(f"http://peer.test:{port}", peer_bank)  # did not resolve: accepted
    dns["peer.test"] = ["127.0.0.1"]
    result = peer_sync(peer_id=peer.pk)
    assert result.status == "error"
    assert "127.0.0.1" in result.message and "public addresses" in result.message


class _Redirector(BaseHTTPRequestHandler):
    target = ""

    def do_GET(self) -> None:
        self.send_response(302)
        self.send_header("Location", self.target + self.path)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.django_db
def test_federation_follows_no_redirect(peer_bank, settings):
    settings.HASHBANK_PEER_ALLOW_HTTP = True
    handler = type("Handler", (_Redirector,), {"target": peer_bank.url})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        peer_bank.log.add("ab" * 32)
        peer = fake_peer(f"http://127.0.0.1:{server.server_address[1]}", peer_bank)
        result = peer_sync(peer_id=peer.pk)
    finally:
        server.shutdown()
        server.server_close()
    assert result.status == "error"
    assert "302" in result.message and "not followed" in result.message
    peer.refresh_from_db()
    assert peer.size == 0


# --- A rotation after a compromise ----------------------------------------------------


@pytest.mark.django_db
def test_a_rotation_can_drop_the_old_secret_at_once(make_partner, receiver, operator):
    partner = hooked_partner(make_partner, receiver, receiver.url)  # type: ignore[attr-defined]
    first = webhook_secrets(partner)
    second = webhook_secret_issue(partner=partner)
    partner.refresh_from_db()
    assert webhook_secrets(partner) == [second, *first]  # the usual overlap
    out = command("partner_webhook", partner.name, "--rotate-secret", "--revoke-previous")
    partner.refresh_from_db()
    assert webhook_secrets(partner) == [out["webhook_secret"]]
    assert "no longer signs" in out["note"]

    page = operator.post(
        "/admin/exchange/partner/",
        {"action": "replace_webhook_secret", "_selected_action": [str(partner.pk)]},
    )
    assert page.status_code == 200
    partner.refresh_from_db()
    (only,) = webhook_secrets(partner)
    assert only in page.content.decode() and only != out["webhook_secret"]


# --- TLS over the checked address still checks the hostname -----------------------------


def _certificate(tmp_path: Any, name: str) -> tuple[str, str]:
    """A self-signed certificate for ``name``: (cert file, key file)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_file), str(key_file)


@pytest.mark.parametrize(("served_name", "ok"), [("hooks.tls.test", True), ("other.test", False)])
def test_https_over_the_checked_address_verifies_the_hostnames_certificate(
    tmp_path, dns, served_name, ok
):
    import ssl

    from exchange.push.services import http_post_within

    cert, key = _certificate(tmp_path, served_name)
    sni: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sock, name, ctx: sni.append(name)  # type: ignore[assignment]
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    dns["hooks.tls.test"] = ["127.0.0.1"]
    url = f"https://hooks.tls.test:{server.server_address[1]}/hook"
    try:
        trusting_the_test_ca = ssl.create_default_context(cafile=cert)
        post = functools.partial(http_post_within, url, b"{}", {}, deadline_s=5, allow_private=True)
        if ok:
            assert post(tls=trusting_the_test_ca) == (204, b"")
        else:
            with pytest.raises(ssl.SSLCertVerificationError):
                post(tls=trusting_the_test_ca)
    finally:
        server.shutdown()
        server.server_close()
    assert sni and sni[0] == "hooks.tls.test"
