"""Errors that use cases raise; the web adapters turn them into each API's error shape."""

from __future__ import annotations

from gitward.domain.policy import DenialCode, Denied


def _printable(text: str) -> str:
    """`text` with lone surrogates (which JSON bodies can carry as `\\ud800`, and messages
    quote back) as U+FFFD: a response body must be UTF-8, and they have no UTF-8 form."""
    return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in text)


class ServiceError(Exception):
    status: int = 400
    #: The unit of work commits before the error is answered: what the work recorded about
    #: the refusal (the audit of a refused or lost ref change) stays. Set by `recorded`.
    commits: bool = False

    def __init__(self, message: str, detail: str | None = None) -> None:
        message = _printable(message)
        super().__init__(message)
        self.message = message
        self.detail = None if detail is None else _printable(detail)
        #: Headers its answer carries besides the error's own (a surface may add some).
        self.headers: dict[str, str] = {}

    def recorded(self) -> ServiceError:
        """This error, answered after the unit of work commits (see `commits`)."""
        self.commits = True
        return self


class BadRequest(ServiceError):
    status = 400


class Unauthenticated(ServiceError):
    status = 401


class Forbidden(ServiceError):
    status = 403


class NotFound(ServiceError):
    status = 404


class Conflict(ServiceError):
    """A duplicate. Cloud answers 400 for these, Server 409: the adapters choose."""

    status = 409


class TooManyRequests(ServiceError):
    status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def from_denial(denied: Denied, not_found_message: str) -> ServiceError:
    """The error for a policy denial: 404 hides the resource, 401 asks for credentials."""
    if denied.code is DenialCode.UNAUTHENTICATED:
        return Unauthenticated(denied.reason)
    if denied.code is DenialCode.NOT_FOUND:
        return NotFound(not_found_message)
    return Forbidden(denied.reason)
