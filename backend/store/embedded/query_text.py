"""The search text read as Elasticsearch's `simple_query_string` reads it, then written for FTS5.

The console's searches must find on the embedded store what they find on Elasticsearch
(backend/store/search.py: `simple_query_string` with `default_operator: and`), so the text is
parsed the way Lucene's SimpleQueryParser reads it (`"a phrase"`, `-not`, `a | b`, `a + b`,
`(groups)`, `prefix*`, `\\` escapes) and rendered as an FTS5 expression in which every word
is quoted, so no input can make FTS5 fail. What FTS5 cannot do is said in the parse's notes:
fuzzy `word~2` and phrase slop `"a b"~3` are searched exactly. A term that splits into
several words (`PAY-502`, `10.0.0.1`) must match them side by side, as a phrase, where
Elasticsearch's standard analyzer keeps some of them whole.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final, Literal

_MAX_DEPTH: Final = 32
_WORD: Final = re.compile(r"\w+")
_TEXT_COLUMNS: Final = "{message error_message error_code}"


@dataclass(frozen=True, slots=True)
class Words:
    """Words that must follow each other (one word: a term); `prefix`: the last one starts."""

    words: tuple[str, ...]
    prefix: bool = False


@dataclass(frozen=True, slots=True)
class Not:
    node: Node


@dataclass(frozen=True, slots=True)
class Bool:
    op: Literal["AND", "OR"]
    nodes: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class All:
    """`*` alone: every log."""


Node = Words | Not | Bool | All


@dataclass(slots=True)
class Parsed:
    node: Node | None
    notes: list[str]


@dataclass(slots=True)
class _State:
    top: Node | None = None
    previous: Literal["AND", "OR"] | None = None
    current: Literal["AND", "OR"] | None = None
    negate: int = 0


_OPERATOR_WORDS: Final = frozenset({"AND", "OR", "NOT"})
_FINISHES: Final = frozenset('"|+() \t\n\r')


@dataclass(slots=True)
class _Parser:
    """Lucene's SimpleQueryParser with every operator on, producing `Node`s."""

    text: str
    ignored: list[str] = field(default_factory=list)
    notes: dict[str, None] = field(default_factory=dict)

    def parse(self) -> Parsed:
        if self.text.strip() == "*":
            return Parsed(All(), [])
        node = self._sub(0, len(self.text), 0)
        if self.ignored:
            shown = ", ".join(f"'{fragment[:20]}'" for fragment in self.ignored[:5])
            more = f" and {len(self.ignored) - 5} more" if len(self.ignored) > 5 else ""
            self.notes[f"ignored {shown}{more}: no letters or digits to search for"] = None
        if node is None:
            self.notes["nothing to search for in the text, so nothing matches"] = None
        return Parsed(node, list(self.notes))

    def _sub(self, index: int, end: int, depth: int) -> Node | None:
        state = _State()
        text = self.text
        while index < end:
            char = text[index]
            if char == "(":
                index = self._group(state, index, end, depth)
            elif char == ")":
                index += 1
            elif char == '"':
                index = self._phrase(state, index, end)
            elif char in "+|":
                if state.current is None and state.top is not None:
                    state.current = "AND" if char == "+" else "OR"
                index += 1
            elif char == "-":
                state.negate += 1
                index += 1
                continue
            elif char in " \t\n\r":
                index += 1
            else:
                index = self._token(state, index, end)
            state.negate = 0
        return state.top

    def _group(self, state: _State, index: int, end: int, depth: int) -> int:
        start = index = index + 1
        level, escaped = 1, False
        while index < end:
            char = self.text[index]
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == "(":
                level += 1
            elif char == ")":
                level -= 1
                if level == 0:
                    break
            index += 1
        if index >= end:
            self.notes["an unmatched '(' was ignored"] = None
            return start
        if index == start:
            state.current = None
            return index + 1
        if depth >= _MAX_DEPTH:
            # Read on as if there were no parenthesis; the stray ')' is skipped later.
            self.notes[f"groups nested deeper than {_MAX_DEPTH} were flattened"] = None
            return start
        self._build(state, self._sub(start, index, depth + 1))
        return index + 1

    def _phrase(self, state: _State, index: int, end: int) -> int:
        start = index = index + 1
        chars: list[str] = []
        escaped = slop = False
        while index < end:
            char = self.text[index]
            if not escaped:
                if char == "\\":
                    escaped = True
                    index += 1
                    continue
                if char == '"':
                    if index + 1 < end and self.text[index + 1] == "~":
                        index += 1
                        slop = index + 1 < end
                    break
            escaped = False
            chars.append(char)
            index += 1
        if index >= end:
            self.notes["an unmatched '\"' was ignored"] = None
            return start
        if index == start:
            state.current = None
            return index + 1
        if slop:
            self.notes['phrase slop ("..."~N) is not supported: searched as an exact phrase'] = None
            index = self._skip_token(index)
        self._build(state, self._words("".join(chars), prefix=False))
        return index + 1

    def _token(self, state: _State, index: int, end: int) -> int:
        chars: list[str] = []
        escaped = prefix = fuzzy = False
        while index < end:
            char = self.text[index]
            if not escaped:
                if char == "\\":
                    escaped, prefix = True, False
                    index += 1
                    continue
                if char in _FINISHES:
                    break
                if chars and char == "~":
                    fuzzy = True
                    break
                prefix = bool(chars) and char == "*"
            escaped = False
            chars.append(char)
            index += 1
        if fuzzy:
            self.notes["fuzzy matching (word~N) is not supported: searched exactly"] = None
            index = self._skip_token(index) + 1
        if chars:
            token = "".join(chars[:-1] if prefix else chars)
            # A prefix counts only if it ends in a letter or digit ("foo-*" is just "foo").
            self._build(state, self._words(token, prefix=prefix and bool(_WORD.match(token[-1:]))))
        return index

    def _skip_token(self, index: int) -> int:
        """The index of the last character of the `~N` at `index`."""
        while index + 1 < len(self.text) and self.text[index + 1] not in _FINISHES:
            index += 1
        return index

    def _words(self, text: str, *, prefix: bool) -> Words | None:
        words = tuple(_WORD.findall(text))
        if not words:
            if text.strip():
                self.ignored.append(text.strip())
            return None
        if len(words) == 1 and words[0] in _OPERATOR_WORDS:
            self.notes[
                f"'{words[0]}' was searched as a word: use + for and, | for or, - for not"
            ] = None
        return Words(words, prefix)

    def _build(self, state: _State, branch: Node | None) -> None:
        if branch is None:
            return
        if state.negate % 2:
            branch = Not(branch)
        if state.top is None:
            state.top = branch
        else:
            op = state.current or "AND"
            top = state.top
            if state.previous == op and isinstance(top, Bool) and top.op == op:
                state.top = Bool(op, (*top.nodes, branch))
            else:
                state.top = Bool(op, (top, branch))
            state.previous = op
        state.current = None


def parse(text: str) -> Parsed:
    return _Parser(text).parse()


_EVERY_LEVEL: Final = "({tags} : (" + " OR ".join(f"zl{rank}" for rank in range(4)) + "))"


def render(node: Node, expansions: dict[str, list[str]] | None = None) -> str:
    """An FTS5 expression: every word quoted, so no text can be a syntax error."""
    if isinstance(node, Words):
        words = (expansions or {}).get(node.words[0].lower()) if _single_prefix(node) else None
        if words:
            quoted = " OR ".join('"' + word.replace('"', '""') + '"' for word in words)
            return f"({_TEXT_COLUMNS} : ({quoted}))"
        phrase = '"' + " ".join(node.words) + '"' + (" *" if node.prefix else "")
        return f"({_TEXT_COLUMNS} : {phrase})"
    if isinstance(node, All):
        return _EVERY_LEVEL
    if isinstance(node, Not):
        return f"({_EVERY_LEVEL} NOT {render(node.node, expansions)})"
    if node.op == "OR":
        return "(" + " OR ".join(render(child, expansions) for child in node.nodes) + ")"
    wanted = [child for child in node.nodes if not isinstance(child, Not)]
    unwanted = [child.node for child in node.nodes if isinstance(child, Not)]
    expression = (
        " AND ".join(render(child, expansions) for child in wanted) if wanted else _EVERY_LEVEL
    )
    if unwanted:
        # One NOT of an OR: a chain of NOTs would nest as deep as there are terms.
        expression = (
            f"({expression}) NOT ("
            + " OR ".join(render(child, expansions) for child in unwanted)
            + ")"
        )
    return f"({expression})"


def _single_prefix(node: Words) -> bool:
    return node.prefix and len(node.words) == 1


def _words_of(node: Node) -> Iterable[Words]:
    if isinstance(node, Words):
        yield node
    elif isinstance(node, Not):
        yield from _words_of(node.node)
    elif isinstance(node, Bool):
        for child in node.nodes:
            yield from _words_of(child)


def prefixes(node: Node) -> list[str]:
    """The one-word prefixes of `node`, lower-cased as the index keeps words."""
    found = {words.words[0].lower() for words in _words_of(node) if _single_prefix(words)}
    return sorted(found)


def native_prefix(node: Node, expansions: dict[str, list[str]]) -> bool:
    """Whether a prefix is left for FTS5 to expand (too many words, or within a phrase)."""
    return any(
        words.prefix and not (_single_prefix(words) and words.words[0].lower() in expansions)
        for words in _words_of(node)
    )


def plain_words(text: str) -> str:
    """The letters and digits of `text` alone: what is left to search should FTS5 refuse it."""
    return " ".join(_WORD.findall(text))
