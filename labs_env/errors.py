"""The error tree. ``LabsError`` is the root.

Two branches are kept apart: ``APIError`` (the remote side failed or refused; carries what the
service said) and ``LabsValidationError`` (you used the library wrong; raised before anything
is sent, naming the field and the fix). No message here ever contains the API key.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "EpisodeCompleteError",
    "EpisodeNotFoundError",
    "InternalServerError",
    "LabsError",
    "LabsValidationError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "TurnMismatchError",
    "error_for_status",
    "is_infrastructure_error",
]


class LabsError(Exception):
    """Root of every error raised by labs_env."""

    def __reduce__(self) -> tuple[Any, ...]:
        # Picklable whatever the subclass's constructor takes (Ray and multiprocessing send
        # errors between processes): rebuild from the message args and the attributes.
        return (_restore_error, (type(self), self.args, dict(self.__dict__)))


def _restore_error(cls: type[LabsError], args: tuple[Any, ...], state: dict[str, Any]) -> LabsError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class LabsValidationError(LabsError, ValueError):
    """Bad arguments, detected before anything is sent.

    Attributes:
        field: the offending argument or field path (e.g. ``"messages[3].content"``).
        fix: a short instruction saying how to fix it.
    """

    def __init__(self, field: str, problem: str, fix: str = "") -> None:
        self.field = field
        self.problem = problem
        self.fix = fix
        text = f"{field}: {problem}"
        if fix:
            text += f" (fix: {fix})"
        super().__init__(text)


class APIError(LabsError):
    """The remote side failed, refused, or answered something unusable."""

    def __init__(self, message: str, *, request_id: str | None = None) -> None:
        self.message = message
        self.request_id = request_id
        super().__init__(message if request_id is None else f"{message} (request_id={request_id})")


class APIConnectionError(APIError):
    """The request could not be sent or the connection broke before a response arrived."""


class APITimeoutError(APIConnectionError):
    """The request timed out."""


class APIResponseValidationError(APIError):
    """The response broke the documented shape (bad JSON, wrong type, reward outside [0, 1])."""

    def __init__(
        self, message: str, *, status_code: int | None = None, request_id: str | None = None
    ) -> None:
        self.status_code = status_code
        super().__init__(message, request_id=request_id)


class TurnMismatchError(APIError):
    """The service's turn counter disagrees with the turns this client submitted.

    Typically a duplicate submission after a lost response: continuing would silently fork the
    trajectory, so the episode must be abandoned.
    """


class APIStatusError(APIError):
    """An HTTP error status from the service: ``status_code``, ``message``, ``request_id``."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        request_id: str | None = None,
    ) -> None:
        self.status_code = status_code
        super().__init__(f"{status_code} {message}", request_id=request_id)
        self.message = message


class BadRequestError(APIStatusError):
    """400: the service rejected the input."""


class EpisodeCompleteError(BadRequestError):
    """400 ``Episode already complete``: a turn was submitted to a finished episode."""


class AuthenticationError(APIStatusError):
    """401: invalid or missing API key."""


class PermissionDeniedError(APIStatusError):
    """403: e.g. ``No active subscription for collection``."""


class NotFoundError(APIStatusError):
    """404."""


class EpisodeNotFoundError(NotFoundError):
    """404 ``Episode not found``: unknown or expired (24 h of inactivity) episode."""


class RateLimitError(APIStatusError):
    """429: the key's request quota is spent.

    Attributes:
        reset_at: Unix epoch seconds when the window resets (``X-RateLimit-Reset``), if known.
        retry_after: seconds to wait (``Retry-After``), if sent.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int = 429,
        request_id: str | None = None,
        reset_at: float | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, request_id=request_id)
        self.reset_at = reset_at
        self.retry_after = retry_after


class InternalServerError(APIStatusError):
    """5xx."""


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    429: RateLimitError,
}


def error_for_status(
    status_code: int,
    message: str,
    *,
    request_id: str | None = None,
    reset_at: float | None = None,
    retry_after: float | None = None,
) -> APIStatusError:
    """Map a status code (and the service's known messages) to the typed error."""
    lowered = message.lower()
    if status_code == 404 and "episode not found" in lowered:
        return EpisodeNotFoundError(message, status_code=404, request_id=request_id)
    if status_code in (400, 409) and "already complete" in lowered:
        return EpisodeCompleteError(message, status_code=status_code, request_id=request_id)
    if status_code == 429:
        return RateLimitError(
            message, request_id=request_id, reset_at=reset_at, retry_after=retry_after
        )
    if status_code >= 500:
        return InternalServerError(message, status_code=status_code, request_id=request_id)
    cls = _BY_STATUS.get(status_code, APIStatusError)
    return cls(message, status_code=status_code, request_id=request_id)


_TRANSIENT_STATUSES = frozenset({408, 409, 425, 429})


def is_infrastructure_error(exc: BaseException) -> bool:
    """Whether ``exc`` is a failure of the service or the network, not of the caller.

    Infrastructure: connection errors and timeouts, 5xx, 429 after the client's retries, a
    response of the wrong shape, a lost or expired episode, a duplicated turn. Not: a bad key
    (401), no access (403), an unknown scenario (404), a rejected request (400), a malformed
    action, any non-Labs exception (a bug) — those are raised whatever ``on_error`` says.
    """
    if isinstance(
        exc,
        (
            APIConnectionError,
            APIResponseValidationError,
            TurnMismatchError,
            EpisodeNotFoundError,
            EpisodeCompleteError,
        ),
    ):
        return True
    if isinstance(exc, APIStatusError):
        return exc.status_code >= 500 or exc.status_code in _TRANSIENT_STATUSES
    return False
