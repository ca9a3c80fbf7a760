"""The keys file: remaps by binding id, and every mistake named with its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.app import help_sections
from console.keymap import KeymapError, binding_ids, load_keymap

KNOWN = {binding_id for _, bindings in help_sections() for binding_id in binding_ids(bindings)}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "keys.toml"
    path.write_text(text)
    return path


def test_every_binding_of_the_console_has_an_id_to_remap() -> None:
    assert {"feed.pause", "alerts.ack", "alerts.resolve", "app.search", "feed.time"} <= KNOWN


def test_a_keys_table_remaps_by_id(tmp_path: Path) -> None:
    path = write(tmp_path, '[keys]\n"feed.pause" = "p"\n"alerts.ack" = "a, enter"\n')
    assert load_keymap(path, KNOWN) == {"feed.pause": "p", "alerts.ack": "a,enter"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[keys]\n"feed.pause" = \n', "keys.toml: Invalid value (at line 2"),
        (
            '[keys]\n\n"feed.pasue" = "p"\n',
            "keys.toml:3: no binding has the id 'feed.pasue'",
        ),
        ('[keys]\n"feed.pause" = 3\n', "keys.toml:2: keys must be a string"),
        ('[keys]\n"feed.pause" = " , "\n', "keys.toml:2: keys must be a string"),
        ('"feed.pause" = "p"\n', "expected a single [keys] table"),
    ],
)
def test_mistakes_are_reported_with_the_file_and_line(
    tmp_path: Path, text: str, expected: str
) -> None:
    with pytest.raises(KeymapError) as caught:
        load_keymap(write(tmp_path, text), KNOWN)
    assert expected in str(caught.value)


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(KeymapError, match="cannot read"):
        load_keymap(tmp_path / "absent.toml", KNOWN)
