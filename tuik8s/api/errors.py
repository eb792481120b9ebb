"""API errors as Kubernetes states them: a `metav1.Status` with code, reason and causes.

Everything below the HTTP layer raises `StatusError`; the API server turns it into the
Status body kubectl prints as `Error from server (<reason>): <message>`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class FieldError:
    """One invalid field: `type` is a metav1.CauseType such as `FieldValueRequired`."""

    field: str
    message: str
    type: str = "FieldValueInvalid"

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


_CONTROL = {c: f"\\x{c:02x}" for c in range(32)} | {ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t", 127: "\\x7f"}


def one_line(message: str) -> str:
    """`message` with control characters escaped: a name or key a client sent, echoed in an
    error, must not break the one line kubectl prints (Go's %q escapes them the same way)."""
    return message.translate(_CONTROL) if not message.isprintable() else message


class StatusError(Exception):
    """An error that the API reports as a `Status` body."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def to_status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": one_line(self.message),
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            status["details"] = self.details
        return status


def _details(name: str | None, group: str, kind: str) -> dict[str, Any]:
    details: dict[str, Any] = {"kind": kind}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    return details


def not_found(group_resource: str, name: str, group: str = "", plural: str = "") -> StatusError:
    return StatusError(
        404,
        "NotFound",
        f'{group_resource} "{name}" not found',
        details=_details(name, group, plural or group_resource.split(".")[0]),
    )


def already_exists(group_resource: str, name: str, group: str = "") -> StatusError:
    return StatusError(
        409,
        "AlreadyExists",
        f'{group_resource} "{name}" already exists',
        details=_details(name, group, group_resource.split(".")[0]),
    )


def conflict(group_resource: str, name: str, why: str, group: str = "") -> StatusError:
    return StatusError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {group_resource} "{name}": {why}',
        details=_details(name, group, group_resource.split(".")[0]),
    )


def invalid(kind: str, name: str, errors: list[FieldError], group: str = "") -> StatusError:
    """422 Invalid, naming every bad field as a cause (kubectl prints the message)."""
    shown = ", ".join(str(e) for e in errors) or "invalid object"
    if len(errors) > 1:
        shown = f"[{shown}]"
    details = _details(name, group, kind)
    details["causes"] = [{"reason": e.type, "message": e.message, "field": e.field} for e in errors]
    return StatusError(422, "Invalid", f'{kind}{"." + group if group else ""} "{name}" is invalid: {shown}', details=details)


def bad_request(message: str) -> StatusError:
    return StatusError(400, "BadRequest", message)


def method_not_allowed(message: str) -> StatusError:
    return StatusError(405, "MethodNotAllowed", message)


def gone(message: str) -> StatusError:
    return StatusError(410, "Expired", message)


def unauthorized() -> StatusError:
    return StatusError(401, "Unauthorized", "Unauthorized")


def forbidden(message: str) -> StatusError:
    return StatusError(403, "Forbidden", message)


def unsupported_media_type(content_type: str) -> StatusError:
    return StatusError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format: {content_type}")


def request_entity_too_large(limit: int) -> StatusError:
    return StatusError(413, "RequestEntityTooLarge", f"the request body is larger than {limit} bytes")


def internal(message: str) -> StatusError:
    return StatusError(500, "InternalError", message)
