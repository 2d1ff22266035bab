"""The HTTP transports beneath the OpenRouter provider: which one a one-shot process gets, and
how the standard-library one ends, fails and cancels.  (The provider's emulator and read tests
run every scenario through both transports.)"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from nanobanana.config import ProviderConfig
from nanobanana.errors import ConnectError, InvalidResponseError
from nanobanana.providers import OpenRouterProvider
from nanobanana.transport import AiohttpTransport, StdlibTransport, one_shot_transport

from ..providers.helpers import OPENROUTER_KEY, call


@pytest.mark.parametrize(
    "env",
    [{"HTTPS_PROXY": "http://proxy:3128"}, {"http_proxy": "http://proxy:3128"}, {"ALL_PROXY": "x"}],
)
def test_a_configured_proxy_means_aiohttp(env: dict[str, str]) -> None:
    assert one_shot_transport({"PATH": "/bin", **env}) is None


@pytest.mark.parametrize("env", [{}, {"NO_PROXY": "*"}, {"HTTPS_PROXY": ""}])
def test_no_proxy_means_the_standard_library(env: dict[str, str]) -> None:
    assert isinstance(one_shot_transport(env), StdlibTransport)


class Server:
    """A raw loopback HTTP server: it answers each request with ``head`` and a 2-byte body, or
    with the head alone when ``withhold`` is set, and notes when the client hangs up."""

    def __init__(self) -> None:
        self.extra_headers = ""
        self.withhold = False
        self.hung_up = asyncio.Event()
        self.url = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(
            next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")).split(
                b":"
            )[1]
        )
        await reader.readexactly(length)
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
            + self.extra_headers.encode()
            + b"\r\n"
        )
        if not self.withhold:
            writer.write(b"{}")
        await writer.drain()
        await reader.read()  # until the client closes
        self.hung_up.set()
        writer.close()


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    srv = Server()
    listener = await asyncio.start_server(srv.handle, "127.0.0.1", 0)
    srv.url = f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}/api/v1"
    yield srv
    listener.close()


def _provider(url: str, transport: str = "stdlib") -> OpenRouterProvider:
    config = ProviderConfig(name="openrouter", api_key=OPENROUTER_KEY, base_url=url)
    chosen = StdlibTransport() if transport == "stdlib" else AiohttpTransport()
    return OpenRouterProvider(config, transport=chosen)


async def test_cancelling_a_call_closes_its_connection_at_once(server: Server) -> None:
    server.withhold = True  # headers sent, body withheld: a read waits in a worker thread
    p = _provider(server.url)
    task = asyncio.create_task(p.generate(call()))
    await asyncio.sleep(0.3)
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(server.hung_up.wait(), 5)  # the server saw the connection go
    assert time.monotonic() - started < 5


async def test_an_unknown_content_encoding_is_a_malformed_answer(server: Server) -> None:
    server.extra_headers = "Content-Encoding: br\r\n"
    with pytest.raises(InvalidResponseError, match="Content-Encoding 'br'") as ei:
        await _provider(server.url).generate(call())
    assert OPENROUTER_KEY not in str(ei.value)


@pytest.mark.parametrize("transport", ["aiohttp", "stdlib"])
@pytest.mark.parametrize("url", ["ftp://127.0.0.1/api/v1", "http://[::1/api/v1"])
async def test_a_url_that_cannot_be_sent_to_is_not_retried(url: str, transport: str) -> None:
    p = _provider(url, transport)
    try:
        with pytest.raises(ConnectError) as ei:
            await p.generate(call())
    finally:
        await p.aclose()
    assert not ei.value.retryable and not ei.value.may_be_billed


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that signs itself, and its key, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "nanobanana test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@pytest.fixture
async def tls_server(tmp_path: Path) -> AsyncIterator[tuple[Server, Path]]:
    cert_file, key_file = _self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    srv = Server()
    listener = await asyncio.start_server(srv.handle, "127.0.0.1", 0, ssl=context)
    srv.url = f"https://127.0.0.1:{listener.sockets[0].getsockname()[1]}/api/v1"
    yield srv, cert_file
    listener.close()


async def test_https_verifies_the_server_certificate(
    tls_server: tuple[Server, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, cert_file = tls_server
    # Not trusted: refused during the handshake, before anything is sent.
    with pytest.raises(ConnectError, match="not sent") as ei:
        await _provider(server.url).generate(call())
    assert not ei.value.may_be_billed and not server.hung_up.is_set()  # no request was read
    # Trusted (OpenSSL reads SSL_CERT_FILE when the context is made): the call goes through
    # and the answer ("{}": no choices) is read and judged.
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
    with pytest.raises(InvalidResponseError):
        await _provider(server.url).generate(call())
    await asyncio.wait_for(server.hung_up.wait(), 5)  # this time the request was served
