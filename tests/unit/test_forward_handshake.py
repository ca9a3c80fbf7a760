"""The Forward protocol's shared-key handshake (HELO, PING, PONG), checked against the spec.

Every digest is recomputed here from the spec's text, independently of
`backend.forward.handshake`: `hex(sha512(salt + hostname + nonce + shared_key))`, with the
nonce and salts as bytes and the hostname and key as UTF-8. Then the server and AckSender
meet over loopback, with and without TLS, with the right key and with a wrong one.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import ipaddress
import logging
import ssl
from pathlib import Path
from typing import Any

import msgpack
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from backend.bus import Delivery
from backend.forward import handshake
from backend.forward.handshake import HandshakeError
from backend.forward.protocol import Frame, StreamError, ack_for
from backend.forward.sender import AckSender
from backend.forward.server import ForwardServer
from backend.retry import Backoff

KEY = "s3cret-shared-key"
NONCE = bytes(range(16))
SALT = bytes(range(100, 116))
CLIENT = "node-01.example"
SERVER = "accumulator-ü"  # not ASCII: hostnames are hashed as UTF-8


def spec_digest(salt: bytes, hostname: str, nonce: bytes, key: str) -> str:
    """The spec's `sha512_hex(shared_key_salt + hostname + nonce + shared_key)`."""
    return hashlib.sha512(salt + hostname.encode("utf-8") + nonce + key.encode("utf-8")).hexdigest()


def unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False)


def spec_ping(
    key: str = KEY, nonce: bytes = NONCE, salt: bytes | str = SALT, hostname: str = CLIENT
) -> list[Any]:
    salt_bytes = salt.encode() if isinstance(salt, str) else salt
    return ["PING", hostname, salt, spec_digest(salt_bytes, hostname, nonce, key), "", ""]


def swapped(message: list[Any], index: int, value: Any) -> list[Any]:
    """`message` with item `index` replaced: a proof made for other inputs than those sent."""
    changed = list(message)
    changed[index] = value
    return changed


def wire(message: list[Any]) -> Any:
    """`message` as the server reads it off the wire (bin as bytes, str as str)."""
    return unpack(msgpack.packb(message, use_bin_type=True))


# The digest and the server's side.


def test_the_digest_is_the_specs_sha512_over_salt_hostname_nonce_and_key() -> None:
    assert handshake.shared_key_digest(SALT, SERVER, NONCE, KEY) == spec_digest(
        SALT, SERVER, NONCE, KEY
    )
    # Known answer for the empty inputs: sha512 of nothing.
    assert handshake.shared_key_digest(b"", "", b"", "") == hashlib.sha512(b"").hexdigest()


def test_helo_carries_a_binary_nonce_no_user_auth_and_keepalive() -> None:
    data = handshake.helo(NONCE)
    # 0xc4 0x10: msgpack bin 8 of 16 bytes, the nonce sent as binary, not as a string.
    assert b"\xc4\x10" + NONCE in data
    assert unpack(data) == ["HELO", {"nonce": NONCE, "auth": "", "keepalive": True}]
    assert handshake.new_nonce() != handshake.new_nonce()
    assert len(handshake.new_nonce()) == 16


def test_a_ping_with_the_key_passes_and_the_pong_proves_the_key_over_the_clients_salt() -> None:
    ping = handshake.check_ping(wire(spec_ping()), NONCE, KEY)
    assert (ping.hostname, ping.salt) == (CLIENT, SALT)
    pong = unpack(handshake.pong(ping, NONCE, SERVER, KEY))
    assert pong == ["PONG", True, "", SERVER, spec_digest(SALT, SERVER, NONCE, KEY)]


def test_a_salt_sent_as_a_hex_string_like_fluentds_out_forward_is_hashed_as_its_bytes() -> None:
    salt = "0123456789abcdef0123456789abcdef"
    ping = handshake.check_ping(wire(spec_ping(salt=salt)), NONCE, KEY)
    assert ping.salt == salt.encode()


@pytest.mark.parametrize(
    "message",
    [
        spec_ping(key="not-the-key"),
        spec_ping(nonce=b"another nonce 16"),  # a replayed PING, from another connection
        swapped(spec_ping(hostname="someone-else"), 1, CLIENT),
        swapped(spec_ping(salt=b"x" * 16), 2, SALT),
        swapped(spec_ping(), 3, spec_ping()[3].upper()),
    ],
    ids=["wrong key", "wrong nonce", "hostname swapped", "salt swapped", "upper-case digest"],
)
def test_a_ping_without_the_right_proof_is_a_key_mismatch(message: list[Any]) -> None:
    with pytest.raises(HandshakeError) as caught:
        handshake.check_ping(wire(message), NONCE, KEY)
    assert caught.value.reason == "shared_key mismatch"
    assert KEY not in str(caught.value)


@pytest.mark.parametrize(
    "message",
    [
        {"PING": CLIENT},
        "PING",
        spec_ping()[:5],
        [*spec_ping(), "extra"],
        ["PONG", *spec_ping()[1:]],
        ["PING", 42, *spec_ping()[2:]],
        ["PING", CLIENT, 42, *spec_ping()[3:]],
        ["PING", CLIENT, SALT, None, "", ""],
        ["logdeck.log", 1, {"message_type": "LOG"}],  # a client that skipped the handshake
    ],
    ids=[
        "map",
        "string",
        "too short",
        "too long",
        "wrong type",
        "hostname not a string",
        "salt not bytes",
        "no digest",
        "a data frame",
    ],
)
def test_a_malformed_ping_is_invalid(message: Any) -> None:
    with pytest.raises(HandshakeError) as caught:
        handshake.check_ping(wire(message), NONCE, KEY)
    assert caught.value.reason == "invalid ping message"


def test_a_refusing_pong_has_fluentds_shape() -> None:
    assert unpack(handshake.pong_refused("shared_key mismatch")) == [
        "PONG",
        False,
        "shared_key mismatch",
        "",
        "",
    ]


# The client's side.


def test_the_client_answers_helo_with_the_specs_ping() -> None:
    helo = handshake.parse_helo(wire(["HELO", {"nonce": NONCE, "auth": "", "keepalive": True}]))
    assert (helo.nonce, helo.auth, helo.keepalive) == (NONCE, b"", True)
    data = handshake.ping(helo, CLIENT, KEY, SALT)
    assert unpack(data) == ["PING", CLIENT, SALT, spec_digest(SALT, CLIENT, NONCE, KEY), "", ""]
    assert b"\xc4\x10" + SALT in data  # the salt goes out as binary
    assert len(handshake.new_salt()) == 16


@pytest.mark.parametrize("message", [["PING"], ["HELO", {"auth": ""}], "HELO", None])
def test_a_malformed_helo_is_refused(message: Any) -> None:
    with pytest.raises(HandshakeError, match="invalid HELO"):
        handshake.parse_helo(wire(message) if isinstance(message, list) else message)


def test_the_client_accepts_a_pong_that_proves_the_key() -> None:
    pong = ["PONG", True, "", SERVER, spec_digest(SALT, SERVER, NONCE, KEY)]
    assert handshake.check_pong(wire(pong), SALT, NONCE, KEY) == SERVER


@pytest.mark.parametrize(
    ("pong", "reason"),
    [
        (["PONG", False, "shared_key mismatch", "", ""], "refused by the server: shared_key"),
        (["PONG", False, "", "", ""], "no reason given"),
        (["PONG", 1, "", SERVER, spec_digest(SALT, SERVER, NONCE, KEY)], "refused by the server"),
        (["PONG", True, "", SERVER, spec_digest(SALT, SERVER, NONCE, "guess")], "does not know"),
        (["PONG", True, "", SERVER, spec_digest(b"other salt", SERVER, NONCE, KEY)], "not know"),
        (["PONG", True, "", "other", spec_digest(SALT, SERVER, NONCE, KEY)], "does not know"),
        (["PONG", True, "", SERVER, ""], "does not know"),
        (["PONG", True, ""], "invalid PONG"),
        (["HELO", {"nonce": NONCE}], "invalid PONG"),
        (["PONG", True, "", None, ""], "invalid PONG"),
    ],
    ids=[
        "refused",
        "refused without a reason",
        "result not a bool",
        "server without the key",
        "digest over another salt",
        "hostname swapped",
        "empty digest",
        "too short",
        "not a PONG",
        "hostname not a string",
    ],
)
def test_the_client_refuses_a_pong_that_does_not_accept_it_or_prove_the_key(
    pong: list[Any], reason: str
) -> None:
    with pytest.raises(HandshakeError, match=reason):
        handshake.check_pong(wire(pong), SALT, NONCE, KEY)


def test_client_and_server_agree_end_to_end() -> None:
    nonce = handshake.new_nonce()
    helo = handshake.parse_helo(unpack(handshake.helo(nonce)))
    salt = handshake.new_salt()
    ping = handshake.check_ping(unpack(handshake.ping(helo, CLIENT, KEY, salt)), nonce, KEY)
    pong = unpack(handshake.pong(ping, nonce, SERVER, KEY))
    assert handshake.check_pong(pong, salt, nonce, KEY) == SERVER


# User auth: a user's password over the HELO's auth salt, as in_forward's `<user>`.

AUTH_SALT = bytes(range(200, 216))
USERS = {"payments": "pay-pass", "orders": "order-pass"}


def spec_user_ping(username: str, password: str, auth_salt: bytes = AUTH_SALT) -> list[Any]:
    """The spec's PING with `sha512_hex(auth_salt + username + password)`."""
    proof = hashlib.sha512(auth_salt + username.encode() + password.encode()).hexdigest()
    return [*spec_ping()[:4], username, proof]


def test_helo_asks_for_user_auth_with_a_binary_salt() -> None:
    helo = handshake.parse_helo(unpack(handshake.helo(NONCE, AUTH_SALT)))
    assert helo.auth == AUTH_SALT


def test_a_ping_with_a_users_password_names_the_user() -> None:
    message = wire(spec_user_ping("payments", "pay-pass"))
    ping = handshake.check_ping(message, NONCE, KEY, USERS, AUTH_SALT)
    assert ping.username == "payments"


@pytest.mark.parametrize(
    "message",
    [
        spec_user_ping("payments", "order-pass"),
        spec_user_ping("nobody", "pay-pass"),
        spec_user_ping("payments", "pay-pass", auth_salt=bytes(16)),
        spec_ping(),
    ],
    ids=["wrong-password", "unknown-user", "other-salt", "no-user"],
)
def test_a_ping_without_a_users_proof_is_a_user_mismatch(message: list[Any]) -> None:
    with pytest.raises(handshake.HandshakeError) as refused:
        handshake.check_ping(wire(message), NONCE, KEY, USERS, AUTH_SALT)
    assert refused.value.reason == handshake.USER_MISMATCH == "username/password mismatch"
    assert not any(password in str(refused.value) for password in USERS.values())


def test_the_key_is_checked_before_the_user() -> None:
    message = swapped(spec_user_ping("payments", "pay-pass"), 3, "0" * 128)
    with pytest.raises(handshake.HandshakeError) as refused:
        handshake.check_ping(wire(message), NONCE, KEY, USERS, AUTH_SALT)
    assert refused.value.reason == handshake.KEY_MISMATCH


def test_client_and_server_agree_on_user_auth_end_to_end() -> None:
    nonce, auth_salt = handshake.new_nonce(), handshake.new_salt()
    helo = handshake.parse_helo(unpack(handshake.helo(nonce, auth_salt)))
    sent = handshake.ping(helo, CLIENT, KEY, handshake.new_salt(), "orders", "order-pass")
    ping = handshake.check_ping(unpack(sent), nonce, KEY, USERS, auth_salt)
    assert ping.username == "orders"


def test_the_client_sends_no_user_when_the_server_asks_for_none() -> None:
    helo = handshake.parse_helo(unpack(handshake.helo(NONCE)))
    message = unpack(handshake.ping(helo, CLIENT, KEY, SALT, "orders", "order-pass"))
    assert message[4:] == ["", ""]


def test_the_message_buffer_waits_for_a_whole_message_and_keeps_what_follows() -> None:
    ping = msgpack.packb(spec_ping(), use_bin_type=True)
    frame = msgpack.packb(["logdeck.log", 1, {"a": 1}])
    buffer = handshake.MessageBuffer()
    assert not buffer.feed(ping[:10])
    assert not buffer.feed(ping[10:-1])
    assert buffer.feed(ping[-1:] + frame)
    assert buffer.message == wire(spec_ping())
    assert buffer.rest == frame


def test_the_message_buffer_refuses_garbage_and_oversized_messages() -> None:
    with pytest.raises(HandshakeError, match="not msgpack"):
        handshake.MessageBuffer().feed(b"\xc1")
    with pytest.raises(HandshakeError, match="oversized"):
        handshake.MessageBuffer(limit=100).feed(msgpack.packb(["PING", "x" * 200]))
    buffer = handshake.MessageBuffer(limit=100)
    with pytest.raises(HandshakeError, match="oversized"):
        for _ in range(200):
            buffer.feed(b"\x91")  # arrays nested ever deeper, never complete


# The server and AckSender over loopback.


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, and its key, in `folder`."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


class Sink:
    def __init__(self) -> None:
        self.items: list[Frame | StreamError] = []

    async def submit(
        self, items: list[Frame | StreamError], peer: str, access: object = None
    ) -> Delivery:
        self.items += items
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    def records(self) -> list[Any]:
        return [e.record for item in self.items if isinstance(item, Frame) for e in item.entries]


async def serve(sink: Sink, **options: Any) -> ForwardServer:
    server = ForwardServer(sink, "127.0.0.1", 0, shared_key=KEY, hostname=SERVER, **options)
    await server.start()
    return server


async def spec_client(port: int, key: str, context: ssl.SSLContext | None = None) -> list[Any]:
    """HELO in, PING out, and a chunk right behind it: what comes back, until the server
    closes or goes quiet."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    try:
        unpacker = msgpack.Unpacker(raw=False)
        unpacker.feed(await asyncio.wait_for(reader.read(4096), 5))
        [helo] = list(unpacker)
        nonce = helo[1]["nonce"]
        ping = ["PING", CLIENT, SALT, spec_digest(SALT, CLIENT, nonce, key), "", ""]
        frame = ["logdeck.log", 1, {"n": 1}, {"chunk": "c1"}]
        writer.write(msgpack.packb(ping, use_bin_type=True) + msgpack.packb(frame))
        answers: list[Any] = []
        while len(answers) < 2:
            try:
                data = await asyncio.wait_for(reader.read(4096), 1)
            except TimeoutError:
                break
            if not data:
                break
            unpacker.feed(data)
            answers += list(unpacker)
        return [helo, *answers]
    finally:
        writer.close()


async def test_the_server_greets_checks_the_key_and_then_serves_frames_sent_behind_the_ping() -> (
    None
):
    sink = Sink()
    server = await serve(sink)
    try:
        helo, pong, ack = await spec_client(server.port, KEY)
    finally:
        await server.stop()
    assert helo[0] == "HELO" and isinstance(helo[1]["nonce"], bytes)
    assert pong == ["PONG", True, "", SERVER, spec_digest(SALT, SERVER, helo[1]["nonce"], KEY)]
    assert ack == msgpack.unpackb(ack_for("c1"))
    assert sink.records() == [{"n": 1}]
    assert server.handshakes == {"accepted": 1}


async def test_the_server_refuses_a_wrong_key_logs_it_and_serves_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = Sink()
    server = await serve(sink)
    try:
        with caplog.at_level(logging.INFO, "logdeck.forward"):
            _, pong = await spec_client(server.port, "wrong key")
    finally:
        await server.stop()
    assert pong == ["PONG", False, "shared_key mismatch", "", ""]
    assert sink.items == []
    assert server.handshakes == {"shared_key mismatch": 1}
    assert "refusing 127.0.0.1:" in caplog.text and "shared_key mismatch" in caplog.text
    assert KEY not in caplog.text


async def test_a_client_silent_after_helo_is_dropped_at_the_idle_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = await serve(Sink(), idle_timeout=0.3)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        assert unpack(await asyncio.wait_for(reader.read(4096), 5))[0] == "HELO"
        assert await asyncio.wait_for(reader.read(4096), 5) == b""  # closed, no PONG
        writer.close()
    finally:
        await server.stop()
    assert server.handshakes == {"handshake timed out": 1}
    assert "--idle-timeout" in caplog.text


async def test_ack_sender_with_the_key_over_tls_delivers_everything(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    sink = Sink()
    server = await serve(sink, ssl=server_context)
    client = AckSender(
        "t",
        port=server.port,
        batch_size=10,
        shared_key=KEY,
        hostname=CLIENT,
        ssl=ssl.create_default_context(cafile=str(cert)),
    )
    try:
        for n in range(95):
            await client.emit("log", {"n": n})
        await asyncio.wait_for(client.close(), 10)
    finally:
        await server.stop()
    assert client.acked == 95 and client.refusal is None
    assert sorted(record["n"] for record in sink.records()) == list(range(95))
    assert server.handshakes == {"accepted": 1}


@pytest.mark.parametrize(
    ("client_key", "server_key", "reason"),
    [
        ("wrong key", KEY, "refused by the server: shared_key mismatch"),
        (None, KEY, "the server asks for the shared-key handshake"),
        (KEY, None, "no HELO"),
    ],
    ids=["wrong key", "client without a key", "server without a key"],
)
async def test_ack_sender_refused_keeps_its_records_and_says_why_once(
    caplog: pytest.LogCaptureFixture, client_key: str | None, server_key: str | None, reason: str
) -> None:
    sink = Sink()
    server = ForwardServer(sink, "127.0.0.1", 0, shared_key=server_key, hostname=SERVER)
    await server.start()
    client = AckSender(
        "t",
        port=server.port,
        shared_key=client_key,
        ack_timeout=0.2,
        backoff=Backoff(initial=0.01, maximum=0.05),
    )
    try:
        with caplog.at_level(logging.DEBUG, "logdeck.forward.sender"):
            await client.emit("log", {"n": 1})
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(1):  # retried a few times meanwhile
                    await client.close()
    finally:
        await server.stop()
    assert client.refusal is not None and reason in client.refusal
    assert client.acked == 0 and client.unacked == 1
    assert sink.records() == []
    errors = [r for r in caplog.records if r.levelno == logging.ERROR and reason in r.message]
    assert len(errors) == 1, caplog.text  # once, however many retries
    assert "refused again" in caplog.text  # there were retries
    assert "wrong key" not in caplog.text and KEY not in caplog.text


async def test_ack_sender_refuses_a_server_whose_certificate_it_cannot_verify(
    tmp_path: Path,
) -> None:
    cert, key = make_certificate(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    other_cert, _ = make_certificate(other)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    server = await serve(Sink(), ssl=server_context)
    client = AckSender(
        "t",
        port=server.port,
        shared_key=KEY,
        ssl=ssl.create_default_context(cafile=str(other_cert)),
        ack_timeout=0.5,
        backoff=Backoff(initial=0.01, maximum=0.05),
    )
    try:
        await client.emit("log", {"n": 1})
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(1):
                await client.close()
    finally:
        await server.stop()
    assert client.refusal is not None and "CERTIFICATE_VERIFY_FAILED" in client.refusal
    # The client hangs up as soon as it sees the certificate: all the server can tell.
    assert server.handshakes["hung up during the TLS handshake"] >= 1
    assert "accepted" not in server.handshakes


async def test_a_plain_client_on_the_tls_port_gets_nothing_in(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    sink = Sink()
    server = await serve(sink, ssl=server_context)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(msgpack.packb(["logdeck.log", 1, {"n": 1}, {"chunk": "c"}]))
        assert await asyncio.wait_for(reader.read(4096), 5) == b""
        writer.close()
    finally:
        await server.stop()
    assert sink.items == []
    assert server.handshakes == {"TLS handshake failed": 1}
