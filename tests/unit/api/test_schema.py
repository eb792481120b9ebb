"""Component schemas and strict field validation, as a client of the API sees them."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tuik8s.api import errors, registry, schema

DEPLOYMENT = registry.by_kind("apps/v1", "Deployment")
POD = registry.by_kind("v1", "Pod")


def deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "default",
            "labels": {"app": "web", "example.com/any-key": "v"},
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}\n"},
            "creationTimestamp": None,
            "ownerReferences": [{"apiVersion": "v1", "kind": "X", "name": "x", "uid": "u"}],
            "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {"f:replicas": {}}}}],
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"},
                         "matchExpressions": [{"key": "tier", "operator": "Exists"}]},
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    "containers": [{
                        "name": "web",
                        "image": "nginx:1.27",
                        "ports": [{"containerPort": 80, "protocol": "TCP"}],
                        "env": [{"name": "A", "value": "1"}],
                        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"},
                                      "limits": {"cpu": 1, "nvidia.com/gpu": "1"}},
                        "readinessProbe": {"httpGet": {"path": "/", "port": "http"}},
                    }],
                },
            },
        },
        "status": {
            "observedGeneration": 1,
            "replicas": 2,
            "readyReplicas": 2,
            "conditions": [{"type": "Available", "status": "True",
                            "lastTransitionTime": "2026-01-01T00:00:00Z"}],
        },
    }


def test_a_valid_deployment_has_no_unknown_fields() -> None:
    assert schema.unknown_fields(DEPLOYMENT, deployment()) == []


def test_a_typo_in_spec_is_reported_by_its_path() -> None:
    obj = deployment()
    obj["spec"]["replica"] = obj["spec"].pop("replicas")
    assert schema.unknown_fields(DEPLOYMENT, obj) == ["spec.replica"]


def test_a_typo_inside_a_container_names_the_list_index() -> None:
    obj = deployment()
    containers = obj["spec"]["template"]["spec"]["containers"]
    containers.append({"name": "side", "image": "busybox"})
    containers[1]["imagee"] = containers[1].pop("image")
    containers[0]["ports"][0]["containerPortt"] = 81
    assert schema.unknown_fields(DEPLOYMENT, obj) == [
        "spec.template.spec.containers[0].ports[0].containerPortt",
        "spec.template.spec.containers[1].imagee",
    ]


def test_unknown_fields_come_in_document_order_at_every_depth() -> None:
    obj = {"apiVersion": "apps/v1", "kind": "Deployment", "bogus": 1,
           "metadata": {"name": "web", "nmae": "x"},
           "spec": {"template": {"spec": {"containers": [{"name": "a", "imagee": "x"}]}},
                    "replica": 3}}
    assert schema.unknown_fields(DEPLOYMENT, obj) == [
        "bogus", "metadata.nmae", "spec.template.spec.containers[0].imagee", "spec.replica",
    ]


@pytest.mark.parametrize(
    "path, key",
    [
        (("metadata", "labels"), "anything.example.com/x"),
        (("metadata", "annotations"), "whatever"),
        (("spec", "selector", "matchLabels"), "team"),
        (("spec", "template", "spec", "nodeSelector"), "disk"),
        (("spec", "template", "spec", "containers", 0, "resources", "limits"), "example.com/fpga"),
        (("spec", "template", "spec", "containers", 0, "resources", "requests"), "ephemeral-storage"),
    ],
    ids=["labels", "annotations", "matchLabels", "nodeSelector", "limits", "requests"],
)
def test_free_form_maps_accept_any_key(path: tuple[Any, ...], key: str) -> None:
    obj = deployment()
    target: Any = obj
    for step in path:
        target = target[step]
    target[key] = "1"
    assert schema.unknown_fields(DEPLOYMENT, obj) == []


def test_free_form_data_of_configmaps_and_secrets() -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
          "data": {"any.key": "v"}, "binaryData": {"b": "AAAA"}}
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
              "type": "Opaque", "data": {"x": "eQ=="}, "stringData": {"y": "z"}}
    assert schema.unknown_fields(registry.by_kind("v1", "ConfigMap"), cm) == []
    assert schema.unknown_fields(registry.by_kind("v1", "Secret"), secret) == []
    secret["strinData"] = {}
    assert schema.unknown_fields(registry.by_kind("v1", "Secret"), secret) == ["strinData"]


def test_status_fields_are_known_and_checked() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "c", "image": "i"}]},
           "status": {"phase": "Running", "podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}],
                      "hostIP": "192.168.0.2", "startTime": "2026-01-01T00:00:00Z",
                      "conditions": [{"type": "Ready", "status": "True"}],
                      "containerStatuses": [{
                          "name": "c", "ready": True, "restartCount": 0, "image": "i",
                          "imageID": "", "containerID": "docker://1",
                          "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}},
                      }]}}
    assert schema.unknown_fields(POD, pod) == []
    pod["status"]["phse"] = "Running"
    assert schema.unknown_fields(POD, pod) == ["status.phse"]


def test_strategic_merge_patch_directives_are_not_fields() -> None:
    patch = {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "web"}],
        "containers": [{"name": "web", "image": "nginx:1.29", "$patch": "replace"}]}}}}
    assert schema.unknown_fields(DEPLOYMENT, patch) == []


def test_values_of_the_wrong_shape_are_not_unknown_fields() -> None:
    obj = deployment()
    obj["spec"]["template"]["spec"]["containers"] = None
    obj["spec"]["selector"] = "app=web"
    assert schema.unknown_fields(DEPLOYMENT, obj) == []


def test_subresource_kinds_by_group_version_kind() -> None:
    scale = {"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "web"},
             "spec": {"replicas": 3, "replica": 3}, "status": {"replicas": 1, "selector": "a=b"}}
    assert schema.unknown_fields_of("autoscaling", "v1", "Scale", scale) == ["spec.replica"]
    assert schema.unknown_fields_of("example.com", "v1", "Nothing", scale) == []


def test_every_served_kind_has_a_named_schema_with_its_gvk() -> None:
    for info in registry.RESOURCES:
        name = schema.schema_name(info.group, info.version, info.kind)
        assert name is not None, info.kind
        package = "core" if not info.group else info.group.split(".")[0]
        assert name == f"io.k8s.api.{package}.{info.version}.{info.kind}"
        gvks = schema.schemas()[name]["x-kubernetes-group-version-kind"]
        assert {"group": info.group, "kind": info.kind, "version": info.version} in gvks


def test_upstream_names_for_shared_types() -> None:
    names = schema.schemas()
    for name in (
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
        "io.k8s.api.core.v1.PodTemplateSpec",
        "io.k8s.api.core.v1.Container",
        "io.k8s.api.core.v1.EndpointPort",
        "io.k8s.api.apps.v1.DeploymentSpec",
        "io.k8s.api.batch.v1.JobSpec",
        "io.k8s.api.autoscaling.v1.Scale",
        "io.k8s.api.policy.v1.Eviction",
        "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
        "io.k8s.apimachinery.pkg.api.resource.Quantity",
    ):
        assert name in names, name


def test_int_or_string_and_quantity_fields() -> None:
    s = schema.schemas()
    surge = s["io.k8s.api.apps.v1.RollingUpdateDeployment"]["properties"]["maxSurge"]
    assert surge["allOf"] == [schema.ref(schema.INT_OR_STRING)]
    assert s[schema.INT_OR_STRING]["x-kubernetes-int-or-string"] is True
    limits = s["io.k8s.api.core.v1.ResourceRequirements"]["properties"]["limits"]
    assert limits["additionalProperties"] == schema.ref(schema.QUANTITY)
    renew = s["io.k8s.api.coordination.v1.LeaseSpec"]["properties"]["renewTime"]
    assert renew["allOf"] == [schema.ref(schema.MICRO_TIME)]


def test_lists_carry_the_patch_strategy_kubectl_computes_apply_patches_from() -> None:
    containers = schema.schemas()["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-patch-strategy"] == "merge"
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    ports = schema.schemas()["io.k8s.api.core.v1.Container"]["properties"]["ports"]
    assert ports["x-kubernetes-list-map-keys"] == ["containerPort", "protocol"]


def test_descriptions_and_required_fields_come_from_the_models() -> None:
    spec = schema.schemas()["io.k8s.api.apps.v1.DeploymentSpec"]
    assert "desired pods" in spec["properties"]["replicas"]["description"]
    assert spec["required"] == ["selector", "template"]
    assert spec["description"].startswith("DeploymentSpec is the specification")


def test_strict_create_is_a_bad_request_naming_every_field() -> None:
    obj = deployment()
    obj["spec"]["replica"] = 3
    obj["spec"]["template"]["spec"]["containers"][0]["imagee"] = "x"
    with pytest.raises(errors.StatusError) as caught:
        schema.field_validation(DEPLOYMENT, obj, "Strict")
    assert caught.value.code == 400
    assert caught.value.reason == "BadRequest"
    assert caught.value.message == (
        'Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: '
        'unknown field "spec.template.spec.containers[0].imagee", '
        'unknown field "spec.replica"'
    )


def test_strict_patch_is_invalid_on_the_patch_field() -> None:
    obj = deployment()
    obj["spec"]["replica"] = 3
    with pytest.raises(errors.StatusError) as caught:
        schema.field_validation(DEPLOYMENT, obj, "Strict", verb="patch",
                                patch={"spec": {"replica": 3}},
                                patch_type="application/strategic-merge-patch+json")
    assert caught.value.code == 422
    assert caught.value.message == (
        ' "" is invalid: patch: Invalid value: "map[spec:map[replica:3]]": '
        'strict decoding error: unknown field "spec.replica"'
    )
    assert caught.value.details is not None
    assert caught.value.details["causes"][0]["field"] == "patch"


def test_warn_returns_one_warning_per_field_and_ignore_nothing() -> None:
    obj = deployment()
    obj["spec"]["replica"] = 3
    for directive in ("Warn", None, ""):
        assert schema.field_validation(DEPLOYMENT, obj, directive) == ['unknown field "spec.replica"']
    assert schema.field_validation(DEPLOYMENT, obj, "Ignore") == []
    assert schema.warning_header('unknown field "spec.replica"') == (
        '299 - "unknown field \\"spec.replica\\""')


def test_an_unsupported_directive_is_rejected() -> None:
    with pytest.raises(errors.StatusError) as caught:
        schema.field_validation(DEPLOYMENT, deployment(), "strict", verb="update")
    assert caught.value.code == 422
    assert caught.value.message.startswith('UpdateOptions.meta.k8s.io "" is invalid: fieldValidation')


def test_checking_does_not_change_the_object() -> None:
    obj = deployment()
    obj["spec"]["replica"] = 3
    before = copy.deepcopy(obj)
    schema.field_validation(DEPLOYMENT, obj, "Warn")
    assert obj == before
