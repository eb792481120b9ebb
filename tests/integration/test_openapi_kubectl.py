"""The real kubectl 1.32 against our OpenAPI v3 documents, before the real server exists.

A throwaway aiohttp app serves /version, aggregated discovery built from the registry, the
/openapi/v3 documents from `tuik8s.apiserver.openapi`, and a toy deployments endpoint that
applies `fieldValidation` with `tuik8s.api.schema`. kubectl must get past its validation
step, see the server's strict errors and warnings, compute apply patches from our schemas
and explain fields from them.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tuik8s.api import errors, registry, schema
from tuik8s.apiserver import openapi

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs kubectl")

AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
DEPLOYMENT = registry.by_kind("apps/v1", "Deployment")

MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {{app: web}}
spec:
  {replicas}: {count}
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
        - name: web
          image: {image}
          ports: [{{containerPort: 80}}]
          resources:
            limits: {{cpu: 500m, memory: 128Mi}}
"""


def _resource(info: registry.ResourceInfo) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resource": info.plural,
        "responseKind": {"group": info.group, "version": info.version, "kind": info.kind},
        "scope": "Namespaced" if info.namespaced else "Cluster",
        "singularResource": info.singular,
        "verbs": list(info.verbs),
    }
    if info.short_names:
        out["shortNames"] = list(info.short_names)
    if info.categories:
        out["categories"] = list(info.categories)
    if info.subresources:
        out["subresources"] = [{
            "subresource": s.name,
            "responseKind": {"group": s.group, "version": s.version, "kind": s.kind},
            "verbs": list(s.verbs),
        } for s in info.subresources]
    return out


def _aggregated(core: bool) -> dict[str, Any]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for group, version in registry.group_versions():
        if (group == "") != core:
            continue
        groups.setdefault(group, []).append({
            "version": version,
            "resources": [_resource(r) for r in registry.resources_in(group, version)],
            "freshness": "Current",
        })
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": [{"metadata": {"name": g}, "versions": v} for g, v in groups.items()],
    }


@dataclass
class ToyServer:
    """Records what kubectl asked for; holds at most the deployments it was given."""

    port: int = 0
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    bodies: list[tuple[str, str, Any]] = field(default_factory=list)
    deployments: dict[str, dict[str, Any]] = field(default_factory=dict)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._record])
        app.router.add_get("/version", self._version)
        app.router.add_get("/api", self._api)
        app.router.add_get("/apis", self._apis)
        openapi.add_routes(app)
        base = "/apis/apps/v1/namespaces/{namespace}/deployments"
        app.router.add_get(base + "/{name}", self._get)
        app.router.add_post(base, self._create)
        app.router.add_patch(base + "/{name}", self._patch)
        return app

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append((request.method, request.path, dict(request.query)))
        try:
            return await handler(request)
        except errors.StatusError as err:
            return web.json_response(err.to_status(), status=err.code)

    async def _version(self, request: web.Request) -> web.Response:
        return web.json_response({"major": "1", "minor": "32", "gitVersion": "v1.32.0",
                                  "platform": "linux/amd64"})

    async def _api(self, request: web.Request) -> web.Response:
        return web.Response(text=json.dumps(_aggregated(core=True)), content_type=None,
                            headers={"Content-Type": AGGREGATED})

    async def _apis(self, request: web.Request) -> web.Response:
        return web.Response(text=json.dumps(_aggregated(core=False)), content_type=None,
                            headers={"Content-Type": AGGREGATED})

    async def _get(self, request: web.Request) -> web.Response:
        obj = self.deployments.get(request.match_info["name"])
        if obj is None:
            raise errors.not_found("deployments.apps", request.match_info["name"], "apps")
        return web.json_response(obj)

    async def _create(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.bodies.append(("POST", request.content_type, body))
        warnings = schema.field_validation(DEPLOYMENT, body, request.query.get("fieldValidation"))
        response = web.json_response(body, status=201)
        for text in warnings:
            response.headers.add("Warning", schema.warning_header(text))
        return response

    async def _patch(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.bodies.append(("PATCH", request.content_type, body))
        return web.json_response(self.deployments[request.match_info["name"]])


@pytest.fixture
async def toy() -> AsyncIterator[ToyServer]:
    server = ToyServer()
    runner = web.AppRunner(server.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.port = runner.addresses[0][1]
    yield server
    await runner.cleanup()


@dataclass
class Result:
    code: int
    out: str
    err: str


async def kubectl(toy: ToyServer, tmp: Path, *args: str, editor: str = "false") -> Result:
    """The real kubectl with a kubeconfig of its own and a fresh cache for every run."""
    cache = tmp / f"cache-{uuid.uuid4().hex}"
    kubeconfig = tmp / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "toy",
        "clusters": [{"name": "toy", "cluster": {"server": f"http://127.0.0.1:{toy.port}"}}],
        "users": [{"name": "toy", "user": {}}],
        "contexts": [{"name": "toy", "context": {"cluster": "toy", "user": "toy",
                                                 "namespace": "default"}}],
    }))
    env = {**os.environ, "HOME": str(tmp), "KUBECONFIG": str(kubeconfig),
           "KUBE_EDITOR": editor}
    proc = await asyncio.create_subprocess_exec(
        "kubectl", "--kubeconfig", str(kubeconfig), "--cache-dir", str(cache), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=90)
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


def manifest(tmp: Path, replicas: str = "replicas", count: int = 2,
             image: str = "nginx:1.27") -> str:
    path = tmp / "deploy.yaml"
    path.write_text(MANIFEST.format(replicas=replicas, count=count, image=image))
    return str(path)


async def test_apply_gets_past_validation_and_creates(toy: ToyServer, tmp_path: Path) -> None:
    result = await kubectl(toy, tmp_path, "apply", "-f", manifest(tmp_path))
    assert result.code == 0, result.err
    assert "deployment.apps/web created" in result.out
    doc_requests = [(p, q) for m, p, q in toy.requests if p.startswith("/openapi/v3/")]
    assert doc_requests == [("/openapi/v3/apis/apps/v1",
                             {"hash": openapi.document_hash("apis/apps/v1"), "timeout": "32s"})]
    posts = [q for m, p, q in toy.requests if m == "POST"]
    assert posts == [{"fieldManager": "kubectl-client-side-apply", "fieldValidation": "Strict"}]
    assert not any(p.startswith("/openapi/v2") for _, p, _ in toy.requests)


async def test_strict_apply_prints_the_servers_unknown_field_error(
    toy: ToyServer, tmp_path: Path
) -> None:
    result = await kubectl(toy, tmp_path, "apply", "-f", manifest(tmp_path, replicas="replica"))
    assert result.code != 0
    assert (
        'Error from server (BadRequest): error when creating "' in result.err
        and 'Deployment in version "v1" cannot be handled as a Deployment: '
        'strict decoding error: unknown field "spec.replica"' in result.err
    ), result.err


async def test_warn_apply_prints_a_warning_and_creates(toy: ToyServer, tmp_path: Path) -> None:
    result = await kubectl(toy, tmp_path, "apply", "--validate=warn", "-f",
                           manifest(tmp_path, replicas="replica"))
    assert result.code == 0, result.err
    assert 'Warning: unknown field "spec.replica"' in result.err
    assert "deployment.apps/web created" in result.out


async def test_apply_to_an_existing_object_merges_containers_by_name(
    toy: ToyServer, tmp_path: Path
) -> None:
    first = await kubectl(toy, tmp_path, "apply", "-f", manifest(tmp_path))
    assert first.code == 0, first.err
    toy.deployments["web"] = toy.bodies[-1][2]
    result = await kubectl(toy, tmp_path, "apply", "-f",
                           manifest(tmp_path, count=3, image="nginx:1.29"))
    assert result.code == 0, result.err
    assert "deployment.apps/web configured" in result.out
    method, content_type, patch = toy.bodies[-1]
    assert (method, content_type) == ("PATCH", "application/strategic-merge-patch+json")
    pod_spec = patch["spec"]["template"]["spec"]
    assert patch["spec"]["replicas"] == 3
    assert pod_spec["$setElementOrder/containers"] == [{"name": "web"}]
    assert pod_spec["containers"] == [{"image": "nginx:1.29", "name": "web"}]


async def test_edit_passes_validation_with_our_documents(
    toy: ToyServer, tmp_path: Path
) -> None:
    first = await kubectl(toy, tmp_path, "apply", "-f", manifest(tmp_path))
    assert first.code == 0, first.err
    toy.deployments["web"] = toy.bodies[-1][2]
    result = await kubectl(toy, tmp_path, "edit", "deployment", "web", editor="true")
    assert result.code == 0, result.err
    assert "Edit cancelled, no changes made." in result.out + result.err
    assert any(p == "/openapi/v3/apis/apps/v1" for _, p, _ in toy.requests)


async def test_explain_a_scalar_field(toy: ToyServer, tmp_path: Path) -> None:
    result = await kubectl(toy, tmp_path, "explain", "deployment.spec.replicas")
    assert result.code == 0, result.err
    assert "GROUP:      apps" in result.out
    assert "KIND:       Deployment" in result.out
    assert "FIELD: replicas <integer>" in result.out
    assert "Number of desired pods" in result.out


async def test_explain_lists_the_fields_of_containers(toy: ToyServer, tmp_path: Path) -> None:
    result = await kubectl(toy, tmp_path, "explain", "pods.spec.containers")
    assert result.code == 0, result.err
    assert "KIND:       Pod" in result.out
    assert "FIELD: containers <[]Container>" in result.out
    for line in ("image\t<string>", "name\t<string> -required-", "ports\t<[]ContainerPort>",
                 "resources\t<ResourceRequirements>", "env\t<[]EnvVar>"):
        assert line in result.out, line


async def test_explain_int_or_string_and_quantity_types(toy: ToyServer, tmp_path: Path) -> None:
    surge = await kubectl(toy, tmp_path, "explain",
                          "deployment.spec.strategy.rollingUpdate.maxSurge")
    assert surge.code == 0, surge.err
    assert "FIELD: maxSurge <IntOrString>" in surge.out
    limits = await kubectl(toy, tmp_path, "explain", "pods.spec.containers.resources.limits")
    assert limits.code == 0, limits.err
    assert "FIELD: limits <map[string]Quantity>" in limits.out


async def test_documents_are_served_with_upstream_caching(toy: ToyServer) -> None:
    from aiohttp import ClientSession

    base = f"http://127.0.0.1:{toy.port}"
    async with ClientSession() as session:
        async with session.get(base + "/openapi/v3") as index:
            url = (await index.json())["paths"]["apis/apps/v1"]["serverRelativeURL"]
        async with session.get(base + url) as doc:
            assert doc.headers["Cache-Control"] == "public, immutable"
            body = await doc.read()
            assert body == openapi.v3_group_version_bytes("apis/apps/v1")
        async with session.get(base + "/openapi/v3/apis/apps/v1?hash=STALE",
                               allow_redirects=False) as stale:
            assert stale.status == 301
            assert stale.headers["Location"] == url
        async with session.get(base + "/openapi/v3/apis/nothing/v1") as missing:
            assert missing.status == 404
