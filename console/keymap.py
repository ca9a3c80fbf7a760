"""Keys the user remaps: a TOML file of binding ids and keys, checked before the app starts.

Every binding of the console has an id (`feed.pause`, `alerts.ack`, ...), listed with
its keys on the help screen. A file such as

    [keys]
    "feed.pause" = "p"
    "alerts.ack" = "a,enter"

gives those actions other keys. A mistake in the file stops the console with the line
and what is wrong, instead of a binding that silently does nothing: an unknown id, a key
that cannot be pressed (`ctrl+shft+x`), or a reserved key given to another action.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path

from textual.binding import Binding, BindingType

from console.key_names import key_problem

RESERVED_KEYS = {
    "q": "quitting and closing",
    "ctrl+c": "quitting",
    **dict.fromkeys("1234", "the feed's level keys (1-4 toggle INFO to FATAL)"),
}
"""Keys that keep their meaning whatever the file says, and what they are for: a file may
give them only to the bindings that have them by default."""


class KeymapError(ValueError):
    """The keymap file cannot be used; the message says where and why."""


def default_keymap_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "logdeck" / "keys.toml"


def binding_ids(bindings: Iterable[BindingType]) -> set[str]:
    return {binding.id for binding in Binding.make_bindings(bindings) if binding.id}


def reserved_owners(bindings: Iterable[BindingType]) -> dict[str, set[str]]:
    """Each reserved key with the ids of the bindings that have it by default."""
    owners: dict[str, set[str]] = {key: set() for key in RESERVED_KEYS}
    for binding in Binding.make_bindings(bindings):
        if binding.id and binding.key in owners:
            owners[binding.key].add(binding.id)
    return owners


def remapped(bindings: Iterable[BindingType], keymap: Mapping[str, str]) -> list[BindingType]:
    """`bindings` with the keys `keymap` gives their ids, as the app applies them."""
    return [
        replace(binding, key=keymap[binding.id])
        if isinstance(binding, Binding) and binding.id is not None and binding.id in keymap
        else binding
        for binding in bindings
    ]


def load_keymap(path: Path, bindings: Iterable[BindingType]) -> dict[str, str]:
    """The binding id → keys table of `path`, every id and key checked against `bindings`."""
    bindings = list(bindings)
    known = binding_ids(bindings)
    owners = reserved_owners(bindings)
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
        keys = [key.strip() for key in value.split(",") if key.strip()]
        for key in keys:
            problem = key_problem(key)
            if problem is not None:
                raise KeymapError(
                    f"{where}: {binding_id}: key {key!r} cannot be pressed: {problem}"
                )
            if key in owners and binding_id not in owners[key]:
                holders = ", ".join(sorted(owners[key]))
                allowed = f"only {holders} may have it" if holders else "no binding may have it"
                raise KeymapError(
                    f"{where}: {binding_id}: key {key!r} is reserved for {RESERVED_KEYS[key]}:"
                    f" {allowed}"
                )
        keymap[binding_id] = ",".join(keys)
    return keymap


def _line_of(text: str, key: str) -> int:
    for number, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith((key, f'"{key}"', f"'{key}'")):
            return number
    return 0
