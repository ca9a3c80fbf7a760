"""Keys handled one after another, in the order they were typed.

Textual hands a key to the focused widget and takes the next key at once; a key's binding
runs only when the key has bubbled back up to the app. So a key that moves the focus (one
that opens a prompt or a screen, or closes one) did so after the keys typed right behind
it had already gone to the old focus, where they ran as commands: `/timed` typed quickly
went to the time prompt, set a minimum level and exported the feed.

Here the app takes the next key only once the one before has been handled to the end:
a check queued behind the key at each widget it passes through follows it up to the app,
and the key after it is dispatched when that check arrives. Actions that move the focus
must therefore move it before they return (`Screen.set_focus`, an awaited `push_screen`),
not later through `Widget.focus`, which is itself queued.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from textual import events
from textual.app import App
from textual.dom import DOMNode

Dispatch = Callable[[events.Key], Awaitable[None]]


class KeyOrder:
    """The keys typed and not yet dispatched, and the one on its way through the widgets."""

    def __init__(self, app: App[Any], dispatch: Dispatch) -> None:
        self._app = app
        self._dispatch = dispatch
        self._typed: deque[events.Key] = deque()
        self._travelling: events.Key | None = None
        self._at: DOMNode | None = None

    async def take(self, key: events.Key) -> None:
        """A key from the terminal: dispatched now, or once the keys before it are handled."""
        self._typed.append(key)
        if self._at is not None and not self._at.is_running:
            self._travelling = self._at = None  # it went away with the widget it was at
        await self._next()

    async def _next(self) -> None:
        while self._typed and self._travelling is None:
            key = self._typed.popleft()
            target = self._app.focused or self._app.screen
            await self._dispatch(key)
            if key.is_forwarded:  # not taken by a priority binding: it travels
                self._travelling = key
                self._follow(key, target)

    def _follow(self, key: events.Key, node: DOMNode) -> None:
        """Queue a check behind `key` at `node`, which runs once `node` has handled it."""
        self._at = node
        if not node.call_later(self._handled, key, node):
            self._app.call_later(self._done, key)

    def _handled(self, key: events.Key, node: DOMNode) -> None:
        parent = node.parent
        if parent is None or parent is self._app:
            self._app.call_later(self._done, key)  # behind the key, if it bubbled that far
        else:
            self._follow(key, parent)

    async def _done(self, key: events.Key) -> None:
        if self._travelling is key:
            self._travelling = self._at = None
            await self._next()
