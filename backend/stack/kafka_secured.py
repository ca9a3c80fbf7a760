"""What a secured Kafka node adds to its configuration, its format and its readiness check.

Clients come in on SASL_SSL with SCRAM-SHA-512 and are held to the ACLs of the
StandardAuthorizer. The brokers speak to each other (INTERNAL) and to the controllers
(CONTROLLER) over TLS with their own certificate on both ends: KRaft cannot check SCRAM
on the controller listener (the credentials live in the metadata it serves), and mutual
TLS keeps both listeners closed to anyone without a key the CA signed, where PLAINTEXT
would make every local process a super user.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from backend.stack.errors import StackError
from backend.stack.layout import HOST
from backend.stack.principals import ADMIN, MECHANISM, load_passwords, scram_flags
from backend.stack.tls import BROKER_PRINCIPAL, Certificates
from backend.stack.topology import KafkaNode, Topology

AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
SCRAM_LOGIN = "org.apache.kafka.common.security.scram.ScramLoginModule required;"


def secrets(topology: Topology) -> Path:
    if topology.secrets is None:
        raise ValueError(f"{topology.name} is not secured")
    return topology.secrets


def certificates(topology: Topology) -> Certificates:
    return Certificates(secrets(topology) / "tls")


def passwords_file(topology: Topology) -> Path:
    return secrets(topology) / "passwords.json"


def secured_settings(topology: Topology, node: KafkaNode) -> dict[str, str]:
    """Listeners, TLS, SASL and authorizer settings of `node` in a secured topology."""
    pem = certificates(topology)
    listeners = ",".join(
        (
            f"CLIENT://{HOST}:{node.port}",
            f"INTERNAL://{HOST}:{node.internal_port}",
            f"CONTROLLER://{HOST}:{node.controller_port}",
        )
    )
    mechanism = MECHANISM.lower()
    return {
        "listeners": listeners,
        "advertised.listeners": listeners,
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "INTERNAL",
        "listener.security.protocol.map": "CLIENT:SASL_SSL,INTERNAL:SSL,CONTROLLER:SSL",
        "sasl.enabled.mechanisms": MECHANISM,
        f"listener.name.client.{mechanism}.sasl.jaas.config": SCRAM_LOGIN,
        "listener.name.internal.ssl.client.auth": "required",
        "listener.name.controller.ssl.client.auth": "required",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(pem.broker_keystore),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(pem.ca),
        "authorizer.class.name": AUTHORIZER,
        "super.users": f"User:{ADMIN};{BROKER_PRINCIPAL}",
        "allow.everyone.if.no.acl.found": "false",
    }


def format_flags(topology: Topology) -> list[str]:
    """The SCRAM credentials a new secured cluster is formatted with."""
    passwords = load_passwords(passwords_file(topology))
    if not passwords:
        raise StackError(f"no passwords in {passwords_file(topology)}")
    return scram_flags(passwords)


def broker_context(topology: Topology) -> ssl.SSLContext:
    """A TLS context that presents the brokers' certificate: how the stack itself checks
    a secured node's INTERNAL listener, without a principal of the ACLs."""
    pem = certificates(topology)
    context = ssl.create_default_context(cafile=str(pem.ca))
    context.load_cert_chain(str(pem.broker_certificate), str(pem.broker_key))
    return context
