"""What can go wrong talking to an API server, without the HTTP library leaking out.

Two failures matter to a caller and they call for different reactions. An `ApiError`
means the server answered and said no (a 404, a 409 on a stale resourceVersion, a 410
on a compacted watch): the caller re-reads, retries or gives up according to the code.
A `TransportError` means no answer came (refused, reset, TLS, timeout): the caller
retries later. Both print as one line a user can read, as kubectl would show them.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import orjson

# the reason kube-apiserver gives each code when the body is not a Status
# (client-go's newUnstructuredResponseError)
_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


class ClientError(Exception):
    """Anything the client raises about a request: an `ApiError` or a `TransportError`."""


class ApiError(ClientError):
    """The server answered with a failure `Status` (or a non-2xx body standing in for one)."""

    def __init__(
        self, code: int, reason: str, message: str, status: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.status: dict[str, Any] = status if status is not None else {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code,
        }

    @property
    def details(self) -> dict[str, Any]:
        details = self.status.get("details")
        return details if isinstance(details, dict) else {}

    @classmethod
    def from_status(cls, status: dict[str, Any], code: int | None = None) -> ApiError:
        """From a decoded `Status`; `code` is the HTTP status when the body has none."""
        raw_code = status.get("code")
        final = raw_code if isinstance(raw_code, int) and raw_code else (code or 500)
        reason = status.get("reason") or _REASONS.get(final, "Unknown")
        message = status.get("message") or _default_message(final)
        return cls(final, str(reason), str(message), status)

    @classmethod
    def from_response(cls, code: int, content_type: str, body: bytes) -> ApiError:
        """From an HTTP answer: its `Status` body when it has one, else the code alone."""
        decoded: Any = None
        if body and ("json" in content_type or body.lstrip()[:1] == b"{"):
            try:
                decoded = orjson.loads(body)
            except orjson.JSONDecodeError:
                decoded = None
        if isinstance(decoded, dict) and decoded.get("kind") == "Status":
            return cls.from_status(decoded, code)
        reason = _REASONS.get(code, "Unknown")
        text = _one_line(body.decode("utf-8", "replace")) if body else ""
        message = _default_message(code)
        if text:
            message = f"{message}: {text[:200]}"
        return cls(code, reason, message)

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"ApiError({self.code}, {self.reason!r}, {self.message!r})"


class TransportError(ClientError):
    """No answer from the server: connection refused or reset, TLS failure, timeout."""


def is_not_found(e: BaseException) -> bool:
    return isinstance(e, ApiError) and e.code == 404


def is_conflict(e: BaseException) -> bool:
    """A stale write (409 Conflict), not a create of an existing name (409 AlreadyExists)."""
    return isinstance(e, ApiError) and e.code == 409 and e.reason != "AlreadyExists"


def is_already_exists(e: BaseException) -> bool:
    return isinstance(e, ApiError) and e.code == 409 and e.reason == "AlreadyExists"


def is_gone(e: BaseException) -> bool:
    """410: a watch or continue token from a resourceVersion the server has compacted."""
    return isinstance(e, ApiError) and e.code == 410


def _default_message(code: int) -> str:
    if code == 404:
        return "the server could not find the requested resource"
    if code == 401:
        return "the server has asked for the client to provide credentials"
    if code == 403:
        return "the server does not allow access to the requested resource"
    try:
        phrase = HTTPStatus(code).phrase.lower()
    except ValueError:
        phrase = "an unexpected answer"
    return f"the server answered {code} {phrase}"


def _one_line(text: str) -> str:
    return " ".join(text.split())
