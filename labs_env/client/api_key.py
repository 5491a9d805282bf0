"""The API key wrapper: the key is usable for requests but never printed."""

from __future__ import annotations

import os
import re
import unicodedata

from labs_env.errors import LabsValidationError

__all__ = ["API_KEY_ENV", "ApiKey"]

API_KEY_ENV = "LABS_API_KEY"
#: Runs of this many consecutive characters of the key are recognisable: redacted.
_RUN = 8
_PRINTABLE = re.compile("[!-~]+")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _describe(char: str) -> str:
    """A stray character by code point and name (the character alone: never the key)."""
    name = unicodedata.name(char, "a control character")
    return f"U+{ord(char):04X} ({name})"


def _spans(text: str, runs: frozenset[str], size: int) -> list[tuple[int, int]]:
    """The merged ``[start, stop)`` spans of ``text`` covered by ``runs`` (``size`` long)."""
    spans: list[tuple[int, int]] = []
    for start in range(len(text) - size + 1):
        if text[start : start + size] in runs:
            if spans and start <= spans[-1][1]:
                spans[-1] = (spans[-1][0], start + size)
            else:
                spans.append((start, start + size))
    return spans


class ApiKey:
    """An API key whose ``repr``/``str`` show at most ``lab_…`` and the last 4 characters.

    A key is printable ASCII without spaces (what an ``Authorization`` header can carry); a
    stray character (a pasted ``…``, a zero-width space, a tab) is refused when the key is
    built, by an error that does not show the key.

    Example:
        >>> ApiKey("lab_0123456789abcdef")
        ApiKey('lab_…cdef')
    """

    __slots__ = ("_runs", "_value")

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise LabsValidationError(
                "api_key", f"must be a string, got {type(value).__name__}", "pass the key as a str"
            )
        if not _PRINTABLE.fullmatch(value):
            if not value:
                raise LabsValidationError("api_key", "is empty", "pass the key (lab_...)")
            position, char = next((i, c) for i, c in enumerate(value) if not "!" <= c <= "~")
            raise LabsValidationError(
                "api_key",
                f"contains {_describe(char)} at position {position + 1} of {len(value)}, "
                "which an HTTP header cannot carry",
                "copy the key again (keys are printable ASCII without spaces)",
            )
        self._value = value
        self._runs: frozenset[str] | None = None

    @classmethod
    def resolve(cls, value: object) -> ApiKey:
        """The key given, else ``$LABS_API_KEY``; a clear error when neither is set."""
        if isinstance(value, ApiKey):
            return value
        if value is None:
            value = os.environ.get(API_KEY_ENV)
        if isinstance(value, str) and not value.strip():
            value = None
        if value is None:
            raise LabsValidationError(
                "api_key",
                f"no API key: none was passed and {API_KEY_ENV} is not set",
                f"pass api_key=... or export {API_KEY_ENV}=lab_...",
            )
        if not isinstance(value, str):  # the value itself is not shown: it may be the key
            raise LabsValidationError(
                "api_key", f"must be a string, got {type(value).__name__}", "pass the key as a str"
            )
        return cls(value.strip())

    def reveal(self) -> str:
        """The key itself, for the ``Authorization`` header only."""
        return self._value

    def masked(self) -> str:
        """``lab_…abcd`` for keys long enough to keep most of them hidden, else ``****``."""
        if len(self._value) >= 16:
            prefix = "lab_" if self._value.startswith("lab_") else ""
            return f"{prefix}…{self._value[-4:]}"
        return "****"

    def redact(self, text: str) -> str:
        """``text`` with the key masked wherever it appears: in any letter case, and any run
        of 8 or more of its consecutive characters (a key cut short by a server's truncation).
        """
        size = min(_RUN, len(self._value))
        if len(text) < size:
            return text
        if self._runs is None:
            key = self._value.translate(_ASCII_LOWER)
            self._runs = frozenset(key[i : i + size] for i in range(len(key) - size + 1))
        spans = _spans(text.translate(_ASCII_LOWER), self._runs, size)
        if not spans:
            return text
        parts, end = [], 0
        for start, stop in spans:
            parts += [text[end:start], self.masked()]
            end = stop
        parts.append(text[end:])
        return "".join(parts)

    def __repr__(self) -> str:
        return f"ApiKey({self.masked()!r})"

    __str__ = __repr__

    def __reduce__(self) -> str:
        raise TypeError("ApiKey cannot be pickled (it would write the key out)")
