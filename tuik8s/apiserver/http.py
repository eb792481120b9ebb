"""The aiohttp application: authentication, routing, and turning errors into Status.

Everything under /api and /apis goes to the generic REST layer; discovery, OpenAPI and
health endpoints are answered here. No exception leaves as a traceback: a
`StatusError` is the client's Status body, anything else is logged and becomes a
500 InternalError Status.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import orjson
from aiohttp import web

from tuik8s.api import errors
from tuik8s.apiserver import discovery, metrics, openapi, openapiv2
from tuik8s.apiserver.authz import Authorizer, attributes
from tuik8s.apiserver.request import ApiRequest, ApiResponse, User, error_response, json_response
from tuik8s.apiserver.rest import Resources
from tuik8s.store.base import StorageError

log = logging.getLogger(__name__)

MAX_BODY = 3 * 1024 * 1024  # kube-apiserver's request body limit
PUBLIC_PATHS = frozenset({"/version", "/healthz", "/livez", "/readyz"})


class Authenticator(Protocol):
    def authenticate(self, token: str) -> Any: ...


def to_api_request(request: web.Request, body: bytes, user: User | None) -> ApiRequest:
    return ApiRequest(
        method=request.method,
        path=request.path,
        query=request.query,
        headers=request.headers,
        body=body,
        user=user,
    )


async def send(request: web.Request, resp: ApiResponse) -> web.StreamResponse:
    if resp.stream is None:
        headers = dict(resp.headers)
        headers["Content-Type"] = resp.content_type
        return web.Response(status=resp.status, body=resp.body, headers=headers)
    stream = web.StreamResponse(status=resp.status, headers={"Content-Type": resp.content_type, **resp.headers})
    stream.enable_chunked_encoding()
    await stream.prepare(request)
    gen = resp.stream
    try:
        async for chunk in gen:
            await stream.write(chunk)
    except (ConnectionResetError, ConnectionError):
        pass
    finally:
        await gen.aclose()  # type: ignore[attr-defined]
    try:
        await stream.write_eof()
    except (ConnectionResetError, ConnectionError):
        pass
    return stream


class ApiServerApp:
    """Builds the aiohttp Application around a `Resources`."""

    def __init__(
        self, resources: Resources, authenticator: Authenticator | None, authorizer: Authorizer | None = None,
    ) -> None:
        self.resources = resources
        self.authenticator = authenticator
        self.authorizer = authorizer

    def authenticate(self, request: web.Request) -> User | None:
        if self.authenticator is None:
            return User("admin", ("system:masters",))
        auth = request.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        found = self.authenticator.authenticate(token.strip())
        if found is None:
            return None
        return User(found.name, tuple(getattr(found, "groups", ()) or ()))

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            if request.path not in PUBLIC_PATHS:
                user = self.authenticate(request)
                if user is None:
                    return await send(request, error_response(errors.unauthorized()))
                request["user"] = user
                if self.authorizer is not None and not self.authorizer.unrestricted(user):
                    await self.authorizer.authorize(
                        user, attributes(request.method, request.path, request.query), request.read,
                        request.headers.get("Content-Type", ""),
                    )
            return await handler(request)
        except errors.StatusError as e:
            return await send(request, error_response(e))
        except web.HTTPException as e:
            if e.status == 413:
                return await send(request, error_response(errors.request_entity_too_large(MAX_BODY)))
            if e.status == 404:
                return await send(request, error_response(errors.StatusError(404, "NotFound", "the server could not find the requested resource")))
            if e.status == 405:
                return await send(request, error_response(errors.method_not_allowed("the server does not allow this method on the requested resource")))
            raise
        except StorageError as e:
            log.error("storage: %s", e)
            return await send(request, error_response(errors.StatusError(500, "InternalError", str(e))))
        except Exception as e:  # noqa: BLE001 - no traceback reaches a client
            log.exception("internal error serving %s %s", request.method, request.path)
            return await send(request, error_response(errors.internal(f"an error on the server ({type(e).__name__}) has prevented the request from succeeding")))

    async def resource(self, request: web.Request) -> web.StreamResponse:
        started = time.monotonic()
        # body_exists, not can_read_body: the authorizer may have read (and cached) it already
        body = await request.read() if request.body_exists else b""
        api_req = to_api_request(request, body, request.get("user"))
        resp = await self.resources.handle(api_req)
        if resp.stream is None:
            metrics.REQUEST_DURATION.observe(time.monotonic() - started, request.method)
        return await send(request, resp)

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(text=metrics.render(), content_type="text/plain")

    async def version(self, request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(discovery.version_info()), content_type="application/json")

    async def health(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    def _discovery(self, request: web.Request, aggregated: Callable[[], dict[str, Any]], legacy: Callable[[], dict[str, Any]]) -> web.Response:
        if discovery.wants_aggregated(request.headers.get("Accept", "")):
            return web.Response(body=orjson.dumps(aggregated()), headers={"Content-Type": discovery.AGGREGATED_CONTENT_TYPE})
        return web.Response(body=orjson.dumps(legacy()), content_type="application/json")

    async def api(self, request: web.Request) -> web.Response:
        return self._discovery(request, discovery.aggregated_core, discovery.api_versions)

    async def apis(self, request: web.Request) -> web.Response:
        return self._discovery(request, discovery.aggregated_groups, discovery.api_group_list)

    async def group(self, request: web.Request) -> web.StreamResponse:
        doc = discovery.api_group(request.match_info["group"])
        if doc is None:
            raise errors.StatusError(404, "NotFound", "the server could not find the requested resource")
        return await send(request, json_response(doc))

    async def group_version(self, request: web.Request) -> web.StreamResponse:
        group = request.match_info.get("group", "")
        doc = discovery.api_resource_list(group, request.match_info["version"])
        if doc is None:
            raise errors.StatusError(404, "NotFound", "the server could not find the requested resource")
        return await send(request, json_response(doc))

    def build(self, streaming: Callable[[web.Application], None] | None = None) -> web.Application:
        """`streaming` mounts handlers (pods/exec, attach, portforward) ahead of the generic REST routes."""
        app = web.Application(middlewares=[self.middleware], client_max_size=MAX_BODY)
        r = app.router
        r.add_get("/version", self.version)
        for path in PUBLIC_PATHS - {"/version"}:
            r.add_get(path, self.health)
        r.add_get("/api", self.api)
        r.add_get("/apis", self.apis)
        r.add_get("/api/{version}", self.group_version)
        r.add_get("/apis/{group}", self.group)
        r.add_get("/apis/{group}/{version}", self.group_version)
        r.add_get("/metrics", self.metrics)
        openapi.add_routes(app)
        openapiv2.add_routes(app)
        if streaming is not None:
            streaming(app)
        r.add_route("*", "/api/{tail:.+}", self.resource)
        r.add_route("*", "/apis/{tail:.+}", self.resource)
        return app
