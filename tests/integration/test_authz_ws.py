"""Exec, attach and port-forward need `create` however the stream is opened.

kubectl 1.32 opens exec with a WebSocket GET (verb `get`) and falls back to an SPDY POST
(verb `create`). Upstream, with AuthorizePodWebsocketUpgradeCreatePermission (on by
default), authorizes such a GET for `create` as well, so a read-only credential never gets
a shell. Against a real `tuik8s server`: a reader is refused both ways with upstream's
messages, an admin is not refused, and a caller allowed `get` but not `create` on
`pods/exec` (the gap the upstream gate closes) is refused by the second check.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.conftest import RunningServer, wait_for
from tuik8s.api import errors
from tuik8s.apiserver.authz import Attributes, Authorizer, attributes
from tuik8s.apiserver.request import User
from tuik8s.apiserver.tokens import add_token

POD = "ws-target"
NS = "default"


def upgrade(server: RunningServer, path: str, token: str) -> tuple[int, dict[str, Any]]:
    """A WebSocket upgrade GET as kubectl sends it; the status code and the Status body."""
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    req = urllib.request.Request(f"{server.url}{path}", headers={
        "Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
        "Sec-WebSocket-Protocol": "v5.channel.k8s.io", "Authorization": f"Bearer {token}",
    })
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


@pytest.fixture(scope="module")
def target(server: RunningServer) -> Iterator[str]:
    """A pod no kubelet runs: authorization is decided before any node is asked."""
    manifest = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": POD, "namespace": NS},
                "spec": {"containers": [{"name": "main", "image": "busybox"}]}}
    server.kubectl("apply", "-f", "-", input=json.dumps(manifest), check=True)
    yield POD
    server.kubectl("delete", "pod", POD, "--grace-period=0", "--force")


@pytest.fixture(scope="module")
def reader(server: RunningServer) -> str:
    token = add_token(server.data_dir, "ws-reader", ["tuik8s:readers"])
    wait_for(lambda: server.kubectl("--token", token, "get", "pods").returncode == 0, timeout=30, interval=0.2)
    return token


@pytest.mark.parametrize("sub", ["exec", "attach", "portforward"])
def test_a_reader_cannot_open_a_stream_over_a_websocket(server: RunningServer, target: str, reader: str,
                                                        sub: str) -> None:
    query = "?command=true&stdout=true" if sub == "exec" else ("?ports=80" if sub == "portforward" else "?stdout=true")
    code, status = upgrade(server, f"/api/v1/namespaces/{NS}/pods/{target}/{sub}{query}", reader)
    assert code == 403
    assert status["reason"] == "Forbidden"
    assert status["details"] == {"kind": "pods", "name": target}
    assert status["message"] == (f'pods "{target}" is forbidden: User "ws-reader" cannot get resource '
                                 f'"pods/{sub}" in API group "" in the namespace "{NS}"')


def test_kubectl_exec_as_a_reader_is_forbidden(server: RunningServer, target: str, reader: str) -> None:
    # kubectl's WebSocket GET is refused, it falls back to SPDY's POST, which is refused too
    result = server.kubectl("--token", reader, "exec", target, "--", "true")
    assert result.returncode == 1
    assert result.stderr.strip() == (f'Error from server (Forbidden): pods "{target}" is forbidden: User "ws-reader" '
                                     f'cannot create resource "pods/exec" in API group "" in the namespace "{NS}"')


def test_an_admin_gets_past_authorization(server: RunningServer, target: str) -> None:
    code, status = upgrade(server, f"/api/v1/namespaces/{NS}/pods/{target}/exec?command=true&stdout=true",
                           server.token)
    assert (code, status["message"]) == (400, f"pod {target} does not have a host assigned")
    result = server.kubectl("exec", target, "--", "true")
    assert result.stderr.strip() == f"Error from server (BadRequest): pod {target} does not have a host assigned"


class _ExecGetter(Authorizer):
    """Readers who may also `get` pods/exec (a role granting `get` on `pods/*`): the caller
    upstream's gate is for. Nothing in tuik8s grants this; the authorizer must not rely on that."""

    @staticmethod
    def _reader(user: User, attrs: Attributes) -> None:
        if attrs.verb == "get" and attrs.subresource == "exec":
            return
        Authorizer._reader(user, attrs)


async def _no_body() -> bytes:
    return b""


def test_get_without_create_on_pods_exec_is_refused() -> None:
    authz = _ExecGetter(store=None)  # type: ignore[arg-type]  # readers' rules never read the store
    user = User("ws-getter", ("tuik8s:readers", "system:authenticated"))
    ws = attributes("GET", f"/api/v1/namespaces/{NS}/pods/{POD}/exec", {"command": "true"})
    with pytest.raises(errors.StatusError) as denied:
        asyncio.run(authz.authorize(user, ws, _no_body))
    assert denied.value.code == 403
    assert denied.value.message == (f'pods "{POD}" is forbidden: User "ws-getter" cannot create resource '
                                         f'"pods/exec" in API group "" in the namespace "{NS}"')
    # a plain `get` of the pod itself asks for nothing more
    asyncio.run(authz.authorize(user, attributes("GET", f"/api/v1/namespaces/{NS}/pods/{POD}", {}), _no_body))
