"""Which key names a terminal can send, as Textual spells them: `q`, `f2`, `ctrl+shift+x`.

A binding to a key that cannot exist (`ctrl+shft+x`, `pgdn`) would never fire; the keys
file is checked against these names so such a mistake is reported, not kept silently.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from textual.keys import KEY_ALIASES, REPLACED_KEYS, Keys, key_to_character

MODIFIERS = ("ctrl", "shift", "alt", "meta", "super", "hyper")
"""The modifiers Textual reads from a terminal, in the order it names them."""


def _named_keys() -> frozenset[str]:
    aliases = [alias for names in KEY_ALIASES.values() for alias in names]
    keys = [key.value for key in Keys] + [*KEY_ALIASES, *aliases]
    names = {key.rpartition("+")[2] for key in keys}
    return frozenset(name for name in names if len(name) > 1 and name.replace("_", "").isalnum())


NAMED_KEYS = _named_keys()
"""Keys with a name rather than a character: `escape`, `f2`, `pageup`, `tab`, ..."""


def key_problem(key: str) -> str | None:
    """What makes `key` one that cannot be pressed, or None if it can be."""
    if len(key) == 1:
        return None if key.isprintable() else "not a printable character"
    *modifiers, name = key.split("+")
    for modifier in modifiers:
        if modifier not in MODIFIERS:
            hint = _hint(modifier, MODIFIERS)
            return f"unknown modifier {modifier!r}{hint} (modifiers: {', '.join(MODIFIERS)})"
    if len(set(modifiers)) < len(modifiers):
        return "a modifier is named twice"
    if not _is_key_name(name):
        hint = _hint(name, sorted(NAMED_KEYS))
        return f"unknown key name {name!r}{hint}"
    return None


def _is_key_name(name: str) -> bool:
    if len(name) == 1:
        return name.isprintable()
    if name in NAMED_KEYS:
        return True
    character = key_to_character(REPLACED_KEYS.get(name, name))
    return character is not None and len(character) == 1 and character.isprintable()


def _hint(name: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(name.lower(), choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
