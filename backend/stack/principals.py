"""The cluster's Kafka principals: one per role, plus the stack's own admin, with random
passwords kept in a file only its owner reads (`stack env` prints them)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from pathlib import Path

ADMIN = "admin"
"""The super user the stack creates topics and ACLs with; `stack env` without `--role`."""
MECHANISM = "SCRAM-SHA-512"


def load_passwords(path: Path) -> dict[str, str]:
    """Every principal's password from `path`; `{}` if the file does not exist yet."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    return {str(name): str(password) for name, password in document.items()}


def ensure_passwords(path: Path, roles: Iterable[str]) -> dict[str, str]:
    """The passwords of the admin and of `roles` (each role's principal is named after
    it: `User:indexer`), made if `path` does not exist yet and written with mode 0600.

    Hex, so nothing in them splits Kafka's `--add-scram` syntax.
    """
    passwords = load_passwords(path)
    if passwords:
        return passwords
    passwords = {name: secrets.token_hex(24) for name in (ADMIN, *roles)}
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.partial")
    partial.unlink(missing_ok=True)
    partial.touch(mode=0o600)
    partial.write_text(json.dumps(passwords, indent=2) + "\n", encoding="utf-8")
    partial.rename(path)
    return passwords


def scram_flags(passwords: dict[str, str]) -> list[str]:
    """`kafka-storage format` flags that store every principal's SCRAM credential."""
    return [
        flag
        for name, password in passwords.items()
        for flag in ("--add-scram", f"{MECHANISM}=[name={name},password={password}]")
    ]
