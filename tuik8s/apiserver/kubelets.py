"""The API server's client of kubelets: `kubectl logs` is proxied to the pod's node.

As upstream, the API server finds the node's InternalIP and kubelet port on the Node
object and calls the kubelet's log endpoint, authenticating with a bearer token that
kubelets are given at start (`DATA/kubelet-client-token`), so nobody else on the lab
network can read logs by calling a kubelet directly. Kubelets serve self-signed
certificates, which the API server does not verify (upstream's default without
--kubelet-certificate-authority).
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from tuik8s.api import errors
from tuik8s.apiserver.request import ApiRequest, ApiResponse
from tuik8s.store.base import Store
from tuik8s.store.sqlite import decode

log = logging.getLogger(__name__)

TOKEN_FILE = "kubelet-client-token"
LOG_PARAMS = ("follow", "tailLines", "previous", "timestamps", "sinceSeconds", "sinceTime", "limitBytes")
DEFAULT_PORT = 10250
METRICS_URL_ANNOTATION = "tuik8s.io/resource-metrics-url"


def ensure_token(data_dir: Path) -> str:
    path = data_dir / TOKEN_FILE
    if path.exists():
        return path.read_text().strip()
    token = secrets.token_urlsafe(32)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    os.replace(tmp, path)
    return token


def _node_endpoint(node: dict[str, Any]) -> tuple[str, int]:
    status = node.get("status") or {}
    addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or [] if isinstance(a, dict)}
    address = addresses.get("InternalIP") or addresses.get("Hostname") or ""
    port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port") or DEFAULT_PORT
    return str(address), int(port)


class KubeletClient:
    def __init__(self, store: Store, token: str) -> None:
        self.store = store
        self.token = token
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=False),
                timeout=aiohttp.ClientTimeout(total=None, connect=5, sock_connect=5),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def resource_metrics(self, node: dict[str, Any]) -> str:
        """The node kubelet's `/metrics/resource` (for the metrics scraper); raises on failure.

        A hollow node has no kubelet server of its own: its process serves all its nodes'
        synthetic figures on one endpoint and names it in the Node's `METRICS_URL_ANNOTATION`.
        That endpoint is not sent this client's token: it is no kubelet, and anyone who
        can write a Node annotation could name it.
        """
        annotations = (node.get("metadata") or {}).get("annotations") or {}
        headers: dict[str, str] = {}
        url = str(annotations.get(METRICS_URL_ANNOTATION) or "")
        if not url:
            address, port = _node_endpoint(node)
            if not address:
                raise ValueError("the node reports no address")
            host = f"[{address}]" if ":" in address else address
            url = f"https://{host}:{port}/metrics/resource"
            headers["Authorization"] = f"Bearer {self.token}"
        async with self.session().get(url, headers=headers) as resp:
            body = await resp.text()
            if resp.status != 200:
                raise ValueError(f"{url} answered {resp.status}: {body.strip()[:200]}")
            return body

    def endpoint(self, pod: dict[str, Any], what: str) -> tuple[str, int]:
        """(host, port) of the kubelet running `pod`; `what` names the errand in errors."""
        meta = pod["metadata"]
        node_name = (pod.get("spec") or {}).get("nodeName") or ""
        stored = self.store.get("nodes", "", node_name)
        if stored is None:
            raise errors.bad_request(f'node "{node_name}" of pod "{meta["name"]}" is gone: its {what} went with it')
        address, port = _node_endpoint(decode(stored))
        if not address:
            raise errors.bad_request(f'node "{node_name}" reports no address: cannot reach its kubelet for {what}')
        return (f"[{address}]" if ":" in address else address), port

    async def logs(self, pod: dict[str, Any], container: str, req: ApiRequest) -> ApiResponse:
        meta = pod["metadata"]
        node_name = (pod.get("spec") or {}).get("nodeName") or ""
        host, port = self.endpoint(pod, "logs")
        url = f"https://{host}:{port}/containerLogs/{meta['namespace']}/{meta['name']}/{container}"
        query = {k: req.query[k] for k in LOG_PARAMS if k in req.query}
        try:
            resp = await self.session().get(url, params=query, headers={"Authorization": f"Bearer {self.token}"})
        except (aiohttp.ClientError, OSError, TimeoutError) as e:
            raise errors.StatusError(
                503, "ServiceUnavailable",
                f'cannot reach the kubelet of node "{node_name}" at {host}:{port}: {e or type(e).__name__}',
            ) from None
        if resp.status != 200:
            body = await resp.read()
            resp.release()
            raise _kubelet_error(resp.status, body)
        return ApiResponse(200, b"", "text/plain", stream=_relay(resp))


def _kubelet_error(status: int, body: bytes) -> errors.StatusError:
    try:
        doc = orjson.loads(body)
        if isinstance(doc, dict) and doc.get("kind") == "Status":
            return errors.StatusError(int(doc.get("code") or status), str(doc.get("reason") or "BadRequest"), str(doc.get("message") or ""))
    except orjson.JSONDecodeError:
        pass
    text = body.decode(errors="replace").strip().splitlines()
    message = text[0] if text else f"the kubelet answered {status}"
    reason = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound"}.get(status, "InternalError")
    return errors.StatusError(status if status < 500 else 500, reason, message)


async def _relay(resp: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    try:
        async for chunk in resp.content.iter_any():
            yield chunk
    finally:
        resp.release()
