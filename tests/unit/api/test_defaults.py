"""Defaulting: what `kubectl get -o yaml` shows on a real cluster after a create."""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tuik8s.api.defaults import apply_defaults
from tuik8s.api.registry import RESOURCES, by_key

UID = "0b8f0c2e-1111-4222-8333-944455556666"


def defaulted(key: str, obj: Any) -> Any:
    obj = copy.deepcopy(obj)
    apply_defaults(by_key(key), obj)
    return obj


def container(**extra: Any) -> dict:
    return {"name": "web", "image": "nginx:1.27", **extra}


def pod(**spec: Any) -> dict:
    return {"metadata": {"name": "web", "namespace": "default"}, "spec": {"containers": [container()], **spec}}


def deployment(**spec: Any) -> dict:
    return {
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [container()]}},
            **spec,
        },
    }


# ---- pods ------------------------------------------------------------------------------------


def test_pod_spec_defaults() -> None:
    spec = defaulted("pods", pod())["spec"]
    assert spec["dnsPolicy"] == "ClusterFirst"
    assert spec["restartPolicy"] == "Always"
    assert spec["terminationGracePeriodSeconds"] == 30
    assert spec["schedulerName"] == "default-scheduler"
    assert spec["securityContext"] == {}
    assert spec["enableServiceLinks"] is True
    assert spec["priority"] == 0
    assert spec["preemptionPolicy"] == "PreemptLowerPriority"


def test_pod_keeps_what_the_user_set() -> None:
    spec = defaulted("pods", pod(restartPolicy="Never", dnsPolicy="Default", terminationGracePeriodSeconds=0))["spec"]
    assert (spec["restartPolicy"], spec["dnsPolicy"], spec["terminationGracePeriodSeconds"]) == ("Never", "Default", 0)


def test_system_priority_class_resolves() -> None:
    spec = defaulted("pods", pod(priorityClassName="system-node-critical"))["spec"]
    assert spec["priority"] == 2000001000


@pytest.mark.parametrize(
    ("image", "policy"),
    [
        pytest.param("nginx", "Always", id="no-tag"),
        pytest.param("nginx:latest", "Always", id="latest"),
        pytest.param("nginx:1.27", "IfNotPresent", id="tag"),
        pytest.param("registry.local:5000/team/web", "Always", id="registry-port-no-tag"),
        pytest.param("registry.local:5000/team/web:v2", "IfNotPresent", id="registry-port-tag"),
        pytest.param("nginx@sha256:" + "a" * 64, "IfNotPresent", id="digest"),
    ],
)
def test_image_pull_policy(image: str, policy: str) -> None:
    spec = defaulted("pods", {"spec": {"containers": [{"name": "c", "image": image}]}})["spec"]
    assert spec["containers"][0]["imagePullPolicy"] == policy


def test_container_defaults() -> None:
    obj = pod(initContainers=[{"name": "init", "image": "busybox"}])
    obj["spec"]["containers"][0]["ports"] = [{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP"}]
    spec = defaulted("pods", obj)["spec"]
    for c in spec["containers"] + spec["initContainers"]:
        assert c["terminationMessagePath"] == "/dev/termination-log"
        assert c["terminationMessagePolicy"] == "File"
    assert [p["protocol"] for p in spec["containers"][0]["ports"]] == ["TCP", "UDP"]


def test_probe_defaults() -> None:
    probe = {"httpGet": {"port": 8080}}
    spec = defaulted("pods", {"spec": {"containers": [container(livenessProbe=probe, readinessProbe={"tcpSocket": {"port": 80}, "periodSeconds": 0})]}})["spec"]
    liveness = spec["containers"][0]["livenessProbe"]
    assert liveness == {
        "httpGet": {"port": 8080, "path": "/", "scheme": "HTTP"},
        "timeoutSeconds": 1,
        "periodSeconds": 10,
        "successThreshold": 1,
        "failureThreshold": 3,
    }
    assert spec["containers"][0]["readinessProbe"]["periodSeconds"] == 10


def test_grpc_probe_service_defaults_to_empty() -> None:
    spec = defaulted("pods", {"spec": {"containers": [container(startupProbe={"grpc": {"port": 9000}})]}})["spec"]
    assert spec["containers"][0]["startupProbe"]["grpc"] == {"port": 9000, "service": ""}


def test_lifecycle_http_handler_defaults() -> None:
    spec = defaulted("pods", {"spec": {"containers": [container(lifecycle={"preStop": {"httpGet": {"port": 80}}})]}})["spec"]
    assert spec["containers"][0]["lifecycle"]["preStop"]["httpGet"] == {"port": 80, "path": "/", "scheme": "HTTP"}


def test_requests_default_from_limits_for_pods_only() -> None:
    resources = {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}}
    spec = defaulted("pods", {"spec": {"containers": [container(resources=copy.deepcopy(resources))]}})["spec"]
    assert spec["containers"][0]["resources"]["requests"] == {"cpu": "500m", "memory": "1Gi"}
    template = defaulted("deployments.apps", deployment())
    template["spec"]["template"]["spec"]["containers"][0]["resources"] = copy.deepcopy(resources)
    again = defaulted("deployments.apps", template)
    assert again["spec"]["template"]["spec"]["containers"][0]["resources"] == resources


def test_pod_only_defaults_stay_off_templates() -> None:
    spec = defaulted("deployments.apps", deployment())["spec"]["template"]["spec"]
    assert "enableServiceLinks" not in spec
    assert "priority" not in spec
    assert spec["restartPolicy"] == "Always"


def test_host_network_host_ports() -> None:
    obj = pod(hostNetwork=True)
    obj["spec"]["containers"][0]["ports"] = [{"containerPort": 9100}]
    assert defaulted("pods", obj)["spec"]["containers"][0]["ports"][0]["hostPort"] == 9100


def test_env_field_ref_api_version() -> None:
    env = [{"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]
    spec = defaulted("pods", {"spec": {"containers": [container(env=env)]}})["spec"]
    assert spec["containers"][0]["env"][0]["valueFrom"]["fieldRef"]["apiVersion"] == "v1"


@pytest.mark.parametrize(
    ("volume", "expected"),
    [
        pytest.param({"name": "scratch"}, {"name": "scratch", "emptyDir": {}}, id="no-source-is-emptydir"),
        pytest.param({"name": "s", "secret": {"secretName": "x"}}, {"name": "s", "secret": {"secretName": "x", "defaultMode": 420}}, id="secret-mode"),
        pytest.param({"name": "c", "configMap": {"name": "x"}}, {"name": "c", "configMap": {"name": "x", "defaultMode": 420}}, id="configmap-mode"),
        pytest.param({"name": "h", "hostPath": {"path": "/proc"}}, {"name": "h", "hostPath": {"path": "/proc", "type": ""}}, id="hostpath-type"),
        pytest.param(
            {"name": "t", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}},
            {"name": "t", "projected": {"defaultMode": 420, "sources": [{"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}}]}},
            id="projected-token",
        ),
    ],
)
def test_volume_defaults(volume: dict, expected: dict) -> None:
    assert defaulted("pods", pod(volumes=[volume]))["spec"]["volumes"] == [expected]


# ---- workloads -------------------------------------------------------------------------------


def test_deployment_defaults() -> None:
    spec = defaulted("deployments.apps", deployment())["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
    assert spec["revisionHistoryLimit"] == 10
    assert spec["progressDeadlineSeconds"] == 600
    assert spec["template"]["spec"]["dnsPolicy"] == "ClusterFirst"


def test_deployment_keeps_replicas_zero_and_recreate() -> None:
    spec = defaulted("deployments.apps", deployment(replicas=0, strategy={"type": "Recreate"}))["spec"]
    assert spec["replicas"] == 0
    assert spec["strategy"] == {"type": "Recreate"}


def test_deployment_partial_rolling_update() -> None:
    spec = defaulted("deployments.apps", deployment(strategy={"rollingUpdate": {"maxSurge": 1}}))["spec"]
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": "25%"}}


def test_replica_set_and_daemon_set_defaults() -> None:
    rs = defaulted("replicasets.apps", deployment())["spec"]
    assert rs["replicas"] == 1
    ds = defaulted("daemonsets.apps", deployment())["spec"]
    assert ds["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
    assert ds["revisionHistoryLimit"] == 10


def job(**spec: Any) -> dict:
    return {
        "metadata": {"name": "pi", "namespace": "default", "uid": UID},
        "spec": {"template": {"spec": {"containers": [container()], "restartPolicy": "Never"}}, **spec},
    }


def test_job_defaults() -> None:
    spec = defaulted("jobs.batch", job())["spec"]
    assert (spec["completions"], spec["parallelism"], spec["backoffLimit"]) == (1, 1, 6)
    assert spec["completionMode"] == "NonIndexed"
    assert spec["suspend"] is False
    assert spec["podReplacementPolicy"] == "TerminatingOrFailed"


def test_job_parallel_without_completions() -> None:
    spec = defaulted("jobs.batch", job(parallelism=3))["spec"]
    assert spec["parallelism"] == 3
    assert "completions" not in spec


def test_job_backoff_limit_per_index() -> None:
    spec = defaulted("jobs.batch", job(backoffLimitPerIndex=1, completionMode="Indexed", completions=3))["spec"]
    assert spec["backoffLimit"] == 2**31 - 1


def test_job_pod_failure_policy_defaults() -> None:
    policy = {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}
    spec = defaulted("jobs.batch", job(podFailurePolicy=policy))["spec"]
    assert spec["podReplacementPolicy"] == "Failed"
    assert spec["podFailurePolicy"]["rules"][0]["onPodConditions"][0]["status"] == "True"


def test_job_selector_generated_from_uid() -> None:
    obj = defaulted("jobs.batch", job())
    assert obj["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": UID}}
    labels = obj["spec"]["template"]["metadata"]["labels"]
    assert labels == {
        "job-name": "pi",
        "batch.kubernetes.io/job-name": "pi",
        "controller-uid": UID,
        "batch.kubernetes.io/controller-uid": UID,
    }
    assert obj["metadata"]["labels"] == labels


def test_job_manual_selector_is_left_alone() -> None:
    obj = job(manualSelector=True, selector={"matchLabels": {"run": "pi"}})
    obj["spec"]["template"]["metadata"] = {"labels": {"run": "pi"}}
    spec = defaulted("jobs.batch", obj)["spec"]
    assert spec["selector"] == {"matchLabels": {"run": "pi"}}
    assert spec["template"]["metadata"]["labels"] == {"run": "pi"}


def test_job_without_uid_gets_no_selector() -> None:
    obj = job()
    del obj["metadata"]["uid"]
    assert "selector" not in defaulted("jobs.batch", obj)["spec"]


# ---- core ------------------------------------------------------------------------------------


def service(**spec: Any) -> dict:
    return {"metadata": {"name": "web", "namespace": "default"}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}], **spec}}


def test_service_defaults() -> None:
    spec = defaulted("services", service())["spec"]
    assert spec["type"] == "ClusterIP"
    assert spec["sessionAffinity"] == "None"
    assert spec["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80}]
    assert spec["internalTrafficPolicy"] == "Cluster"
    assert spec["ipFamilies"] == ["IPv4"]
    assert spec["ipFamilyPolicy"] == "SingleStack"
    assert "externalTrafficPolicy" not in spec


def test_service_named_target_port_kept() -> None:
    spec = defaulted("services", service(ports=[{"port": 80, "targetPort": "http"}]))["spec"]
    assert spec["ports"][0]["targetPort"] == "http"


def test_node_port_and_load_balancer_defaults() -> None:
    node_port = defaulted("services", service(type="NodePort"))["spec"]
    assert node_port["externalTrafficPolicy"] == "Cluster"
    assert "allocateLoadBalancerNodePorts" not in node_port
    lb = defaulted("services", service(type="LoadBalancer"))["spec"]
    assert lb["allocateLoadBalancerNodePorts"] is True


def test_client_ip_affinity_timeout() -> None:
    spec = defaulted("services", service(sessionAffinity="ClientIP"))["spec"]
    assert spec["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}


def test_affinity_none_drops_config() -> None:
    spec = defaulted("services", service(sessionAffinityConfig={"clientIP": {"timeoutSeconds": 5}}))["spec"]
    assert "sessionAffinityConfig" not in spec


def test_cluster_ips_follow_cluster_ip() -> None:
    assert defaulted("services", service(clusterIP="10.96.0.10"))["spec"]["clusterIPs"] == ["10.96.0.10"]
    assert defaulted("services", service(clusterIPs=["10.96.0.11"]))["spec"]["clusterIP"] == "10.96.0.11"


def test_headless_without_selector_requires_dual_stack() -> None:
    spec = defaulted("services", {"metadata": {"name": "db"}, "spec": {"clusterIP": "None"}})["spec"]
    assert spec["ipFamilyPolicy"] == "RequireDualStack"


def test_external_name_gets_no_ip_families() -> None:
    spec = defaulted("services", {"spec": {"type": "ExternalName", "externalName": "example.com"}})["spec"]
    assert "ipFamilies" not in spec and "ipFamilyPolicy" not in spec and "internalTrafficPolicy" not in spec


def test_namespace_defaults_on_create() -> None:
    obj = defaulted("namespaces", {"metadata": {"name": "shop"}})
    assert obj["metadata"]["labels"] == {"kubernetes.io/metadata.name": "shop"}
    assert obj["spec"] == {"finalizers": ["kubernetes"]}
    assert obj["status"] == {"phase": "Active"}


def test_namespace_finalizer_not_restored_on_update() -> None:
    obj = defaulted("namespaces", {"metadata": {"name": "shop", "uid": UID}, "spec": {"finalizers": []}})
    assert obj["spec"]["finalizers"] == []


def test_namespace_name_label_is_authoritative() -> None:
    obj = defaulted("namespaces", {"metadata": {"name": "shop", "labels": {"kubernetes.io/metadata.name": "other"}}})
    assert obj["metadata"]["labels"]["kubernetes.io/metadata.name"] == "shop"


def test_secret_defaults() -> None:
    obj = defaulted("secrets", {"metadata": {"name": "db"}, "data": {"user": "b2xk"}, "stringData": {"user": "admin", "pass": "s3cret"}})
    assert obj["type"] == "Opaque"
    assert "stringData" not in obj
    assert obj["data"] == {"user": base64.b64encode(b"admin").decode(), "pass": base64.b64encode(b"s3cret").decode()}


def test_secret_keeps_type() -> None:
    assert defaulted("secrets", {"type": "kubernetes.io/tls", "data": {}})["type"] == "kubernetes.io/tls"


def test_node_defaults() -> None:
    obj = defaulted("nodes", {"metadata": {"name": "n1"}, "spec": {"podCIDR": "10.244.1.0/24"}, "status": {"capacity": {"cpu": "4"}}})
    assert obj["spec"]["podCIDRs"] == ["10.244.1.0/24"]
    assert obj["status"]["allocatable"] == {"cpu": "4"}


def test_endpoints_port_protocol() -> None:
    obj = defaulted("endpoints", {"subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]})
    assert obj["subsets"][0]["ports"] == [{"port": 80, "protocol": "TCP"}]


# ---- networking, autoscaling -----------------------------------------------------------------


def test_ingress_class_parameters_scope() -> None:
    obj = defaulted("ingressclasses.networking.k8s.io", {"spec": {"controller": "x.io/c", "parameters": {"kind": "K", "name": "n"}}})
    assert obj["spec"]["parameters"]["scope"] == "Cluster"


def hpa(**spec: Any) -> dict:
    return {"metadata": {"name": "web"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 5, **spec}}


def test_hpa_defaults() -> None:
    spec = defaulted("horizontalpodautoscalers.autoscaling", hpa())["spec"]
    assert spec["minReplicas"] == 1
    assert spec["metrics"] == [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]
    assert "behavior" not in spec


def test_hpa_status_always_has_desired_replicas() -> None:
    assert defaulted("horizontalpodautoscalers.autoscaling", hpa())["status"] == {"desiredReplicas": 0}
    obj = hpa()
    obj["status"] = {"currentReplicas": 2, "desiredReplicas": 3}
    assert defaulted("horizontalpodautoscalers.autoscaling", obj)["status"] == {"currentReplicas": 2, "desiredReplicas": 3}


def test_hpa_behavior_defaults() -> None:
    spec = defaulted("horizontalpodautoscalers.autoscaling", hpa(behavior={"scaleDown": {"stabilizationWindowSeconds": 60}}))["spec"]
    assert spec["behavior"] == {
        "scaleUp": {
            "stabilizationWindowSeconds": 0,
            "selectPolicy": "Max",
            "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15}, {"type": "Percent", "value": 100, "periodSeconds": 15}],
        },
        "scaleDown": {
            "stabilizationWindowSeconds": 60,
            "selectPolicy": "Max",
            "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
        },
    }


def test_hpa_default_policies_are_not_shared() -> None:
    first = defaulted("horizontalpodautoscalers.autoscaling", hpa(behavior={}))
    first["spec"]["behavior"]["scaleUp"]["policies"][0]["value"] = 99
    second = defaulted("horizontalpodautoscalers.autoscaling", hpa(behavior={}))
    assert second["spec"]["behavior"]["scaleUp"]["policies"][0]["value"] == 4


# ---- idempotence -------------------------------------------------------------------------------

REALISTIC: list[tuple[str, Callable[[], dict]]] = [
    ("pods", lambda: pod(hostNetwork=True, volumes=[{"name": "v"}, {"name": "s", "secret": {"secretName": "x"}}], initContainers=[container(name="init", resources={"limits": {"cpu": "1"}})])),
    ("deployments.apps", deployment),
    ("replicasets.apps", deployment),
    ("daemonsets.apps", deployment),
    ("jobs.batch", job),
    ("services", lambda: service(type="LoadBalancer", sessionAffinity="ClientIP")),
    ("services", lambda: {"spec": {"clusterIP": "None"}}),
    ("namespaces", lambda: {"metadata": {"name": "shop"}}),
    ("secrets", lambda: {"stringData": {"a": "b"}}),
    ("nodes", lambda: {"spec": {"podCIDR": "10.244.0.0/24"}, "status": {"capacity": {"cpu": "1"}}}),
    ("endpoints", lambda: {"subsets": [{"ports": [{"port": 1}]}]}),
    ("ingressclasses.networking.k8s.io", lambda: {"spec": {"parameters": {"kind": "K", "name": "n"}}}),
    ("horizontalpodautoscalers.autoscaling", lambda: hpa(behavior={})),
    ("configmaps", lambda: {"data": {"a": "b"}}),
    ("leases.coordination.k8s.io", lambda: {"spec": {"holderIdentity": "n1"}}),
]


@pytest.mark.parametrize(("key", "make"), REALISTIC, ids=[f"{k}-{i}" for i, (k, _) in enumerate(REALISTIC)])
def test_defaulting_twice_changes_nothing(key: str, make: Callable[[], dict]) -> None:
    once = defaulted(key, make())
    assert defaulted(key, once) == once


def test_every_kind_can_be_defaulted() -> None:
    for info in RESOURCES:
        obj: dict = {"metadata": {"name": "x"}}
        apply_defaults(info, obj)
        assert isinstance(obj, dict)


# ---- garbage never raises ----------------------------------------------------------------------

FIELD_NAMES = st.sampled_from(
    [
        "metadata", "spec", "status", "name", "uid", "labels", "containers", "initContainers", "image",
        "ports", "containerPort", "hostPort", "protocol", "template", "strategy", "rollingUpdate",
        "updateStrategy", "volumes", "secret", "configMap", "projected", "sources", "downwardAPI",
        "items", "fieldRef", "serviceAccountToken", "hostPath", "ephemeral", "volumeClaimTemplate",
        "resources", "limits", "requests", "env", "valueFrom", "livenessProbe", "readinessProbe",
        "startupProbe", "httpGet", "grpc", "lifecycle", "preStop", "type", "clusterIP", "clusterIPs",
        "sessionAffinity", "sessionAffinityConfig", "clientIP", "externalIPs", "selector", "data",
        "stringData", "finalizers", "subsets", "capacity", "podCIDR", "podCIDRs", "behavior",
        "scaleUp", "scaleDown", "policies", "metrics", "parameters", "podFailurePolicy", "rules",
        "onPodConditions", "manualSelector", "hostNetwork", "priorityClassName", "completions",
        "parallelism", "backoffLimitPerIndex", "image", "reference",
    ]
)
JSON = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=10),
        st.sampled_from(["", "None", "RollingUpdate", "ClientIP", "LoadBalancer", "nginx", "Always"]),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(FIELD_NAMES, st.text(max_size=6)), children, max_size=4),
    ),
    max_leaves=16,
)
KEYS = sorted({key for key, _ in REALISTIC} | {r.key for r in RESOURCES})


def positions(obj: Any, prefix: tuple = ()) -> Iterator[tuple]:
    yield prefix
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from positions(value, (*prefix, key))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            yield from positions(value, (*prefix, i))


def replaced(obj: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    obj = copy.deepcopy(obj)
    target = obj
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return obj


@pytest.mark.parametrize("key", KEYS)
@settings(max_examples=80, deadline=None)
@given(value=JSON)
def test_garbage_objects_never_raise(key: str, value: Any) -> None:
    apply_defaults(by_key(key), value)


@pytest.mark.parametrize(("key", "make"), REALISTIC, ids=[f"{k}-{i}" for i, (k, _) in enumerate(REALISTIC)])
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_garbage_anywhere_never_raises_and_settles(key: str, make: Callable[[], dict], data: st.DataObject) -> None:
    base = defaulted(key, make())
    path = data.draw(st.sampled_from(list(positions(base))), label="path")
    obj = replaced(base, path, data.draw(JSON, label="value"))
    if isinstance(obj, dict):
        obj.setdefault("metadata", {"name": "x"}) if isinstance(obj.get("metadata", {}), dict) else None
        extra_key = data.draw(FIELD_NAMES, label="extra key")
        target = data.draw(st.sampled_from([p for p in positions(obj) if isinstance(_at(obj, p), dict)]), label="at")
        _at(obj, target)[extra_key] = data.draw(JSON, label="extra value")
    once = defaulted(key, obj)
    assert defaulted(key, once) == once


def _at(obj: Any, path: tuple) -> Any:
    for part in path:
        obj = obj[part]
    return obj
