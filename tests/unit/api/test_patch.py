"""PATCH bodies as kubectl and the official clients send them, applied to objects."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tuik8s.api.errors import StatusError
from tuik8s.api.patch import (
    APPLY_PATCH,
    JSON_PATCH,
    MERGE_PATCH,
    STRATEGIC_MERGE_PATCH,
    apply_patch,
)


def deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "labels": {"app": "web", "tier": "fe"},
            "finalizers": ["example.com/a", "example.com/b"],
        },
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": "nginx:1.27",
                            "ports": [
                                {"containerPort": 80, "name": "http"},
                                {"containerPort": 443, "name": "https"},
                            ],
                            "env": [
                                {"name": "MODE", "value": "prod"},
                                {"name": "DEBUG", "value": "0"},
                            ],
                        },
                        {"name": "sidecar", "image": "busybox:1.36", "args": ["sleep", "infinity"]},
                    ],
                    "volumes": [{"name": "cache", "emptyDir": {}}],
                    "tolerations": [{"key": "a", "operator": "Exists"}],
                },
            },
        },
        "status": {
            "conditions": [
                {"type": "Available", "status": "True"},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
            ]
        },
    }


def service() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "selector": {"app": "web"},
            "ports": [
                {"name": "http", "port": 80, "targetPort": 8080},
                {"name": "metrics", "port": 9090, "targetPort": 9090},
            ],
        },
    }


def node() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "n1"},
        "spec": {
            "taints": [{"key": "a", "effect": "NoSchedule"}, {"key": "b", "effect": "NoSchedule"}]
        },
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": "10.0.0.1"},
                {"type": "Hostname", "address": "n1"},
            ],
            "conditions": [
                {"type": "Ready", "status": "True"},
                {"type": "MemoryPressure", "status": "False"},
            ],
        },
    }


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return obj["spec"]["template"]["spec"]["containers"]


def container(obj: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in containers(obj) if c["name"] == name)


def smp(original: dict[str, Any], patch: Any) -> dict[str, Any]:
    return apply_patch(STRATEGIC_MERGE_PATCH, original, patch)


def pod_spec_patch(spec: dict[str, Any]) -> dict[str, Any]:
    return {"spec": {"template": {"spec": spec}}}


# --- strategic merge patch: what kubectl sends ------------------------------------------


def test_kubectl_apply_patch_changes_image_and_keeps_other_containers() -> None:
    last_applied = '{"apiVersion":"apps/v1","kind":"Deployment"}\n'
    body = {
        "metadata": {
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": last_applied}
        },
        "spec": {
            "replicas": 3,
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "web"}],
                    "containers": [{"image": "nginx:1.29", "name": "web"}],
                }
            },
        },
    }
    result = smp(deployment(), body)

    assert result["spec"]["replicas"] == 3
    assert result["metadata"]["annotations"] == {
        "kubectl.kubernetes.io/last-applied-configuration": last_applied
    }
    assert [c["name"] for c in containers(result)] == ["web", "sidecar"]
    assert container(result, "web")["image"] == "nginx:1.29"
    assert (
        container(result, "web")["ports"]
        == deployment()["spec"]["template"]["spec"]["containers"][0]["ports"]
    )
    assert container(result, "sidecar") == {
        "name": "sidecar",
        "image": "busybox:1.36",
        "args": ["sleep", "infinity"],
    }
    assert "$setElementOrder/containers" not in result["spec"]["template"]["spec"]


def test_kubectl_rollout_restart_adds_template_annotation() -> None:
    body = {
        "spec": {
            "template": {
                "metadata": {
                    "annotations": {"kubectl.kubernetes.io/restartedAt": "2025-01-01T00:00:00Z"}
                }
            }
        }
    }
    result = smp(deployment(), body)
    assert result["spec"]["template"]["metadata"] == {
        "labels": {"app": "web"},
        "annotations": {"kubectl.kubernetes.io/restartedAt": "2025-01-01T00:00:00Z"},
    }


@pytest.mark.parametrize(
    ("live", "order", "patch_list", "expected"),
    [
        pytest.param(
            ["a", "b", "c"],
            ["c", "a", "b"],
            [],
            ["c", "a", "b"],
            id="full-order-reorders-live-list",
        ),
        pytest.param(
            ["a", "b", "c"],
            ["c", "a"],
            [],
            ["b", "c", "a"],
            id="live-only-element-keeps-its-live-neighbours",
        ),
        pytest.param(
            ["web", "sidecar"],
            ["web", "new"],
            ["new"],
            ["web", "new", "sidecar"],
            id="added-element-placed-by-order",
        ),
        pytest.param(
            ["a", "b"], ["b", "a", "gone"], [], ["b", "a"], id="order-entry-with-no-element-ignored"
        ),
    ],
)
def test_set_element_order(
    live: list[str], order: list[str], patch_list: list[str], expected: list[str]
) -> None:
    original = deployment()
    original["spec"]["template"]["spec"]["containers"] = [
        {"name": n, "image": f"{n}:1"} for n in live
    ]
    spec: dict[str, Any] = {"$setElementOrder/containers": [{"name": n} for n in order]}
    if patch_list:
        spec["containers"] = [{"name": n, "image": f"{n}:2"} for n in patch_list]
    result = smp(original, pod_spec_patch(spec))
    assert [c["name"] for c in containers(result)] == expected
    assert "$setElementOrder/containers" not in result["spec"]["template"]["spec"]


def test_set_element_order_on_primitive_list_with_deletion() -> None:
    body = {
        "metadata": {
            "$setElementOrder/finalizers": ["example.com/b", "example.com/c"],
            "$deleteFromPrimitiveList/finalizers": ["example.com/a"],
            "finalizers": ["example.com/c"],
        }
    }
    result = smp(deployment(), body)
    assert result["metadata"]["finalizers"] == ["example.com/b", "example.com/c"]
    assert set(result["metadata"]) == {"name", "namespace", "labels", "finalizers"}


# --- strategic merge patch: merge keys ---------------------------------------------------


def test_delete_env_var_with_patch_delete() -> None:
    body = pod_spec_patch(
        {"containers": [{"name": "web", "env": [{"name": "DEBUG", "$patch": "delete"}]}]}
    )
    result = smp(deployment(), body)
    assert container(result, "web")["env"] == [{"name": "MODE", "value": "prod"}]
    assert container(result, "web")["image"] == "nginx:1.27"


def test_delete_whole_container_with_patch_delete() -> None:
    result = smp(
        deployment(), pod_spec_patch({"containers": [{"name": "sidecar", "$patch": "delete"}]})
    )
    assert [c["name"] for c in containers(result)] == ["web"]


def test_container_ports_merge_by_container_port() -> None:
    body = pod_spec_patch(
        {
            "containers": [
                {
                    "name": "web",
                    "ports": [{"containerPort": 443, "name": "tls"}, {"containerPort": 8080}],
                }
            ]
        }
    )
    result = smp(deployment(), body)
    assert container(result, "web")["ports"] == [
        {"containerPort": 80, "name": "http"},
        {"containerPort": 443, "name": "tls"},
        {"containerPort": 8080},
    ]


def test_service_ports_merge_by_port() -> None:
    result = smp(
        service(),
        {"spec": {"ports": [{"port": 80, "targetPort": 8081}, {"port": 443, "name": "https"}]}},
    )
    assert result["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": 8081},
        {"port": 443, "name": "https"},
        {"name": "metrics", "port": 9090, "targetPort": 9090},
    ]


@pytest.mark.parametrize(
    ("patch_finalizers", "expected"),
    [
        # Upstream places a new entry ahead of the live-only ones (mergeSortedSlice).
        pytest.param(
            ["example.com/c"],
            ["example.com/c", "example.com/a", "example.com/b"],
            id="new-finalizer-added",
        ),
        pytest.param(
            ["example.com/a", "example.com/c"],
            ["example.com/a", "example.com/c", "example.com/b"],
            id="existing-not-duplicated",
        ),
        pytest.param([], ["example.com/a", "example.com/b"], id="empty-list-changes-nothing"),
    ],
)
def test_finalizers_merge_as_a_set(patch_finalizers: list[str], expected: list[str]) -> None:
    result = smp(deployment(), {"metadata": {"finalizers": patch_finalizers}})
    assert result["metadata"]["finalizers"] == expected


def test_delete_from_primitive_list() -> None:
    result = smp(
        deployment(),
        {"metadata": {"$deleteFromPrimitiveList/finalizers": ["example.com/a", "example.com/zzz"]}},
    )
    assert result["metadata"]["finalizers"] == ["example.com/b"]


@pytest.mark.parametrize(
    ("make", "patch", "path", "expected"),
    [
        pytest.param(
            deployment,
            {
                "status": {
                    "conditions": [
                        {
                            "type": "Progressing",
                            "status": "False",
                            "reason": "ProgressDeadlineExceeded",
                        }
                    ]
                }
            },
            ("status", "conditions"),
            [
                {"type": "Available", "status": "True"},
                {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"},
            ],
            id="deployment-conditions-by-type",
        ),
        pytest.param(
            node,
            {"status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}},
            ("status", "conditions"),
            [{"type": "Ready", "status": "Unknown"}, {"type": "MemoryPressure", "status": "False"}],
            id="node-conditions-by-type",
        ),
        pytest.param(
            node,
            {"status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.9"}]}},
            ("status", "addresses"),
            [{"type": "InternalIP", "address": "10.0.0.9"}, {"type": "Hostname", "address": "n1"}],
            id="node-addresses-by-type",
        ),
        pytest.param(
            node,
            {"spec": {"taints": [{"key": "c", "effect": "NoExecute"}]}},
            ("spec", "taints"),
            [{"key": "c", "effect": "NoExecute"}],
            id="node-taints-replaced-as-upstream",
        ),
        pytest.param(
            deployment,
            pod_spec_patch({"tolerations": [{"key": "b", "operator": "Exists"}]}),
            ("spec", "template", "spec", "tolerations"),
            [{"key": "b", "operator": "Exists"}],
            id="tolerations-replaced",
        ),
        pytest.param(
            deployment,
            pod_spec_patch({"volumes": [{"name": "data", "emptyDir": {}}]}),
            ("spec", "template", "spec", "volumes"),
            [{"name": "data", "emptyDir": {}}, {"name": "cache", "emptyDir": {}}],
            id="volumes-by-name",
        ),
        pytest.param(
            deployment,
            pod_spec_patch({"containers": [{"name": "sidecar", "args": ["sleep", "10"]}]}),
            ("spec", "template", "spec", "containers", 1, "args"),
            ["sleep", "10"],
            id="container-args-replaced",
        ),
    ],
)
def test_list_strategy(
    make: Any, patch: dict[str, Any], path: tuple[Any, ...], expected: Any
) -> None:
    result: Any = smp(make(), patch)
    for step in path:
        result = result[step]
    assert result == expected


def test_owner_references_merge_by_uid() -> None:
    original = deployment()
    original["metadata"]["ownerReferences"] = [{"uid": "u1", "kind": "A", "name": "a"}]
    result = smp(
        original, {"metadata": {"ownerReferences": [{"uid": "u2", "kind": "B", "name": "b"}]}}
    )
    assert {ref["uid"] for ref in result["metadata"]["ownerReferences"]} == {"u1", "u2"}


def test_pod_ips_merge_by_ip() -> None:
    pod = {"kind": "Pod", "metadata": {"name": "p"}, "status": {"podIPs": [{"ip": "10.1.0.5"}]}}
    result = smp(pod, {"status": {"podIPs": [{"ip": "fd00::5"}]}})
    assert sorted(p["ip"] for p in result["status"]["podIPs"]) == ["10.1.0.5", "fd00::5"]


# --- strategic merge patch: maps and directives ------------------------------------------


def test_maps_merge_recursively_and_null_deletes() -> None:
    result = smp(
        deployment(), {"metadata": {"labels": {"tier": None, "track": "stable", "absent": None}}}
    )
    assert result["metadata"]["labels"] == {"app": "web", "track": "stable"}


@pytest.mark.parametrize(
    ("strategy_patch", "expected"),
    [
        pytest.param(
            {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": None},
            {"type": "Recreate"},
            id="switch-to-recreate",
        ),
        pytest.param(
            {"$retainKeys": ["type"], "type": "Recreate"},
            {"type": "Recreate"},
            id="unlisted-live-field-cleared",
        ),
        pytest.param(
            {"$retainKeys": ["rollingUpdate", "type"], "rollingUpdate": {"maxSurge": 2}},
            {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 2, "maxUnavailable": 0}},
            id="listed-fields-still-merge",
        ),
    ],
)
def test_retain_keys(strategy_patch: dict[str, Any], expected: dict[str, Any]) -> None:
    result = smp(deployment(), {"spec": {"strategy": strategy_patch}})
    assert result["spec"]["strategy"] == expected


def test_retain_keys_in_a_volume_switches_its_source() -> None:
    body = pod_spec_patch(
        {
            "volumes": [
                {"name": "cache", "$retainKeys": ["hostPath", "name"], "hostPath": {"path": "/tmp"}}
            ]
        }
    )
    result = smp(deployment(), body)
    assert result["spec"]["template"]["spec"]["volumes"] == [
        {"name": "cache", "hostPath": {"path": "/tmp"}}
    ]


@pytest.mark.parametrize(
    ("body", "expected_labels"),
    [
        pytest.param(
            {"metadata": {"labels": {"$patch": "replace", "only": "me"}}},
            {"only": "me"},
            id="replace-map",
        ),
        pytest.param({"metadata": {"labels": {"$patch": "delete"}}}, {}, id="delete-map"),
        pytest.param(
            {"metadata": {"labels": {"$patch": "merge", "x": "y"}}},
            {"app": "web", "tier": "fe", "x": "y"},
            id="merge-map",
        ),
    ],
)
def test_patch_directive_on_maps(body: dict[str, Any], expected_labels: dict[str, str]) -> None:
    assert smp(deployment(), body)["metadata"]["labels"] == expected_labels


def test_patch_replace_in_a_list_replaces_it() -> None:
    body = pod_spec_patch(
        {"containers": [{"name": "solo", "image": "solo:1"}, {"$patch": "replace"}]}
    )
    assert containers(smp(deployment(), body)) == [{"name": "solo", "image": "solo:1"}]


def test_patch_merge_element_in_a_list_merges() -> None:
    body = pod_spec_patch(
        {"containers": [{"name": "web", "image": "nginx:1.29", "$patch": "merge"}]}
    )
    result = smp(deployment(), body)
    assert container(result, "web")["image"] == "nginx:1.29"
    assert "$patch" not in container(result, "web")


def test_directives_never_reach_the_result_where_the_original_has_nothing() -> None:
    original = {"kind": "Pod", "metadata": {"name": "p"}, "spec": {}}
    body = {
        "metadata": {"labels": {"$patch": "replace", "a": "1", "gone": None}},
        "spec": {
            "$setElementOrder/containers": [{"name": "a"}],
            "containers": [
                {"name": "a", "image": "a:1", "env": [{"name": "X", "$patch": "delete"}]},
                {"name": "b", "$patch": "delete"},
            ],
        },
    }
    result = smp(original, body)
    assert result == {
        "kind": "Pod",
        "metadata": {"name": "p", "labels": {"a": "1"}},
        "spec": {"containers": [{"name": "a", "image": "a:1", "env": []}]},
    }
    assert "$" not in json.dumps(result)


@pytest.mark.parametrize(
    "patch_type", [STRATEGIC_MERGE_PATCH, MERGE_PATCH, APPLY_PATCH, JSON_PATCH]
)
def test_neither_original_nor_patch_is_mutated(patch_type: str) -> None:
    original = deployment()
    if patch_type == JSON_PATCH:
        body: Any = [
            {
                "op": "add",
                "path": "/spec/template/spec/containers/-",
                "value": {"name": "x", "image": "x"},
            }
        ]
    else:
        body = pod_spec_patch(
            {
                "containers": [
                    {"name": "web", "image": "nginx:1.29", "env": [{"name": "NEW", "value": "1"}]}
                ]
            }
        )
    before_original, before_body = copy.deepcopy(original), copy.deepcopy(body)
    result = apply_patch(patch_type, original, body)
    assert original == before_original
    assert body == before_body
    containers(result)[0]["image"] = "changed"
    result["metadata"]["labels"]["x"] = "y"
    assert original == before_original
    assert body == before_body


def test_server_side_apply_merges_applied_configuration() -> None:
    applied = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "replicas": 2,
            "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.29"}]}},
        },
    }
    result = apply_patch(APPLY_PATCH, deployment(), applied)
    assert result["spec"]["replicas"] == 2
    assert container(result, "web")["image"] == "nginx:1.29"
    assert container(result, "web")["ports"][0]["containerPort"] == 80
    assert [c["name"] for c in containers(result)] == ["web", "sidecar"]
    assert result["metadata"]["labels"] == {"app": "web", "tier": "fe"}


# --- JSON merge patch --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected_metadata"),
    [
        pytest.param(
            {"metadata": {"labels": {"tier": "be"}}},
            {"labels": {"app": "web", "tier": "be"}},
            id="kubectl-label",
        ),
        pytest.param(
            {"metadata": {"labels": {"tier": None}}},
            {"labels": {"app": "web"}},
            id="null-deletes-key",
        ),
        pytest.param({"metadata": {"labels": None}}, {}, id="null-deletes-map"),
        pytest.param(
            {"metadata": {"finalizers": ["only"]}},
            {"labels": {"app": "web", "tier": "fe"}, "finalizers": ["only"]},
            id="lists-replaced",
        ),
        pytest.param(
            {"metadata": {"labels": "oops"}}, {"labels": "oops"}, id="non-object-value-replaces"
        ),
        pytest.param(
            {"metadata": {"annotations": {"a": "1", "b": None}}},
            {"labels": {"app": "web", "tier": "fe"}, "annotations": {"a": "1"}},
            id="nulls-dropped-in-new-map",
        ),
    ],
)
def test_merge_patch(body: dict[str, Any], expected_metadata: dict[str, Any]) -> None:
    original = deployment()
    del original["metadata"]["finalizers"]
    result = apply_patch(MERGE_PATCH, original, body)
    expected = {"name": "web", "namespace": "default", **expected_metadata}
    assert result["metadata"] == expected


def test_merge_patch_of_scale_replicas() -> None:
    assert (
        apply_patch(MERGE_PATCH, deployment(), {"spec": {"replicas": 3}})["spec"]["replicas"] == 3
    )


# --- JSON patch --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operations", "path", "expected"),
    [
        pytest.param(
            [{"op": "add", "path": "/metadata/labels/track", "value": "canary"}],
            ("metadata", "labels", "track"),
            "canary",
            id="add",
        ),
        pytest.param(
            [{"op": "replace", "path": "/spec/replicas", "value": 5}],
            ("spec", "replicas"),
            5,
            id="replace",
        ),
        pytest.param(
            [{"op": "remove", "path": "/metadata/labels/tier"}],
            ("metadata", "labels"),
            {"app": "web"},
            id="remove",
        ),
        pytest.param(
            [
                {"op": "test", "path": "/spec/replicas", "value": 1},
                {"op": "replace", "path": "/spec/replicas", "value": 2},
            ],
            ("spec", "replicas"),
            2,
            id="test-passes-then-replace",
        ),
        pytest.param(
            [
                {
                    "op": "add",
                    "path": "/spec/template/spec/containers/-",
                    "value": {"name": "x", "image": "x:1"},
                }
            ],
            ("spec", "template", "spec", "containers", 2, "name"),
            "x",
            id="append-to-list",
        ),
        pytest.param(
            [{"op": "move", "from": "/metadata/labels/tier", "path": "/metadata/labels/layer"}],
            ("metadata", "labels"),
            {"app": "web", "layer": "fe"},
            id="move",
        ),
        pytest.param(
            [
                {"op": "add", "path": "/metadata/annotations", "value": {"a~b/c": "1"}},
                {"op": "remove", "path": "/metadata/annotations/a~0b~1c"},
            ],
            ("metadata", "annotations"),
            {},
            id="escaped-pointer",
        ),
    ],
)
def test_json_patch(operations: list[dict[str, Any]], path: tuple[Any, ...], expected: Any) -> None:
    result: Any = apply_patch(JSON_PATCH, deployment(), operations)
    for step in path:
        result = result[step]
    assert result == expected


@pytest.mark.parametrize(
    "operations",
    [
        pytest.param([{"op": "test", "path": "/spec/replicas", "value": 7}], id="test-fails"),
        pytest.param(
            [{"op": "test", "path": "/spec/nothing", "value": 7}], id="test-on-missing-path"
        ),
        pytest.param([{"op": "remove", "path": "/metadata/labels/nothing"}], id="remove-missing"),
        pytest.param(
            [{"op": "replace", "path": "/spec/nothing", "value": 1}], id="replace-missing"
        ),
        pytest.param(
            [{"op": "add", "path": "/spec/nothing/deeper", "value": 1}],
            id="add-under-missing-parent",
        ),
        pytest.param(
            [{"op": "add", "path": "/spec/template/spec/containers/9", "value": {}}],
            id="index-out-of-range",
        ),
        pytest.param(
            [{"op": "replace", "path": "", "value": [1]}], id="document-becomes-non-object"
        ),
    ],
)
def test_json_patch_that_does_not_apply_is_invalid_as_upstream(
    operations: list[dict[str, Any]],
) -> None:
    original = deployment()
    with pytest.raises(StatusError) as caught:
        apply_patch(JSON_PATCH, original, operations)
    assert (caught.value.code, caught.value.reason) == (422, "Invalid")
    assert "\n" not in caught.value.message
    assert original == deployment()


def test_json_patch_with_too_many_operations_is_too_large() -> None:
    operations = [{"op": "test", "path": "/kind", "value": "Deployment"}] * 10001
    with pytest.raises(StatusError) as caught:
        apply_patch(JSON_PATCH, deployment(), operations)
    assert caught.value.code == 413


# --- malformed patches -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("patch_type", "body"),
    [
        pytest.param(STRATEGIC_MERGE_PATCH, [{"spec": {}}], id="smp-is-a-list"),
        pytest.param(STRATEGIC_MERGE_PATCH, "spec", id="smp-is-a-string"),
        pytest.param(STRATEGIC_MERGE_PATCH, None, id="smp-is-null"),
        pytest.param(
            STRATEGIC_MERGE_PATCH,
            {"metadata": {"labels": {"$patch": "frobnicate"}}},
            id="smp-unknown-patch-directive-on-map",
        ),
        pytest.param(
            STRATEGIC_MERGE_PATCH,
            pod_spec_patch({"containers": [{"name": "web", "$patch": "frobnicate"}]}),
            id="smp-unknown-patch-directive-in-list",
        ),
        pytest.param(
            STRATEGIC_MERGE_PATCH, {"spec": {"$frobnicate": ["x"]}}, id="smp-unknown-directive-key"
        ),
        pytest.param(
            STRATEGIC_MERGE_PATCH,
            {"spec": {"$setElementOrder": []}},
            id="smp-set-element-order-without-list-name",
        ),
        pytest.param(
            STRATEGIC_MERGE_PATCH,
            pod_spec_patch({"containers": [{"image": "nginx:1.29"}]}),
            id="smp-element-without-merge-key",
        ),
        pytest.param(
            STRATEGIC_MERGE_PATCH,
            pod_spec_patch({"containers": [{"$patch": "delete"}]}),
            id="smp-delete-element-without-merge-key",
        ),
        pytest.param(
            STRATEGIC_MERGE_PATCH,
            pod_spec_patch({"containers": ["web"]}),
            id="smp-merge-list-of-strings",
        ),
        pytest.param(
            STRATEGIC_MERGE_PATCH,
            pod_spec_patch({"$setElementOrder/containers": {"name": "web"}}),
            id="smp-set-element-order-not-a-list",
        ),
        pytest.param(
            STRATEGIC_MERGE_PATCH,
            pod_spec_patch(
                {
                    "$setElementOrder/containers": [{"name": "web"}, {"name": "sidecar"}],
                    "containers": [{"name": "sidecar"}, {"name": "web"}],
                }
            ),
            id="smp-patch-list-out-of-set-element-order",
        ),
        pytest.param(
            STRATEGIC_MERGE_PATCH,
            {"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {"maxSurge": 2}}}},
            id="smp-field-not-in-retain-keys",
        ),
        pytest.param(
            STRATEGIC_MERGE_PATCH,
            {"spec": {"strategy": {"$retainKeys": "type"}}},
            id="smp-retain-keys-not-a-list",
        ),
        pytest.param(
            STRATEGIC_MERGE_PATCH,
            {"metadata": {"$deleteFromPrimitiveList/finalizers": "example.com/a"}},
            id="smp-delete-from-primitive-list-not-a-list",
        ),
        pytest.param(APPLY_PATCH, ["not", "an", "object"], id="apply-is-a-list"),
        pytest.param(MERGE_PATCH, [{"op": "add"}], id="merge-patch-is-a-list"),
        pytest.param(MERGE_PATCH, None, id="merge-patch-is-null"),
        pytest.param(
            JSON_PATCH, {"op": "add", "path": "/a", "value": 1}, id="json-patch-is-an-object"
        ),
        pytest.param(JSON_PATCH, ["add"], id="json-patch-operation-not-an-object"),
        pytest.param(JSON_PATCH, [{"op": "add", "value": 1}], id="json-patch-op-missing-path"),
        pytest.param(
            JSON_PATCH, [{"path": "/spec/replicas", "value": 1}], id="json-patch-missing-op"
        ),
        pytest.param(
            JSON_PATCH, [{"op": "frob", "path": "/spec/replicas"}], id="json-patch-unknown-op"
        ),
        pytest.param(
            JSON_PATCH, [{"op": "replace", "path": "/spec/replicas"}], id="json-patch-missing-value"
        ),
        pytest.param(
            JSON_PATCH, [{"op": "copy", "path": "/spec/x"}], id="json-patch-copy-missing-from"
        ),
        pytest.param(
            JSON_PATCH,
            [{"op": "add", "path": "spec/replicas", "value": 1}],
            id="json-patch-path-not-a-pointer",
        ),
        pytest.param(
            JSON_PATCH,
            [{"op": "remove", "path": "/metadata/a~2b"}],
            id="json-patch-path-bad-escape",
        ),
        pytest.param(
            JSON_PATCH,
            [{"op": "replace", "path": 7, "value": 1}],
            id="json-patch-path-not-a-string",
        ),
    ],
)
def test_malformed_patch_is_a_bad_request(patch_type: str, body: Any) -> None:
    original = deployment()
    with pytest.raises(StatusError) as caught:
        apply_patch(patch_type, original, body)
    assert (caught.value.code, caught.value.reason) == (400, "BadRequest")
    assert caught.value.message and "\n" not in caught.value.message
    assert original == deployment()


def test_list_of_lists_in_a_merge_list_is_invalid() -> None:
    with pytest.raises(StatusError) as caught:
        smp(deployment(), {"metadata": {"finalizers": [["a"]]}})
    assert caught.value.code == 422


@pytest.mark.parametrize(
    "patch_type",
    [
        pytest.param("application/json", id="plain-json"),
        pytest.param("application/yaml", id="yaml"),
        pytest.param("text/plain", id="text"),
    ],
)
def test_unknown_patch_type_is_unsupported_media_type(patch_type: str) -> None:
    with pytest.raises(StatusError) as caught:
        apply_patch(patch_type, deployment(), {})
    assert (caught.value.code, caught.value.reason) == (415, "UnsupportedMediaType")


def test_content_type_parameters_are_ignored() -> None:
    result = apply_patch(
        "application/merge-patch+json; charset=utf-8", deployment(), {"spec": {"replicas": 4}}
    )
    assert result["spec"]["replicas"] == 4
