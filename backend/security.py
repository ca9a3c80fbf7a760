"""Credentials and TLS for Kafka, Elasticsearch and the Forward protocol, from the environment.

Secrets come from `LOGDECK_*` variables only (not flags, which `ps` shows to every user)
and are held as `Secret`, whose text is `***`: a settings object logged, printed or put
in an error message gives nothing away.
"""

from __future__ import annotations

import os
import socket
import ssl
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

KAFKA_PROTOCOLS: Final = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS: Final = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


class SecurityError(ValueError):
    """A security setting that cannot work; the message names the variable."""


class Secret:
    """A password or key: usable by the clients, shown as `***` everywhere else."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, slots=True)
class KafkaSecurity:
    """How the clients authenticate to Kafka and check its certificate."""

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    username: str | None = None
    password: Secret | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> KafkaSecurity:
        protocol = env.get("LOGDECK_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT").upper()
        if protocol not in KAFKA_PROTOCOLS:
            choices = ", ".join(KAFKA_PROTOCOLS)
            raise SecurityError(f"LOGDECK_KAFKA_SECURITY_PROTOCOL={protocol}: use one of {choices}")
        mechanism = env.get("LOGDECK_KAFKA_SASL_MECHANISM")
        sasl = protocol.startswith("SASL_")
        if sasl:
            mechanism = (mechanism or "PLAIN").upper()
            if mechanism not in SASL_MECHANISMS:
                raise SecurityError(
                    f"LOGDECK_KAFKA_SASL_MECHANISM={mechanism}: use one of "
                    f"{', '.join(SASL_MECHANISMS)}"
                )
            for name in ("LOGDECK_KAFKA_USERNAME", "LOGDECK_KAFKA_PASSWORD"):
                if not env.get(name):
                    raise SecurityError(f"{protocol} needs {name}")
        password = env.get("LOGDECK_KAFKA_PASSWORD")
        return cls(
            protocol=protocol,
            sasl_mechanism=mechanism if sasl else None,
            username=env.get("LOGDECK_KAFKA_USERNAME") if sasl else None,
            password=Secret(password) if sasl and password else None,
            ca_file=_path(env, "LOGDECK_KAFKA_CA_FILE"),
            cert_file=_path(env, "LOGDECK_KAFKA_CERT_FILE"),
            key_file=_path(env, "LOGDECK_KAFKA_KEY_FILE"),
        )

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka's producer, consumer and admin client."""
        if self.protocol == "PLAINTEXT":
            return {}
        options: dict[str, Any] = {"security_protocol": self.protocol}
        if self.protocol in ("SSL", "SASL_SSL"):
            options["ssl_context"] = self.ssl_context()
        if self.sasl_mechanism is not None:
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.username
            options["sasl_plain_password"] = self.password.reveal() if self.password else None
        return options

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        if self.cert_file is not None:
            context.load_cert_chain(
                str(self.cert_file), str(self.key_file) if self.key_file else None
            )
        return context


@dataclass(frozen=True, slots=True)
class ElasticsearchAuth:
    """Basic auth or an API key, and the CA that signed Elasticsearch's certificate."""

    username: str | None = None
    password: Secret | None = None
    api_key: Secret | None = None
    ca_file: Path | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> ElasticsearchAuth:
        username = env.get("LOGDECK_ELASTICSEARCH_USERNAME")
        password = env.get("LOGDECK_ELASTICSEARCH_PASSWORD")
        api_key = env.get("LOGDECK_ELASTICSEARCH_API_KEY")
        if bool(username) != bool(password):
            raise SecurityError(
                "LOGDECK_ELASTICSEARCH_USERNAME and LOGDECK_ELASTICSEARCH_PASSWORD go together"
            )
        if username and api_key:
            raise SecurityError(
                "give either LOGDECK_ELASTICSEARCH_USERNAME/PASSWORD or "
                "LOGDECK_ELASTICSEARCH_API_KEY, not both"
            )
        return cls(
            username=username or None,
            password=Secret(password) if password else None,
            api_key=Secret(api_key) if api_key else None,
            ca_file=_path(env, "LOGDECK_ELASTICSEARCH_CA_FILE"),
        )

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for the Elasticsearch client."""
        options: dict[str, Any] = {}
        if self.username and self.password:
            options["basic_auth"] = (self.username, self.password.reveal())
        if self.api_key:
            options["api_key"] = self.api_key.reveal()
        if self.ca_file:
            options["ca_certs"] = str(self.ca_file)
        return options


@dataclass(frozen=True, slots=True)
class ForwardUser:
    """A user of the Forward protocol's user auth, and the nodes it may speak for."""

    name: str
    password: Secret
    nodes: tuple[str, ...] = ()
    """Patterns (`payment-*`) the node_id of each record must match; empty: any node."""


USERS_FILE: Final = "LOGDECK_FORWARD_USERS_FILE"


def load_users(path: Path) -> tuple[ForwardUser, ...]:
    """The `[[user]]` tables of a TOML file: `name`, `password` (or `password_env`, the
    variable that holds it) and optional `nodes`; `SecurityError` naming what is wrong."""
    where = f"{USERS_FILE}={path}"
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise SecurityError(f"{where}: not a readable TOML file ({error})") from None
    tables = document.get("user")
    if not isinstance(tables, list) or not tables:
        raise SecurityError(f"{where}: no [[user]] table")
    users: dict[str, ForwardUser] = {}
    for number, table in enumerate(tables, 1):
        name = table.get("name") if isinstance(table, dict) else None
        if not isinstance(name, str) or not name:
            raise SecurityError(f"{where}: user {number} has no name")
        if name in users:
            raise SecurityError(f"{where}: user {name!r} is given twice")
        nodes = table.get("nodes", [])
        if not (isinstance(nodes, list) and all(isinstance(n, str) and n for n in nodes)):
            raise SecurityError(f"{where}: user {name!r}: nodes must be a list of patterns")
        users[name] = ForwardUser(name, _user_password(table, name, where), tuple(nodes))
    return tuple(users.values())


def _user_password(table: Mapping[str, Any], name: str, where: str) -> Secret:
    password = table.get("password")
    variable = table.get("password_env")
    if isinstance(variable, str) and variable:
        password = os.environ.get(variable)
        if not password:
            raise SecurityError(f"{where}: user {name!r}: {variable} is not set")
    if not isinstance(password, str) or not password:
        raise SecurityError(f"{where}: user {name!r} has no password (or password_env)")
    return Secret(password)


def _patterns(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in env.get(name, "").split(",") if part.strip())


@dataclass(frozen=True, slots=True)
class ForwardSecurity:
    """The Forward protocol's handshake (shared key, users) and TLS, for both ends.

    The accumulator asks every client for the shared key (HELO, PING, PONG) when one is set,
    and for a user's password too when it knows `users`; it speaks TLS when it has a
    certificate and key. A client (`AckSender`) answers the handshake with the same key (and
    `username` and `password`) and, given a CA, speaks TLS and checks the accumulator's
    certificate against it. Both sides name themselves `hostname` in the handshake.
    """

    shared_key: Secret | None = None
    hostname: str = field(default_factory=socket.gethostname)
    cert_file: Path | None = None
    key_file: Path | None = None
    ca_file: Path | None = None
    users: tuple[ForwardUser, ...] = ()
    key_nodes: tuple[str, ...] = ()
    """Patterns every record's node_id must match, whoever sends it; empty: any node."""
    username: str | None = None
    password: Secret | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> ForwardSecurity:
        key = env.get("LOGDECK_FORWARD_SHARED_KEY")
        hostname = env.get("LOGDECK_FORWARD_HOSTNAME") or socket.gethostname()
        try:
            hostname.encode("utf-8")
        except UnicodeEncodeError:
            raise SecurityError("LOGDECK_FORWARD_HOSTNAME is not valid UTF-8") from None
        cert_file = _path(env, "LOGDECK_FORWARD_TLS_CERT_FILE")
        key_file = _path(env, "LOGDECK_FORWARD_TLS_KEY_FILE")
        if (cert_file is None) != (key_file is None):
            raise SecurityError(
                "LOGDECK_FORWARD_TLS_CERT_FILE and LOGDECK_FORWARD_TLS_KEY_FILE go together"
            )
        users_file = _path(env, USERS_FILE)
        users = load_users(users_file) if users_file is not None else ()
        if users and not key:
            raise SecurityError(
                f"{USERS_FILE} needs LOGDECK_FORWARD_SHARED_KEY: users are "
                "asked for in the shared-key handshake"
            )
        password = env.get("LOGDECK_FORWARD_PASSWORD")
        security = cls(
            shared_key=Secret(key) if key else None,
            hostname=hostname,
            cert_file=cert_file,
            key_file=key_file,
            ca_file=_path(env, "LOGDECK_FORWARD_TLS_CA_FILE"),
            users=users,
            key_nodes=_patterns(env, "LOGDECK_FORWARD_KEY_NODES"),
            username=env.get("LOGDECK_FORWARD_USERNAME") or None,
            password=Secret(password) if password else None,
        )
        # Load the files now, so a bad one stops the command before it serves anything.
        security.server_ssl_context()
        security.client_ssl_context()
        return security

    @property
    def server_tls(self) -> bool:
        return self.cert_file is not None

    @property
    def client_tls(self) -> bool:
        return self.ca_file is not None

    @property
    def for_clients(self) -> bool:
        """True when a client must do more than plain Forward: answer HELO, or speak TLS."""
        return self.shared_key is not None or self.client_tls

    def client_variables(self) -> list[str]:
        """The variables set that a client has to honour, for messages."""
        names = []
        if self.shared_key is not None:
            names.append("LOGDECK_FORWARD_SHARED_KEY")
        if self.client_tls:
            names.append("LOGDECK_FORWARD_TLS_CA_FILE")
        return names

    def client_user(self) -> tuple[str, str] | None:
        """The (name, password) a client answers user auth with, when both are set."""
        if self.username is None or self.password is None:
            return None
        return self.username, self.password.reveal()

    def server_ssl_context(self) -> ssl.SSLContext | None:
        """The accumulator's TLS context, or None for plain TCP."""
        if self.cert_file is None or self.key_file is None:
            return None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            # Only certificates: a file that does not hold one is named as the culprit.
            ssl.create_default_context(cafile=str(self.cert_file))
        except OSError as error:  # ssl.SSLError included
            raise SecurityError(
                f"LOGDECK_FORWARD_TLS_CERT_FILE={self.cert_file}: not a readable PEM "
                f"certificate ({error})"
            ) from None
        try:
            # An empty password: an encrypted key fails here instead of prompting on a tty.
            context.load_cert_chain(str(self.cert_file), str(self.key_file), password="")
        except OSError as error:
            raise SecurityError(
                f"LOGDECK_FORWARD_TLS_KEY_FILE={self.key_file}: not the readable, unencrypted "
                f"private key of LOGDECK_FORWARD_TLS_CERT_FILE ({error})"
            ) from None
        return context

    def client_ssl_context(self) -> ssl.SSLContext | None:
        """A client's TLS context, checking the accumulator against the CA; None: plain TCP."""
        if self.ca_file is None:
            return None
        try:
            return ssl.create_default_context(cafile=str(self.ca_file))
        except OSError as error:
            raise SecurityError(
                f"LOGDECK_FORWARD_TLS_CA_FILE={self.ca_file}: not a readable PEM "
                f"certificate ({error})"
            ) from None

    def describe(self) -> str:
        """E.g. `TLS on, shared key on`, for the start-up line (never the key)."""
        tls = "on" if self.server_tls else "off"
        key = "on" if self.shared_key is not None else "off"
        users = f", {len(self.users)} users" if self.users else ""
        return f"TLS {tls}, shared key {key}{users}"


def _path(env: Mapping[str, str], name: str) -> Path | None:
    value = env.get(name)
    if not value:
        return None
    path = Path(value)
    if not path.is_file():
        raise SecurityError(f"{name}={value}: no such file")
    return path
