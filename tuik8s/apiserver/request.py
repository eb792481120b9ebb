"""The transport-neutral request and response the REST layer works on.

The aiohttp app and the in-process transport both turn their requests into an
`ApiRequest` and send back an `ApiResponse`, so every client, local or remote, goes
through the same authentication, validation, defaulting and watch code.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from tuik8s.api import errors

JSON = "application/json"


@dataclass
class User:
    name: str
    groups: tuple[str, ...] = ()


@dataclass
class ApiRequest:
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes = b""
    user: User | None = None

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name, default)


@dataclass
class ApiResponse:
    status: int = 200
    body: bytes = b""
    content_type: str = JSON
    headers: dict[str, str] = field(default_factory=dict)
    stream: AsyncIterator[bytes] | None = None


def json_response(obj: Any, status: int = 200, content_type: str = JSON) -> ApiResponse:
    return ApiResponse(status, orjson.dumps(obj), content_type)


def error_response(err: errors.StatusError) -> ApiResponse:
    return ApiResponse(err.code, orjson.dumps(err.to_status()))


def success_status(details: dict[str, Any] | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
    if details:
        status["details"] = details
    return status
