"""Bad input over raw HTTPS: a Status with the right code and reason, and nothing changes."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from typing import Any

import pytest
from kubernetes import client, config

from tests.integration.conftest import RunningServer


def call(server: RunningServer, method: str, path: str, body: bytes | None = None,
         content_type: str = "application/json") -> tuple[int, Any]:
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    req = urllib.request.Request(server.url + path, data=body, method=method, headers={
        "Authorization": f"Bearer {server.token}", "Content-Type": content_type,
    })
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=20) as resp:
            raw = resp.read()
            return resp.status, raw
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def count_configmaps(server: RunningServer) -> int:
    status, raw = call(server, "GET", "/api/v1/configmaps")
    assert status == 200
    return len(json.loads(raw)["items"])


@pytest.mark.parametrize(("body", "content_type", "code", "reason"), [
    (b'{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"', "application/json", 400, "BadRequest"),
    (b"apiVersion: v1\nkind: ConfigMap\nmetadata: [unclosed", "application/yaml", 400, "BadRequest"),
    (b"", "application/json", 400, "BadRequest"),
    (b'{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}}', "application/json", 400, "BadRequest"),
    (b'{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Not_Valid"}}', "application/json", 422, "Invalid"),
    (b'{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "labels": {"a": 1}}}', "application/json", 422, "Invalid"),
    (b"[" * 5000 + b"]" * 5000, "application/json", 400, "BadRequest"),
    (b"a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
     b"d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
     b"g: [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n", "application/yaml", 413, "RequestEntityTooLarge"),
    (b"k8s\x00garbage", "application/vnd.kubernetes.protobuf", 400, "BadRequest"),
], ids=["truncated-json", "broken-yaml", "empty", "wrong-kind", "bad-name", "label-not-string", "deep-nesting",
        "yaml-bomb", "bad-protobuf"])
def test_bad_bodies_are_client_errors_and_change_nothing(server: RunningServer, body: bytes, content_type: str,
                                                         code: int, reason: str) -> None:
    before = count_configmaps(server)
    status, doc = call(server, "POST", "/api/v1/namespaces/default/configmaps", body, content_type)
    assert (status, doc["kind"], doc["reason"]) == (code, "Status", reason)
    assert "\n" not in doc["message"]
    assert count_configmaps(server) == before


def test_a_body_over_the_limit_is_refused(server: RunningServer) -> None:
    big = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"},
                      "data": {"x": "y" * (4 * 1024 * 1024)}}).encode()
    status, doc = call(server, "POST", "/api/v1/namespaces/default/configmaps", big)
    assert (status, doc["reason"]) == (413, "RequestEntityTooLarge")


def test_unknown_paths_and_methods(server: RunningServer) -> None:
    status, doc = call(server, "GET", "/api/v1/namespaces/default/widgets")
    assert (status, doc["reason"]) == (404, "NotFound")
    status, doc = call(server, "PUT", "/api/v1/namespaces/default/configmaps", b"{}")
    assert (status, doc["reason"]) == (405, "MethodNotAllowed")
    status, doc = call(server, "GET", "/api/v1/namespaces/default/pods?labelSelector=a%20in%20(")
    assert (status, doc["reason"]) == (400, "BadRequest")
    status, doc = call(server, "GET", "/api/v1/namespaces/default/pods?fieldSelector=spec.nope%3Dx")
    assert (status, doc["reason"]) == (400, "BadRequest") and "field label not supported" in doc["message"]


def test_deletecollection_and_server_dry_run(server: RunningServer) -> None:
    api = client.CoreV1Api(config.new_client_from_config(config_file=str(server.kubeconfig)))
    api.create_namespace({"metadata": {"name": "bulk"}})
    for i in range(5):
        api.create_namespaced_config_map("bulk", {"metadata": {"name": f"c{i}", "labels": {"batch": "a" if i < 3 else "b"}}})
    dry = api.create_namespaced_config_map("bulk", {"metadata": {"name": "dry"}}, dry_run="All")
    assert dry.metadata.name == "dry"
    assert [c.metadata.name for c in api.list_namespaced_config_map("bulk", field_selector="metadata.name=dry").items] == []
    api.delete_collection_namespaced_config_map("bulk", label_selector="batch=a")
    left = sorted(c.metadata.name for c in api.list_namespaced_config_map("bulk").items if c.metadata.name.startswith("c"))
    assert left == ["c3", "c4"]
    out = server.kubectl("apply", "--dry-run=server", "-n", "bulk", "-f", "-",
                         input='{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"viaapply"}}', check=True)
    assert "(server dry run)" in out.stdout
    assert server.kubectl("get", "cm", "viaapply", "-n", "bulk").returncode == 1
