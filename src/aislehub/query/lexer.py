"""Tokens of IoT Central's filter and query languages (contract §4.1, §5.1).

Words cover keywords, ``$system`` fields, dotted capability names and template ids
(``dtmi:contoso:Thermostat;1``), which only differ by where the parser expects them.
Strings take double quotes (device-group filters) or single quotes (``/query``), with
backslash escapes. Every token keeps its 1-based position for error messages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aislehub.errors import BadRequest

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
   |(?P<number>-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)
   |(?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
   |(?P<word>\$?[A-Za-z_][A-Za-z0-9_:;.]*)
   |(?P<op><>|!=|<=|>=|=|<|>)
   |(?P<punct>[()\[\],*])
    """,
    re.VERBOSE,
)
_ESCAPE = re.compile(r"\\(.)")


class FilterError(BadRequest):
    """A filter that does not parse; ``position`` is 1-based, into the filter text."""

    def __init__(self, position: int, message: str) -> None:
        super().__init__(f"Invalid filter at position {position}: {message}.")
        self.position = position


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # number | string | word | op | punct | end
    text: str
    position: int

    def is_word(self, *keywords: str) -> bool:
        return self.kind == "word" and self.text.upper() in keywords

    def describe(self) -> str:
        return "the end of the filter" if self.kind == "end" else repr(self.text)


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    at = 0
    while at < len(text):
        match = _TOKEN.match(text, at)
        if match is None:
            raise FilterError(at + 1, _bad_character(text[at]))
        kind = match.lastgroup or "space"
        if kind != "space":
            tokens.append(Token(kind, match.group(), at + 1))
        at = match.end()
    tokens.append(Token("end", "", len(text) + 1))
    return tokens


def string_value(token: Token) -> str:
    """The text of a string token, quotes removed and escapes resolved."""
    return _ESCAPE.sub(r"\1", token.text[1:-1])


def _bad_character(char: str) -> str:
    if char in "\"'":
        return f"the string starting here has no closing {char}"
    return f"unexpected character {char!r}"
