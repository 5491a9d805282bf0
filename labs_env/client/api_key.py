"""The API key wrapper: the key is usable for requests but never printed."""

from __future__ import annotations

import os

from labs_env.errors import LabsValidationError

__all__ = ["API_KEY_ENV", "ApiKey"]

API_KEY_ENV = "LABS_API_KEY"


class ApiKey:
    """An API key whose ``repr``/``str`` show at most ``lab_…`` and the last 4 characters.

    Example:
        >>> ApiKey("lab_0123456789abcdef")
        ApiKey('lab_…cdef')
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    @classmethod
    def resolve(cls, value: str | ApiKey | None) -> ApiKey:
        """The key given, else ``$LABS_API_KEY``; a clear error when neither is set."""
        if isinstance(value, ApiKey):
            return value
        if value is None:
            value = os.environ.get(API_KEY_ENV)
        if value is None or not value.strip():
            raise LabsValidationError(
                "api_key",
                f"no API key: none was passed and {API_KEY_ENV} is not set",
                f"pass api_key=... or export {API_KEY_ENV}=lab_...",
            )
        if not isinstance(value, str):
            raise LabsValidationError("api_key", "must be a string", "pass the key as a str")
        value = value.strip()
        if any(ch in value for ch in "\r\n\x00 "):
            raise LabsValidationError(
                "api_key", "contains whitespace or control characters", "copy the key again"
            )
        return cls(value)

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
        """``text`` with every occurrence of the key replaced by its masked form."""
        return text.replace(self._value, self.masked()) if self._value in text else text

    def __repr__(self) -> str:
        return f"ApiKey({self.masked()!r})"

    __str__ = __repr__

    def __reduce__(self) -> str:
        raise TypeError("ApiKey cannot be pickled (it would write the key out)")
