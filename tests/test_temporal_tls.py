"""Temporal over TLS with an API key, configured only through the SDK's environment configuration
(`TEMPORAL_TLS_*`, `TEMPORAL_API_KEY`), as Temporal Cloud or a TLS-fronted cluster needs.

The dev server has no TLS flags, so a TLS-terminating proxy of our own stands in front of it: it
negotiates ALPN `h2` (gRPC needs it), forwards the bytes, and decodes the HTTP/2 request headers
it sees (so the test can show the API key arrives as `authorization: Bearer …`). Certificates are
made here: a CA and a server certificate for `localhost`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import h2.events
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import worker
from t2m.config import Settings
from tests.helpers import asgi_client, free_port
from workflows.client import connect
from workflows.worker_liveness import queue_workers

API_KEY = "t2m-test-api-key-0123456789"


def _cert(
    subject: str, key: Any, issuer: x509.Name | None, issuer_key: Any, ca: bool
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def make_certificates(directory: Path) -> dict[str, Path]:
    ca_key, server_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    ca = _cert("t2m test CA", ca_key, None, ca_key, ca=True)
    server = _cert("localhost", server_key, ca.subject, ca_key, ca=False)
    paths = {
        "ca": directory / "ca.pem",
        "cert": directory / "server.pem",
        "key": directory / "server.key",
    }
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


class TLSProxy:
    """TLS in front, plaintext h2c to `upstream`; records ALPN and the requests' headers."""

    def __init__(self, upstream: str, certs: dict[str, Path]) -> None:
        self.upstream = upstream
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(certs["cert"], certs["key"])
        self.context.set_alpn_protocols(["h2"])
        self.alpn: list[str | None] = []
        self.headers: list[dict[str, str]] = []
        self.port = free_port()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        ssl_object = writer.get_extra_info("ssl_object")
        self.alpn.append(ssl_object.selected_alpn_protocol() if ssl_object else None)
        host, port = self.upstream.rsplit(":", 1)
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        parser: h2.connection.H2Connection | None = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        )
        parser.initiate_connection()

        def observe(data: bytes) -> None:
            nonlocal parser
            if parser is None:
                return
            try:
                for event in parser.receive_data(data):
                    if isinstance(event, h2.events.RequestReceived):
                        self.headers.append(dict(event.headers))  # type: ignore[arg-type]
                    elif isinstance(event, h2.events.DataReceived):
                        parser.acknowledge_received_data(
                            event.flow_controlled_length, event.stream_id
                        )
                parser.data_to_send()  # the parser only listens
            except Exception:
                parser = None  # stop decoding; keep forwarding

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, watch: bool) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await src.read(65536):
                    if watch:
                        observe(data)
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(Exception):
                dst.close()

        await asyncio.gather(pipe(reader, up_writer, True), pipe(up_reader, writer, False))

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[str]:
        server = await asyncio.start_server(self.handle, "127.0.0.1", self.port, ssl=self.context)
        async with server:
            yield f"127.0.0.1:{self.port}"


@pytest.fixture
async def proxy(settings: Settings, tmp_path: Path) -> AsyncIterator[tuple[TLSProxy, str, dict]]:
    certs = make_certificates(tmp_path)
    tls = TLSProxy(settings.temporal_address, certs)
    async with tls.serving() as address:
        yield tls, address, certs


async def test_worker_and_api_reach_temporal_over_tls_with_an_api_key(
    proxy: tuple[TLSProxy, str, dict], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    tls, address, certs = proxy
    monkeypatch.setenv("TEMPORAL_TLS_SERVER_CA_CERT_PATH", str(certs["ca"]))
    monkeypatch.setenv("TEMPORAL_TLS_SERVER_NAME", "localhost")
    monkeypatch.setenv("TEMPORAL_API_KEY", API_KEY)
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(Path(certs["ca"]).parent / "none.toml"))
    through = settings.model_copy(update={"temporal_address": address})

    client = await connect(through)  # what the worker does at start
    workers = worker.build_workers(client, through, queues=["video"])
    async with contextlib.AsyncExitStack() as stack:
        for w in workers:
            await stack.enter_async_context(w)
        async with asgi_client(through) as api:  # the API connects the same way
            ready = await api.get("/readyz")
            assert ready.status_code == 200 and ready.json()["temporal"] == "ok", ready.text
        for _ in range(100):  # the worker's first poll, over TLS, reaches the server
            if (await queue_workers(client, through))["workers_video"] == "ok":
                break
            await asyncio.sleep(0.1)
        assert (await queue_workers(client, through))["workers_video"] == "ok"
    assert tls.alpn and set(tls.alpn) == {"h2"}, tls.alpn  # gRPC's ALPN through the proxy
    methods = {h.get(":path", "") for h in tls.headers}
    assert any(m.endswith("/PollWorkflowTaskQueue") for m in methods), methods
    assert {h.get("authorization") for h in tls.headers} == {f"Bearer {API_KEY}"}


async def test_without_the_ca_the_proxy_certificate_is_refused(
    proxy: tuple[TLSProxy, str, dict], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The TLS above is real: a client that does not trust the test CA cannot connect."""
    _, address, certs = proxy
    monkeypatch.setenv("TEMPORAL_TLS", "true")
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(Path(certs["ca"]).parent / "none.toml"))
    with pytest.raises(RuntimeError, match="(?i)connect|certificate|tls|transport"):
        await asyncio.wait_for(
            connect(settings.model_copy(update={"temporal_address": address})), 20
        )
