"""The keys file: remaps by binding id, and every mistake named with its line: an unknown
id, a key that cannot be pressed, a reserved key given to another action."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from console.app import help_sections
from console.key_names import key_problem
from console.keymap import KeymapError, binding_ids, load_keymap

ROOT = Path(__file__).resolve().parents[2]
BINDINGS = [binding for _, bindings in help_sections() for binding in bindings]
KNOWN = binding_ids(BINDINGS)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "keys.toml"
    path.write_text(text)
    return path


def test_every_binding_of_the_console_has_an_id_to_remap() -> None:
    assert {"feed.pause", "alerts.ack", "alerts.resolve", "app.search", "feed.time"} <= KNOWN


def test_a_keys_table_remaps_by_id(tmp_path: Path) -> None:
    path = write(tmp_path, '[keys]\n"feed.pause" = "p"\n"alerts.ack" = "a, enter"\n')
    assert load_keymap(path, BINDINGS) == {"feed.pause": "p", "alerts.ack": "a,enter"}


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
        load_keymap(write(tmp_path, text), BINDINGS)
    assert expected in str(caught.value)


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(KeymapError, match="cannot read"):
        load_keymap(tmp_path / "absent.toml", BINDINGS)


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("ctrl+shft+x", "unknown modifier 'shft' (did you mean 'shift'?)"),
        ("pgdn", "unknown key name 'pgdn' (did you mean 'pagedown'?)"),
        ("F2", "unknown key name 'F2' (did you mean 'f2'?)"),
        ("ctrl+ctrl+a", "a modifier is named twice"),
        ("ctrl+", "unknown key name ''"),
    ],
)
def test_a_key_that_cannot_be_pressed_says_why(key: str, problem: str) -> None:
    assert problem in (key_problem(key) or "")


@pytest.mark.parametrize(
    "key", ["p", "P", "?", "f2", "ctrl+shift+x", "alt+enter", "pagedown", "question_mark", "comma"]
)
def test_keys_a_terminal_sends_are_accepted(key: str) -> None:
    assert key_problem(key) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[keys]\n"feed.pause" = "p, ctrl+shft+x"\n',
            "keys.toml:2: feed.pause: key 'ctrl+shft+x' cannot be pressed: unknown modifier 'shft'",
        ),
        (
            '[keys]\n"feed.pause" = "q"\n',
            "keys.toml:2: feed.pause: key 'q' is reserved for quitting and closing: only "
            "alert_detail.close, app.quit, context.close, detail.close may have it",
        ),
        (
            '[keys]\n\n"alerts.ack" = "1"\n',
            "keys.toml:3: alerts.ack: key '1' is reserved for the feed's level keys",
        ),
        (
            '[keys]\n"feed.export" = "4"\n',
            "keys.toml:2: feed.export: key '4' is reserved for the feed's level keys (1-4 toggle"
            " INFO to FATAL): only feed.level.fatal may have it",
        ),
        ('[keys]\n"app.search" = "ctrl+c"\n', "key 'ctrl+c' is reserved for quitting"),
    ],
)
def test_impossible_and_reserved_keys_are_refused_with_file_line_and_key(
    tmp_path: Path, text: str, expected: str
) -> None:
    with pytest.raises(KeymapError) as caught:
        load_keymap(write(tmp_path, text), BINDINGS)
    assert expected in str(caught.value)


def test_a_reserved_key_stays_with_the_bindings_that_have_it(tmp_path: Path) -> None:
    path = write(tmp_path, '[keys]\n"app.quit" = "q,ctrl+x"\n"feed.level.info" = "1,i"\n')
    assert load_keymap(path, BINDINGS) == {"app.quit": "q,ctrl+x", "feed.level.info": "1,i"}


def logdeck_console(tmp_path: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    """`logdeck console` run as a user would, with no default keys file around."""
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")}
    return subprocess.run(
        [sys.executable, "-m", "launch", "console", *flags],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_list_keys_applies_the_keys_file_and_refuses_a_bad_one(tmp_path: Path) -> None:
    good = write(tmp_path, '[keys]\n"feed.pause" = "p"\n')
    listed = logdeck_console(tmp_path, "--list-keys", "--keys", str(good))
    assert listed.returncode == 0, listed.stderr
    pause = next(line for line in listed.stdout.splitlines() if line.startswith("feed.pause"))
    assert pause.split()[1] == "p"

    absent = tmp_path / "absent.toml"
    for flags in (("--list-keys", "--keys", str(absent)), ("--keys", str(absent))):
        missing = logdeck_console(tmp_path, *flags)
        assert missing.returncode == 2
        assert f"logdeck console: {absent}: cannot read" in missing.stderr
        assert missing.stdout == ""

    bad = tmp_path / "bad.toml"
    bad.write_text('[keys]\n"feed.pause" = "q"\n"feed.export" = "ctrl+shft+x"\n')
    refused = logdeck_console(tmp_path, "--list-keys", "--keys", str(bad))
    assert refused.returncode == 2
    assert f"{bad}:2: feed.pause: key 'q' is reserved" in refused.stderr
