"""Property and fuzz tests of the HTTP API: bad input is a 4xx with a reason, never a 5xx.

A real `tuik8s server` runs with no scheduler and no controllers, so nothing but these
requests writes to its store: the LIST resourceVersion (the store's global revision) is
then an exact witness that a refused request changed nothing. Hypothesis generates the
bodies, names, labels, quantities, patches and paths; every answer must be a
`metav1.Status` with a reason and a one-line message, the server must keep serving, and
its log must hold no internal error. Each property is capped in examples so the module
stays well under a minute on a busy 2-core machine.
"""

from __future__ import annotations

import http.client
import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.conftest import RunningServer, start_server, stop_server

NS = "fuzz"
CM_PATH = f"/api/v1/namespaces/{NS}/configmaps"
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
MAX_BODY = 3 * 1024 * 1024


class Api:
    """One keep-alive HTTPS connection with the admin token (a new TLS handshake per
    example would make the examples few)."""

    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self.ctx = ssl.create_default_context(cafile=str(server.ca_file))
        self.conn: http.client.HTTPSConnection | None = None

    def call(self, method: str, path: str, body: bytes | None = None,
             content_type: str = "application/json") -> tuple[int, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {self.server.token}", "Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPSConnection("127.0.0.1", self.server.port, context=self.ctx, timeout=60)
            try:
                self.conn.request(method, path, body=body, headers=headers)
                resp = self.conn.getresponse()
                raw = resp.read()
                if resp.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                try:
                    return resp.status, json.loads(raw) if raw else {}
                except ValueError:
                    return resp.status, {"text": raw.decode(errors="replace")}
            except (http.client.HTTPException, ConnectionError, ssl.SSLError):
                # the server may close a connection after refusing a huge body unread
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def revision(self) -> str:
        code, doc = self.call("GET", CM_PATH)
        assert code == 200, doc
        return doc["metadata"]["resourceVersion"]

    def snapshot(self) -> dict[str, Any]:
        """Everything the store holds in the kinds the fuzzing touches, by name and version."""
        out = {}
        for path in ("/api/v1/configmaps", "/api/v1/pods", "/api/v1/namespaces", "/apis/apps/v1/deployments",
                     "/api/v1/services", "/api/v1/secrets"):
            code, doc = self.call("GET", path)
            assert code == 200
            out[path] = sorted((o["metadata"].get("namespace", ""), o["metadata"]["name"], o["metadata"]["resourceVersion"])
                               for o in doc["items"])
        return out


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    base = tmp_path_factory.mktemp("fuzz")
    home = base / "home"
    home.mkdir()
    srv = start_server(base / "data", home, extra=("--no-scheduler", "--no-controllers", "--no-user-kubeconfig"))
    client = Api(srv)
    code, _ = client.call("POST", "/api/v1/namespaces", json.dumps(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}).encode())
    assert code == 201
    code, _ = client.call("POST", CM_PATH, json.dumps(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "target", "labels": {"app": "x"}}, "data": {"a": "b"}}).encode())
    assert code == 201
    before = client.snapshot()
    try:
        yield client
        # the server still serves, and nothing any refused request sent is in the store
        assert client.call("GET", "/readyz")[0] == 200
        after = client.snapshot()
        created = {k: [o for o in v if o[1].startswith("ok-")] for k, v in after.items()}
        assert {k: [o for o in v if not o[1].startswith("ok-")] for k, v in after.items()} == before, created
    finally:
        stop_server(srv)
        err = srv.proc.stderr.read() if srv.proc.stderr else ""
        assert "internal error serving" not in err and "Traceback" not in err, err[-4000:]


def assert_refused(api: Api, code: int, doc: dict[str, Any], revision: str) -> None:
    """A client error with a Status body, and the store unchanged."""
    assert 400 <= code < 500, (code, doc)
    assert doc.get("kind") == "Status" and doc.get("status") == "Failure", doc
    assert doc.get("reason") and doc.get("code") == code, doc
    assert doc.get("message") and "\n" not in doc["message"] and "Traceback" not in doc["message"], doc
    assert api.revision() == revision


def accepted_or_refused(api: Api, code: int, doc: dict[str, Any], revision: str, path: str | None = None) -> None:
    """Either it was a valid request (then undo it so the store ends as it began), or refused."""
    if code < 300:
        name = (doc.get("metadata") or {}).get("name")
        if path and name:
            assert name.startswith("ok-"), "fuzzed objects that succeed must carry the ok- prefix"
            api.call("DELETE", f"{path}/{name}?gracePeriodSeconds=0")
        return
    assert_refused(api, code, doc, revision)


# ---- strategies ---------------------------------------------------------------------------------

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                      st.floats(allow_nan=False), st.text(max_size=30))
json_value = st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                          max_leaves=20)
CONTENT_TYPES = ["application/json", "application/yaml", "application/vnd.kubernetes.protobuf", "text/plain",
                 "application/json;charset=utf-8", "", "application/x-www-form-urlencoded"]
# names and label parts: mostly near-valid, so the validators, not only the decoder, are hit
dns_ish = st.text(alphabet="abcxyz019-._/ AZ\u00e9\x00:", min_size=0, max_size=70)


# ---- properties ----------------------------------------------------------------------------------

@FUZZ
@given(body=st.binary(max_size=2000), content_type=st.sampled_from(CONTENT_TYPES))
def test_random_bytes_are_refused(api: Api, body: bytes, content_type: str) -> None:
    rev = api.revision()
    code, doc = api.call("POST", CM_PATH, body, content_type)
    assert_refused(api, code, doc, rev)


@FUZZ
@given(text=st.text(max_size=400), content_type=st.sampled_from(["application/json", "application/yaml"]))
def test_malformed_json_and_yaml_text_is_refused(api: Api, text: str, content_type: str) -> None:
    rev = api.revision()
    code, doc = api.call("POST", CM_PATH, text.encode(), content_type)
    assert_refused(api, code, doc, rev)


@FUZZ
@given(metadata=json_value, data=json_value, extra=st.dictionaries(st.sampled_from(["spec", "status", "binaryData", "immutable", "kind", "apiVersion"]), json_value, max_size=3))
def test_random_object_shapes_are_refused_or_valid(api: Api, metadata: Any, data: Any, extra: dict[str, Any]) -> None:
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data, **extra}
    rev = api.revision()
    code, doc = api.call("POST", CM_PATH, json.dumps(obj).encode())
    accepted_or_refused(api, code, doc, rev, CM_PATH)


@FUZZ
@given(name=dns_ish, label_key=dns_ish, label_value=dns_ish)
def test_names_and_labels(api: Api, name: str, label_key: str, label_value: str) -> None:
    obj = {"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": "ok-" + name, "labels": {label_key: label_value}}, "data": {"k": "v"}}
    rev = api.revision()
    code, doc = api.call("POST", CM_PATH, json.dumps(obj).encode())
    accepted_or_refused(api, code, doc, rev, CM_PATH)


quantity = st.one_of(
    st.from_regex(r"\A[+-]?[0-9]{0,20}(\.[0-9]{0,8})?([eE][+-]?[0-9]{1,4}|[numkMGTPE]|[KMGTPE]i|Ki|m|u)?\Z"),
    st.text(max_size=12), st.integers(min_value=-(2**64), max_value=2**64), st.floats(allow_nan=True, allow_infinity=True),
    st.none(), st.booleans(),
)


@FUZZ
@given(cpu=quantity, memory=quantity)
def test_quantities(api: Api, cpu: Any, memory: Any) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "ok-pod"},
           "spec": {"containers": [{"name": "c", "image": "busybox",
                                    "resources": {"requests": {"cpu": cpu, "memory": memory}, "limits": {"cpu": cpu}}}]}}
    rev = api.revision()
    try:
        body = json.dumps(pod, allow_nan=True).encode()
    except ValueError:
        return
    code, doc = api.call("POST", f"/api/v1/namespaces/{NS}/pods", body)
    accepted_or_refused(api, code, doc, rev, f"/api/v1/namespaces/{NS}/pods")


KINDS = [
    ("v1", "Pod"), ("v1", "Service"), ("v1", "ConfigMap"), ("v1", "Secret"), ("v1", "Namespace"), ("v1", "Node"),
    ("apps/v1", "Deployment"), ("apps/v1", "ReplicaSet"), ("batch/v1", "Job"), ("v1", "Status"), ("v2", "Pod"),
    ("apps/v1", "Pod"), ("", ""), ("v1", "List"),
]
PATHS = [
    f"/api/v1/namespaces/{NS}/pods", f"/api/v1/namespaces/{NS}/services", CM_PATH, f"/api/v1/namespaces/{NS}/secrets",
    f"/apis/apps/v1/namespaces/{NS}/deployments", f"/apis/batch/v1/namespaces/{NS}/jobs", "/api/v1/namespaces",
    "/api/v1/nodes", f"/apis/apps/v1/namespaces/{NS}/replicasets",
]


@FUZZ
@given(kind=st.sampled_from(KINDS), path=st.sampled_from(PATHS))
def test_wrong_kinds_in_wrong_paths(api: Api, kind: tuple[str, str], path: str) -> None:
    api_version, k = kind
    plural = path.rsplit("/", 1)[1]
    right = (k.lower() + "s" if not k.endswith("s") else k.lower() + "es") == plural and api_version in (
        "v1" if path.startswith("/api/") else path.split("/")[2] + "/" + path.split("/")[3],)
    obj = {"apiVersion": api_version, "kind": k, "metadata": {"name": "ok-wrongkind"}}
    rev = api.revision()
    code, doc = api.call("POST", path, json.dumps(obj).encode())
    if right:
        # a right kind with a near-empty spec: valid or Invalid, tested elsewhere
        accepted_or_refused(api, code, doc, rev, path)
        return
    assert_refused(api, code, doc, rev)
    assert code == 400 and doc["reason"] == "BadRequest", doc


patch_op = st.fixed_dictionaries(
    {"op": st.sampled_from(["add", "remove", "replace", "move", "copy", "test", "nope", ""])},
    optional={"path": st.sampled_from(["/data/a", "/metadata/name", "/metadata/uid", "/metadata/labels/x", "", "/",
                                       "/data/~1x", "/data/-", "/kind", "/metadata/resourceVersion", "/spec/0/x"]) | st.text(max_size=10),
              "from": st.sampled_from(["/data/a", "/metadata", "/nope"]), "value": json_value},
)
PATCH_TYPES = ["application/json-patch+json", "application/merge-patch+json", "application/strategic-merge-patch+json",
               "application/apply-patch+yaml", "application/json", "text/plain"]


@FUZZ
@given(ptype=st.sampled_from(PATCH_TYPES), ops=st.lists(patch_op, max_size=4), merge=json_value)
def test_bad_patches(api: Api, ptype: str, ops: list[dict[str, Any]], merge: Any) -> None:
    # a fresh object per example: a valid patch may make it immutable or add finalizers
    code, _ = api.call("POST", CM_PATH, json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "name": "ok-patched", "labels": {"app": "x"}}, "data": {"a": "b"}}).encode())
    assert code == 201
    body = json.dumps(ops if ptype == "application/json-patch+json" else merge).encode()
    rev = api.revision()
    try:
        code, doc = api.call("PATCH", f"{CM_PATH}/ok-patched", body, ptype)
        if code >= 300:
            assert_refused(api, code, doc, rev)
    finally:
        api.call("PATCH", f"{CM_PATH}/ok-patched", b'{"metadata":{"finalizers":null}}', "application/merge-patch+json")
        api.call("DELETE", f"{CM_PATH}/ok-patched")


@FUZZ
@given(segments=st.lists(st.sampled_from(["api", "apis", "v1", "apps", "namespaces", NS, "pods", "status", "scale",
                                           "configmaps", "target", "log", "binding", "eviction", "..", "%00", "x"]) | st.text(
                                               alphabet="abc%/.", max_size=6), max_size=7),
       method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]))
def test_random_paths(api: Api, segments: list[str], method: str) -> None:
    path = "/" + "/".join(segments)
    if not path.startswith(("/api/", "/apis/")):
        path = "/api/v1" + path
    if method == "DELETE" or (method in ("PUT", "PATCH") and "target" in segments):
        return  # would delete or replace real objects: the other properties cover writes
    rev = api.revision()
    code, doc = api.call(method, path, b"{}" if method != "GET" else None)
    assert code < 500, (method, path, code, doc)
    if code >= 400:
        assert_refused(api, code, doc, rev)


@FUZZ
@given(width=st.integers(2, 12), depth=st.integers(2, 12))
def test_yaml_bombs(api: Api, width: int, depth: int) -> None:
    """Billion laughs: `depth` levels of `width` aliases of the level below."""
    lines = ["a0: &a0 [" + ",".join(["lol"] * width) + "]"]
    for d in range(1, depth):
        lines.append(f"a{d}: &a{d} [" + ",".join([f"*a{d - 1}"] * width) + "]")
    lines += ["apiVersion: v1", "kind: ConfigMap", "metadata: {name: ok-bomb}", f"data: {{x: y}}\nbomb: *a{depth - 1}"]
    rev = api.revision()
    code, doc = api.call("POST", CM_PATH, "\n".join(lines).encode(), "application/yaml")
    if width ** depth <= 250_000:
        # a few aliases expanding to a document of ordinary size are YAML, not a bomb
        accepted_or_refused(api, code, doc, rev, CM_PATH)
    else:
        assert_refused(api, code, doc, rev)
        assert code == 413, doc


@FUZZ
@given(depth=st.integers(50, 200_000), opener=st.sampled_from(["[", '{"a":', "a:\n  "]))
def test_deep_nesting(api: Api, depth: int, opener: str) -> None:
    closer = {"[": "]", '{"a":': "}", "a:\n  ": ""}[opener]
    if opener.startswith("a:"):
        body = "".join(" " * i + "a:\n" for i in range(min(depth, 3000))) + " " * min(depth, 3000) + "x"
        content_type = "application/yaml"
    else:
        body = opener * depth + "1" + closer * depth
        content_type = "application/json"
    rev = api.revision()
    code, doc = api.call("POST", CM_PATH, body.encode()[: MAX_BODY + 10], content_type)
    assert_refused(api, code, doc, rev)


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(extra=st.sampled_from([1, 4096, 1024 * 1024]))
def test_bodies_over_the_limit(api: Api, extra: int) -> None:
    filler = "y" * (MAX_BODY + extra)
    rev = api.revision()
    code, doc = api.call("POST", CM_PATH, json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                                                      "metadata": {"name": "big"}, "data": {"x": filler}}).encode())
    assert (code, doc["reason"]) == (413, "RequestEntityTooLarge")
    assert_refused(api, code, doc, rev)


def test_a_body_just_under_the_limit_is_served(api: Api, tmp_path: Path) -> None:
    """The limit is on the body, not lower: ~1 MiB of data (etcd's object limit is 1.5 MiB) is stored."""
    rev = api.revision()
    code, doc = api.call("POST", CM_PATH, json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                                                      "metadata": {"name": "ok-big"}, "data": {"x": "y" * (1024 * 1024)}}).encode())
    assert code == 201, doc
    assert api.revision() != rev
    api.call("DELETE", f"{CM_PATH}/ok-big")
