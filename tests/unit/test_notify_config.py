"""The notifier's file: the contract's shape is read, every mistake is one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.notify.config import (
    NotifyConfigError,
    default_config_path,
    load_notify_config,
    parse_notify_config,
)

ROOT = Path(__file__).resolve().parents[2]

CONTRACT = """\
[[receiver]]
name = "oncall"
type = "webhook"
url = "http://127.0.0.1:5001/hook"

[[route]]
receiver = "oncall"
match = { severity = "CRITICAL" }
group_wait_s = 0
repeat_interval_s = 3600
"""


def test_the_contracts_example_is_read_as_written() -> None:
    config = parse_notify_config(CONTRACT, "notify.toml")
    (receiver,) = config.receivers
    assert (receiver.name, receiver.type, receiver.url) == (
        "oncall",
        "webhook",
        "http://127.0.0.1:5001/hook",
    )
    (route,) = config.routes
    assert route.receiver == "oncall"
    assert route.match == {"severity": frozenset({"CRITICAL"})}
    assert (route.group_wait_s, route.repeat_interval_s) == (0.0, 3600.0)


def test_the_model_file_in_deploy_is_valid() -> None:
    config = load_notify_config(ROOT / "deploy" / "notify.toml")
    assert {r.type for r in config.receivers} == {"alertmanager", "webhook", "slack", "email"}
    (mail,) = [r.email for r in config.receivers if r.name == "mail"]
    assert mail is not None
    assert (mail.host, mail.port, mail.to) == ("127.0.0.1", 25, ("oncall@localhost",))


def test_the_file_comes_from_logdeck_notify_then_the_config_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LOGDECK_NOTIFY", str(tmp_path / "mine.toml"))
    assert default_config_path() == tmp_path / "mine.toml"
    monkeypatch.delenv("LOGDECK_NOTIFY")
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_config_path() == tmp_path / ".config" / "logdeck" / "notify.toml"


def test_a_missing_file_is_named() -> None:
    with pytest.raises(NotifyConfigError) as error:
        load_notify_config(Path("/nonexistent/notify.toml"))
    assert str(error.value) == (
        "/nonexistent/notify.toml: cannot read the notifier's file: No such file or directory"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[[receiver]\n", "notify.toml:1: "),
        ("", "notify.toml: no [[receiver]]: there is nobody to notify"),
        (
            '[[receiver]]\nname = "a"\ntype = "pager"\nurl = "http://x"\n',
            "notify.toml:1: [[receiver]] #1: bad value for 'type': 'pager' "
            "(expected alertmanager, webhook, slack or email)",
        ),
        (
            '[[receiver]]\nname = "a"\ntype = "webhook"\n',
            "notify.toml:1: [[receiver]] #1: no 'url'",
        ),
        (
            '[[receiver]]\nname = "a"\ntype = "webhook"\nurl = "ftp://x"\n',
            "notify.toml:1: [[receiver]] #1: bad value for 'url': 'ftp://x' "
            "(expected an http:// or https:// URL)",
        ),
        (
            '[[receiver]]\nname = "a"\ntype = "webhook"\nurl = "http://x"\nurls = 1\n',
            "notify.toml:1: [[receiver]] #1: unknown field 'urls'; did you mean 'url'?",
        ),
        (
            '[[receiver]]\nname = "a"\ntype = "webhook"\nurl = "http://x"\n\n'
            '[[receiver]]\nname = "a"\ntype = "slack"\nurl = "http://y"\n',
            "notify.toml:6: [[receiver]] #2: the name 'a' is taken by an earlier receiver",
        ),
        (
            '[[receiver]]\nname = "a"\ntype = "email"\nsmtp = "localhost"\n'
            'from = "x@y"\nto = "z@y"\n',
            "notify.toml:1: [[receiver]] #1: bad value for 'smtp': 'localhost' "
            "(expected HOST:PORT, e.g. 127.0.0.1:25)",
        ),
        (
            '[[receiver]]\nname = "a"\ntype = "webhook"\nurl = "http://x"\n\n'
            '[[route]]\nreceiver = "b"\n',
            "notify.toml:6: [[route]] #1: bad value for 'receiver': 'b' "
            "(expected a receiver's name: a)",
        ),
        (
            '[[receiver]]\nname = "a"\ntype = "webhook"\nurl = "http://x"\n\n'
            '[[route]]\nreceiver = "a"\nmatch = { severity = "FATAL" }\n',
            "notify.toml:6: [[route]] #1: bad value for 'match.severity': 'FATAL' "
            "(expected WARNING, ERROR or CRITICAL)",
        ),
        (
            '[[receiver]]\nname = "a"\ntype = "webhook"\nurl = "http://x"\n\n'
            '[[route]]\nreceiver = "a"\nmatch = { host = "n1" }\n',
            "notify.toml:6: [[route]] #1: unknown field in match: 'host'",
        ),
        (
            '[[receiver]]\nname = "a"\ntype = "webhook"\nurl = "http://x"\n\n'
            '[[route]]\nreceiver = "a"\nrepeat_interval_s = 0\n',
            "notify.toml:6: [[route]] #1: bad value for 'repeat_interval_s': 0 "
            "(expected a number of seconds above 0)",
        ),
        (
            '[[receiver]]\nname = "a"\ntype = "webhook"\nurl = "http://x"\n\n'
            '[[route]]\nreceiver = "a"\ngroup_wait_s = "soon"\n',
            "notify.toml:6: [[route]] #1: bad value for 'group_wait_s': 'soon' "
            "(expected a number of seconds 0 or more)",
        ),
        (
            '[[receiver]]\nname = "a"\ntype = "webhook"\nurl = "http://x"\n\n'
            '[[route]]\nreceiver = "a"\nescalate_after_s = -5\n',
            "notify.toml:6: [[route]] #1: bad value for 'escalate_after_s': -5 "
            "(expected a number of seconds above 0)",
        ),
        ('[receiver]\nname = "a"\n', "notify.toml: `receiver` must be a list of tables"),
        ("[[receivers]]\n", "notify.toml: unknown table 'receivers'; did you mean 'receiver'?"),
    ],
)
def test_a_mistake_is_one_line_naming_the_file_and_what_to_fix(text: str, expected: str) -> None:
    with pytest.raises(NotifyConfigError) as error:
        parse_notify_config(text, "notify.toml")
    message = str(error.value)
    assert message.startswith(expected), message
    assert "\n" not in message
