"""Completion of service and node names inside a comma-separated list."""

from __future__ import annotations

import re
from collections.abc import Callable

from textual.suggester import Suggester

_LAST_NAME = re.compile(r"^(?P<head>.*[,\s])?(?P<last>[^,\s]*)$", re.DOTALL)


class NamesSuggester(Suggester):
    """Completes the last name typed from a list that keeps growing as names are seen."""

    def __init__(self, names: Callable[[], list[str]]) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self._names = names

    async def get_suggestion(self, value: str) -> str | None:
        match = _LAST_NAME.match(value)
        if match is None or not match["last"]:
            return None
        head, last = match["head"] or "", match["last"]
        typed = set(re.split(r"[,\s]+", head))
        for name in self._names():
            if name.startswith(last) and name != last and name not in typed:
                return head + name
        return None
