"""Passing a request whose endpoint failed to the next endpoint, as ingress-nginx does.

ingress-nginx runs with `proxy_next_upstream error timeout` and
`proxy_next_upstream_tries 3`: when the connection to a pod fails, or the pod closes or
resets it before the first byte of its response, nginx sends the request to another
endpoint, at most three tries in all, and only while nothing has gone to the client.
Since nginx 1.9.13 a POST, LOCK or PATCH that was already sent upstream is not passed
on (it may have taken effect; `non_idempotent` would allow it), and neither is a
request whose body was streamed rather than buffered (nothing is left to send again)
nor one whose response head could not be parsed (`invalid_header` is not in the list).
An error on a kept-alive upstream connection costs no try, as in nginx: the pod may
only have closed an idle connection as the request went out, so the request goes to the
same endpoint once more on a new connection, and the endpoint stays in rotation. Any
other failure takes the endpoint out of rotation for a few seconds (router.py).

mitmproxy's addon hooks cannot do this: after the `error` hook the HTTP stream sends
its 502 unconditionally, the `response` hook never fires for a request without a
response, and client replay makes a new flow whose answer goes nowhere near the
waiting client. The retry has to happen inside the stream, so `NextUpstream` (an addon)
uses the documented `next_layer` hook to put `RetryingHttpLayer` where mitmproxy would
put its `HttpLayer`; its streams are mitmproxy's `HttpStream` with one changed step,
`handle_protocol_error`. That step relies on `HttpStream`'s states, which mitmproxy does
not promise across major versions: on another major version (or with
`TUIK8S_INGRESS_RETRY=off`) the layer is left as it is and a failed request gets
mitmproxy's 502, while the router's connect probe still moves refused connections on.

When the stream gives up before any response byte (no endpoint left, a POST already
sent, the third try failed), the client gets one plain-text 502 naming the service and
what happened, on a connection that stays open, instead of mitmproxy's HTML page.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Collection
from typing import Protocol

from mitmproxy import http
from mitmproxy.connection import Server
from mitmproxy.proxy import events, layer
from mitmproxy.proxy.context import Context
from mitmproxy.proxy.layers.http import HttpLayer, HTTPMode, HttpStream, SendHttp
from mitmproxy.proxy.layers.http._events import (
    RequestData,
    RequestEndOfMessage,
    RequestHeaders,
    RequestProtocolError,
    RequestTrailers,
    ResponseProtocolError,
)
from mitmproxy.version import VERSION

log = logging.getLogger(__name__)

SUPPORTED_MAJOR = "11."
TRIES = 3  # ingress-nginx's proxy-next-upstream-tries
# Sent upstream, these are not passed to another endpoint (nginx's rule since 1.9.13).
NON_IDEMPOTENT = frozenset(("POST", "LOCK", "PATCH"))
# mitmproxy's message for a response head it cannot parse (nginx: invalid_header)
_INVALID_RESPONSE = "Cannot parse HTTP response"
_TEXT = {"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store"}

Address = tuple[str, int]


def enabled() -> bool:
    return VERSION.startswith(SUPPORTED_MAJOR) and os.environ.get("TUIK8S_INGRESS_RETRY", "on") != "off"


class Upstreams(Protocol):
    """What a stream asks the router when an endpoint failed."""

    def failed(self, address: Address) -> None:
        """`address` broke a request: out of rotation for a while."""

    def next_endpoint(self, failed: Address, tried: Collection[Address]) -> Address | None:
        """Another endpoint of `failed`'s Service, none of `tried` and none marked down."""

    def service_of(self, address: Address) -> str | None:
        """`namespace/name` of the Service whose endpoint `address` is."""


def bad_gateway(service: str | None, failed: Address | None, reason: str, tries: int) -> http.Response:
    what = f"service {service}" if service else "the upstream"
    where = f"endpoint {failed[0]}:{failed[1]}" if failed else "the endpoint"
    tried = f" after {tries} tries" if tries > 1 else ""
    body = f"502 Bad Gateway: {what}: {where} failed before answering ({reason}){tried} (tuik8s ingress)\n"
    return http.Response.make(502, body.encode(), _TEXT)


class RetryingStream(HttpStream):
    """mitmproxy's HTTP stream that passes a failed request on to another endpoint."""

    tried: tuple[Address, ...] = ()
    passed_idle = False

    def __init__(self, context: Context, stream_id: int, upstreams: Upstreams) -> None:
        super().__init__(context, stream_id)
        self.upstreams = upstreams
        # `make_server_connection` replaces the stream's server with the upstream
        # connection only when it is open, and the caller then writes the request at
        # once: while this placeholder is still there, nothing has been sent.
        self.unconnected = context.server

    @property
    def sent(self) -> bool:
        return self.context.server is not self.unconnected

    def handle_protocol_error(
        self, event: RequestProtocolError | ResponseProtocolError
    ) -> layer.CommandGenerator[None]:
        if not (
            isinstance(event, ResponseProtocolError)
            and self.server_state == self.state_wait_for_response_headers
            and self.client_state == self.state_done
        ):
            # a client error, a failure mid-response or mid-upload: mitmproxy's handling
            yield from super().handle_protocol_error(event)
            return
        request = self.flow.request
        failed = self._failed_address()
        sent = self.sent
        may_pass = failed is not None and (
            not event.message.startswith(_INVALID_RESPONSE)  # nginx's invalid_header: not "error"
            and (not sent or (request.raw_content is not None and request.method.upper() not in NON_IDEMPOTENT))
        )
        nxt: Address | None = None
        if may_pass and sent and not self.passed_idle and _was_idle(self.context.server, request):
            # as nginx: an error on a kept-alive connection costs no try and leaves the
            # endpoint in rotation; the pod may only have closed it as we wrote to it
            self.passed_idle = True
            nxt = failed
        elif failed is not None:
            self.upstreams.failed(failed)
            if failed not in self.tried:
                self.tried = (*self.tried, failed)
            if may_pass and len(self.tried) < TRIES:
                nxt = self.upstreams.next_endpoint(failed, self.tried)
        service = self.upstreams.service_of(failed) if failed else None
        if nxt is not None:
            log.info("%s: %s failed (%s), passing %s %s to %s", service, failed and _fmt(failed), event.message,
                     request.method, request.path, _fmt(nxt))
            yield from self._send_again(nxt)
            return
        log.warning("%s: %s failed (%s), %s %s answered 502", service, failed and _fmt(failed), event.message,
                    request.method, request.path)
        self.flow.response = bad_gateway(service, failed, event.message, max(1, len(self.tried)))
        yield from self.send_response()

    def _failed_address(self) -> Address | None:
        # sent: the connection the request went out on; not sent: the connect failed,
        # and the stream still holds the connection of an earlier request, if any
        if self.sent:
            address = self.context.server.address
        else:
            address = (self.flow.request.host, self.flow.request.port)
        return None if address is None else (address[0], address[1])

    def _send_again(self, address: Address) -> layer.CommandGenerator[None]:
        request = self.flow.request
        request.data.host, request.data.port = address
        self.context.server = self.unconnected  # so a failed connect reads as "not sent"
        if not (yield from self.make_server_connection()):
            return  # `handle_protocol_error` has already tried further or answered
        content = request.raw_content
        server = self.context.server
        yield SendHttp(RequestHeaders(self.stream_id, request, not (content or request.trailers)), server)
        if content:
            yield SendHttp(RequestData(self.stream_id, content), server)
        if request.trailers:
            yield SendHttp(RequestTrailers(self.stream_id, request.trailers), server)
        yield SendHttp(RequestEndOfMessage(self.stream_id), server)


class RetryingHttpLayer(HttpLayer):
    """mitmproxy's HTTP layer whose streams are `RetryingStream`s."""

    def __init__(self, context: Context, mode: HTTPMode, upstreams: Upstreams) -> None:
        super().__init__(context, mode)
        self.upstreams = upstreams

    def make_stream(self, stream_id: int) -> layer.CommandGenerator[None]:
        stream = self.streams[stream_id] = RetryingStream(self.context.fork(), stream_id, self.upstreams)
        yield from self.event_to_child(stream, events.Start())


class NextUpstream:
    """The addon: HTTP layers the `next_layer` hook settles on become `RetryingHttpLayer`s."""

    def __init__(self, upstreams: Upstreams) -> None:
        self.upstreams = upstreams
        self.enabled = enabled()

    def next_layer(self, nextlayer: layer.NextLayer) -> None:
        chosen = nextlayer.layer
        if self.enabled and type(chosen) is HttpLayer:
            # the chosen layer has not run yet: it only registered itself in the stack
            context = chosen.context
            context.layers.remove(chosen)
            nextlayer.layer = RetryingHttpLayer(context, chosen.mode, self.upstreams)


def _was_idle(server: Server, request: http.Request) -> bool:
    """Whether the connection was open before the request came: a kept-alive one."""
    setup, start = server.timestamp_tcp_setup, request.timestamp_start
    return setup is not None and start is not None and setup < start


def _fmt(address: Address) -> str:
    return f"{address[0]}:{address[1]}"
