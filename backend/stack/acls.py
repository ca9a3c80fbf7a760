"""Opening a namespace on a secured stack: its topics, made by the admin principal, and
each role's ACLs on them (`backend.stack.rights`).

Both are idempotent, so `stack up --cluster` does it on every run for the namespace it
is given. The ACLs are created by `CreateAcls.java` on Kafka's own admin client, run from
the jars the brokers run from.
"""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

from backend.bus.base import BusUnavailable
from backend.bus.kafka.topics import ensure_topics
from backend.config import Settings
from backend.security import KafkaSecurity
from backend.stack.env import security_variables
from backend.stack.errors import StackError
from backend.stack.java import java_home
from backend.stack.kafka_secured import certificates, secrets
from backend.stack.principals import ADMIN, MECHANISM
from backend.stack.rights import role_grants
from backend.stack.topology import Topology

TOOL = Path(__file__).with_name("CreateAcls.java")
TOOL_TIMEOUT_S = 120.0


def admin_security(topology: Topology) -> KafkaSecurity:
    """The admin principal's client settings, read as a service reads its own."""
    return KafkaSecurity.from_env(security_variables(topology, ADMIN))


def _admin_properties(topology: Topology) -> Path:
    """The admin's client configuration for Kafka's Java admin client (mode 0600)."""
    security = admin_security(topology)
    password = security.password.reveal() if security.password else ""
    login = "org.apache.kafka.common.security.scram.ScramLoginModule required"
    lines = {
        "bootstrap.servers": topology.bootstrap,
        "security.protocol": security.protocol,
        "sasl.mechanism": MECHANISM,
        "sasl.jaas.config": f'{login} username="{ADMIN}" password="{password}";',
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(certificates(topology).ca),
    }
    path = secrets(topology) / "admin.properties"
    path.unlink(missing_ok=True)
    path.touch(mode=0o600)
    path.write_text("".join(f"{key}={value}\n" for key, value in lines.items()), "utf-8")
    return path


def create_acls(topology: Topology, namespace: str) -> None:
    """Every role's grants in `namespace`; `StackError` if Kafka refuses them."""
    lines = [
        grant.line(f"User:{role}")
        for role, grants in role_grants(namespace).items()
        for grant in grants
    ]
    command = [
        str(java_home() / "bin" / "java"),
        "-Xmx256m",
        "-cp",
        f"{topology.layout.kafka_lib}/*",
        str(TOOL),
        str(_admin_properties(topology)),
    ]
    try:
        done = subprocess.run(
            command,
            input="\n".join(lines) + "\n",
            capture_output=True,
            text=True,
            timeout=TOOL_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        raise StackError(
            f"creating the ACLs of {namespace} took over {TOOL_TIMEOUT_S:.0f} s"
        ) from None
    if done.returncode != 0:
        output = (done.stderr or done.stdout).strip().splitlines()
        last = output[-1] if output else f"exit {done.returncode}"
        reason = next((line for line in output if "Exception" in line), last)
        raise StackError(f"creating the ACLs of {namespace} failed: {reason}")


def open_namespace(topology: Topology, namespace: str, partitions: int) -> None:
    """Create `namespace`'s topics as the admin, then grant the roles their rights."""
    settings = Settings(namespace=namespace)
    topics = settings.topics
    options = admin_security(topology).client_options()
    try:
        asyncio.run(
            ensure_topics(topology.bootstrap, options, partitions, topics.all(), topics.compacted())
        )
    except BusUnavailable as error:
        raise StackError(f"creating the topics of {namespace} failed: {error}") from error
    create_acls(topology, namespace)
