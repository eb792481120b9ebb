"""`/openapi/v2` against the real kubectl 1.32 and the official client.

kubectl reads v2 (as gnostic protobuf only) to validate the items of a `kind: List`, for
`explain --output=plaintext-openapiv2`, and whenever v3 lacks a kind's PATCH operation.
"""

from __future__ import annotations

import gzip
import json
import shutil
import ssl
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.integration.conftest import RunningServer, start_server, stop_server
from tuik8s.apiserver.openapiv2 import PROTOBUF, REQUESTED_PROTOBUF

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs kubectl")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("data"), tmp_path_factory.mktemp("home"))
    yield running
    stop_server(running)


def _list(ns: str, service_spec_extra: dict | None = None) -> str:
    spec = {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}
    spec.update(service_spec_extra or {})
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "web", "namespace": ns}, "spec": spec},
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": "settings", "namespace": ns}, "data": {"mode": "fast"}},
    ]})


def _namespace(server: RunningServer) -> str:
    ns = f"v2-{uuid.uuid4().hex[:6]}"
    server.kubectl("create", "namespace", ns, check=True)
    return ns


def test_apply_of_a_list_creates_every_item(server: RunningServer) -> None:
    ns = _namespace(server)
    out = server.kubectl("apply", "-f", "-", input=_list(ns), check=True).stdout
    assert out.splitlines() == ["service/web created", "configmap/settings created"]
    assert server.kubectl_json("get", "configmap", "settings", "-n", ns)["data"] == {"mode": "fast"}
    again = server.kubectl("apply", "-f", "-", input=_list(ns), check=True).stdout
    assert again.splitlines() == ["service/web unchanged", "configmap/settings unchanged"]


def test_an_unknown_field_in_a_list_item_is_refused_by_client_validation(server: RunningServer) -> None:
    ns = _namespace(server)
    done = server.kubectl("apply", "-f", "-", input=_list(ns, {"portz": 1}))
    assert done.returncode == 1
    assert 'ValidationError(Service.spec): unknown field "portz" in io.k8s.api.core.v1.ServiceSpec' in done.stderr
    assert "turn validation off with --validate=false" in done.stderr
    assert server.kubectl("get", "service", "web", "-n", ns).returncode == 1
    created = server.kubectl("apply", "--validate=false", "-f", "-", input=_list(ns, {"portz": 1}))
    assert created.returncode == 0, created.stderr


def test_wrong_types_and_missing_required_fields_are_reported_as_upstream(server: RunningServer) -> None:
    ns = _namespace(server)
    bad = _list(ns, {"ports": [{"port": "eighty"}, {"targetPort": 81}]})
    done = server.kubectl("apply", "-f", "-", input=bad)
    assert done.returncode == 1
    assert ('ValidationError(Service.spec.ports[0].port): invalid type for '
            'io.k8s.api.core.v1.ServicePort.port: got "string", expected "integer"') in done.stderr
    assert ('ValidationError(Service.spec.ports[1]): missing required field "port" in '
            'io.k8s.api.core.v1.ServicePort') in done.stderr


def test_the_sample_apps_as_one_list_pass_client_validation(server: RunningServer) -> None:
    """Every kind the samples use (Deployment, Service, Ingress, ...) validates cleanly."""
    ns = _namespace(server)
    items = []
    for manifest in sorted((Path(__file__).parents[2] / "manifests").glob("*.yaml")):
        for doc in yaml.safe_load_all(manifest.read_text()):
            if doc:
                doc["metadata"]["namespace"] = ns
                items.append(doc)
    listed = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
    done = server.kubectl("apply", "-f", "-", input=listed)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == len(items)
    assert all(line.endswith(" created") for line in done.stdout.splitlines())


def test_editing_several_objects_at_once_validates_them_through_v2(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`kubectl edit A B` edits a `kind: List`, which only v2 can validate."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # where kubectl keeps a refused edit
    ns = _namespace(server)
    server.kubectl("apply", "-f", "-", input=_list(ns), check=True)
    monkeypatch.setenv("KUBE_EDITOR", "sed -i s/fast/slow/")
    done = server.kubectl("edit", "-n", ns, "configmap/settings", "service/web", check=True)
    assert done.stdout.splitlines() == ["configmap/settings edited", "service/web skipped"]
    assert server.kubectl_json("get", "configmap", "settings", "-n", ns)["data"] == {"mode": "slow"}
    monkeypatch.setenv("KUBE_EDITOR", "sed -i s/mode:/mood:/;s/targetPort:/targetPortz:/")
    refused = server.kubectl("edit", "-n", ns, "configmap/settings", "service/web")
    assert refused.returncode == 1
    assert "Edit cancelled, no valid changes were saved." in refused.stderr
    kept = "".join(p.read_text() for p in tmp_path.glob("kubectl-edit-*.yaml"))
    assert ('ValidationError(Service.spec.ports[0]): unknown field "targetPortz" in '
            'io.k8s.api.core.v1.ServicePort') in kept


def test_explain_from_v3_and_from_v2(server: RunningServer) -> None:
    v3 = server.kubectl("explain", "pods.spec.containers", check=True).stdout
    assert "KIND:       Pod" in v3 and "FIELD: containers <[]Container>" in v3
    v2 = server.kubectl("explain", "pods.spec.containers", "--output=plaintext-openapiv2", check=True).stdout
    assert "KIND:     Pod" in v2
    assert "RESOURCE: containers <[]Object>" in v2
    assert "image\t<string>" in v2


def _get(server: RunningServer, accept: str, etag: str | None = None,
         encoding: str | None = None) -> tuple[int, dict, bytes]:
    config = json.loads(server.kubectl("config", "view", "--raw", "-o", "json", check=True).stdout)
    cluster = config["clusters"][0]["cluster"]
    token = config["users"][0]["user"]["token"]
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    headers = {"Accept": accept, "Authorization": f"Bearer {token}"}
    if etag:
        headers["If-None-Match"] = etag
    if encoding:
        headers["Accept-Encoding"] = encoding
    request = urllib.request.Request(cluster["server"] + "/openapi/v2", headers=headers)
    try:
        with urllib.request.urlopen(request, context=context, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_json_and_protobuf_forms_with_etags(server: RunningServer) -> None:
    status, headers, body = _get(server, "application/json")
    assert status == 200 and headers["Content-Type"] == "application/json"
    doc = json.loads(body)
    assert doc["swagger"] == "2.0"
    deployment = doc["definitions"]["io.k8s.api.apps.v1.Deployment"]
    assert deployment["x-kubernetes-group-version-kind"] == [
        {"group": "apps", "kind": "Deployment", "version": "v1"}]
    assert deployment["properties"]["spec"]["$ref"] == "#/definitions/io.k8s.api.apps.v1.DeploymentSpec"
    patch = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert {"in": "query", "name": "fieldValidation"}.items() <= next(
        p for p in patch["parameters"] if p["name"] == "fieldValidation").items()
    assert _get(server, "application/json", headers["Etag"])[0] == 304

    status, headers, body = _get(server, REQUESTED_PROTOBUF)
    assert status == 200 and headers["Content-Type"] == PROTOBUF
    assert body[:1] == b"\x0a" and b"io.k8s.api.apps.v1.Deployment" in body
    assert _get(server, PROTOBUF, headers["Etag"])[0] == 304
    status, headers, packed = _get(server, REQUESTED_PROTOBUF, encoding="gzip")
    assert headers["Content-Encoding"] == "gzip" and gzip.decompress(packed) == body
    assert _get(server, "text/html")[0] == 406
