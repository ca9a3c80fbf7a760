"""Starting the console for a user: their keys file, the list of binding ids, the app run.

Whoever starts the console opens the backend and hands an `Observer` over; nothing here
knows which bus or store is behind it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from textual.binding import Binding

from backend.observe.base import Observer
from console.app import LogdeckApp, help_sections
from console.keymap import default_keymap_file, load_keymap, remapped


def user_keymap(path: Path | None) -> dict[str, str]:
    """The keys file at `path`, or the default one if it exists (`KeymapError` if wrong)."""
    if path is None:
        path = default_keymap_file()
        if not path.exists():
            return {}
    return load_keymap(path, [binding for _, bindings in help_sections() for binding in bindings])


def print_bindings(out: TextIO, keymap: Mapping[str, str]) -> None:
    """Each binding id with its keys (those `keymap` gives, else the default ones), as a
    keys file would write them."""
    for section, bindings in help_sections():
        print(f"# {section}", file=out)
        keys: dict[str, list[str]] = {}
        texts: dict[str, str] = {}
        for binding in Binding.make_bindings(remapped(bindings, keymap)):
            if binding.id:
                keys.setdefault(binding.id, []).append(binding.key)
                texts[binding.id] = binding.tooltip or binding.description
        for binding_id, bound in keys.items():
            print(f"{binding_id:<22} {','.join(bound):<18} {texts[binding_id]}", file=out)


def run_console(observer: Observer, *, read_only: bool, keymap: Mapping[str, str]) -> int:
    """Run the app on this terminal until the user quits; its exit code."""
    app = LogdeckApp(observer, read_only=read_only, keymap=keymap)
    app.run()
    return app.return_code or 0
