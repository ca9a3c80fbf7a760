"""The cluster's certificate authority and its brokers' certificate, made once with openssl.

Kafka 4.1 reads PEM directly (`ssl.keystore.type=PEM`), so there is no Java keystore to
keep in step: the CA's certificate is the clients' and brokers' trust store, and one
file holds the brokers' key and certificate chain. The brokers share that certificate
(they all run on 127.0.0.1) and present it to each other as clients too, which is what
lets them in on the listeners without SASL.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from backend.stack.errors import StackError

BROKER_NAME = "logdeck-broker"
"""The brokers' certificate subject: Kafka's principal for them is `User:CN=logdeck-broker`."""
BROKER_PRINCIPAL = f"User:CN={BROKER_NAME}"
CA_DAYS = 3650
BROKER_DAYS = 825
BROKER_EXTENSIONS = (
    "basicConstraints=critical,CA:FALSE\n"
    "keyUsage=critical,digitalSignature,keyEncipherment\n"
    "extendedKeyUsage=serverAuth,clientAuth\n"
    "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
)


@dataclass(frozen=True, slots=True)
class Certificates:
    """The PEM files under one folder (mode 0700: it holds private keys)."""

    folder: Path

    @property
    def ca(self) -> Path:
        """The CA certificate: what clients give as LOGDECK_KAFKA_CA_FILE."""
        return self.folder / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.folder / "ca.key"

    @property
    def broker_key(self) -> Path:
        return self.folder / "broker.key"

    @property
    def broker_certificate(self) -> Path:
        return self.folder / "broker.crt"

    @property
    def broker_keystore(self) -> Path:
        """The brokers' key, certificate and CA in one PEM file, as Kafka's keystore."""
        return self.folder / "broker.pem"


def _openssl(*args: str) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise StackError("openssl is required to make the cluster's certificates")
    done = subprocess.run([openssl, *args], capture_output=True, text=True)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        raise StackError(f"openssl {args[0]} failed: {lines[-1] if lines else done.returncode}")


def ensure_certificates(folder: Path) -> Certificates:
    """The CA and the brokers' certificate in `folder`, made if the keystore is missing."""
    certificates = Certificates(folder)
    if certificates.broker_keystore.is_file():
        return certificates
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    _openssl(
        *("req", "-x509", "-new", "-newkey", "rsa:2048", "-nodes", "-sha256"),
        *("-days", str(CA_DAYS), "-subj", "/CN=logdeck cluster CA"),
        *("-keyout", str(certificates.ca_key), "-out", str(certificates.ca)),
        *("-addext", "basicConstraints=critical,CA:TRUE"),
        *("-addext", "keyUsage=critical,keyCertSign,cRLSign"),
    )
    request = folder / "broker.csr"
    extensions = folder / "broker.ext"
    extensions.write_text(BROKER_EXTENSIONS, encoding="utf-8")
    _openssl(
        *("req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={BROKER_NAME}"),
        *("-keyout", str(certificates.broker_key), "-out", str(request)),
    )
    _openssl(
        *("x509", "-req", "-sha256", "-days", str(BROKER_DAYS), "-in", str(request)),
        *("-CA", str(certificates.ca), "-CAkey", str(certificates.ca_key), "-CAcreateserial"),
        *("-extfile", str(extensions), "-out", str(certificates.broker_certificate)),
    )
    for scratch in (request, extensions, folder / "ca.srl"):
        scratch.unlink(missing_ok=True)
    for key in (certificates.ca_key, certificates.broker_key):
        key.chmod(0o600)
    keystore = folder / "broker.pem.partial"
    keystore.touch(mode=0o600)
    keystore.write_text(
        "".join(
            path.read_text(encoding="ascii")
            for path in (
                certificates.broker_key,
                certificates.broker_certificate,
                certificates.ca,
            )
        ),
        encoding="ascii",
    )
    keystore.rename(certificates.broker_keystore)
    return certificates
