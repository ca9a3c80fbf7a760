"""Keys the user remaps: a TOML file of binding ids and keys, checked before the app starts.

Every binding of the console has an id (`feed.pause`, `alerts.ack`, ...), listed with
its keys on the help screen. A file such as

    [keys]
    "feed.pause" = "p"
    "alerts.ack" = "a,enter"

gives those actions other keys. A mistake in the file stops the console with the line
and what is wrong, instead of a binding that silently does nothing.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Iterable
from pathlib import Path

from textual.binding import Binding, BindingType


class KeymapError(ValueError):
    """The keymap file cannot be used; the message says where and why."""


def default_keymap_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "logdeck" / "keys.toml"


def binding_ids(bindings: Iterable[BindingType]) -> set[str]:
    return {binding.id for binding in Binding.make_bindings(bindings) if binding.id}


def load_keymap(path: Path, known: set[str]) -> dict[str, str]:
    """The binding id → keys table of `path`, every id and key string checked."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise KeymapError(f"{path}: cannot read: {error.strerror}") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise KeymapError(f"{path}: {error}") from None
    keys = document.get("keys")
    if not isinstance(keys, dict) or set(document) != {"keys"}:
        raise KeymapError(f"{path}: expected a single [keys] table of binding id = keys")
    keymap: dict[str, str] = {}
    for binding_id, value in keys.items():
        where = f"{path}:{_line_of(text, binding_id)}"
        if binding_id not in known:
            close = difflib.get_close_matches(binding_id, sorted(known), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise KeymapError(f"{where}: no binding has the id {binding_id!r}{hint}")
        if not isinstance(value, str) or not [key for key in value.split(",") if key.strip()]:
            raise KeymapError(f'{where}: keys must be a string such as "p" or "a,enter"')
        keymap[binding_id] = ",".join(key.strip() for key in value.split(","))
    return keymap


def _line_of(text: str, key: str) -> int:
    for number, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith((key, f'"{key}"', f"'{key}'")):
            return number
    return 0
