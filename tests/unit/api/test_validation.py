"""Validation as a user of a real cluster sees it: which field, and upstream's words.

Every object goes through `apply_defaults` first, as the API server does.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tuik8s.api.defaults import apply_defaults
from tuik8s.api.errors import FieldError
from tuik8s.api.registry import RESOURCES, by_key
from tuik8s.api.validation import (
    INTERNAL,
    validate_create,
    validate_status_update,
    validate_update,
)

DELETE = object()
UID = "6d1a2b3c-0000-4000-8000-000000000001"


# ---- realistic manifests, one or more per kind -----------------------------------------------


def pod() -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web-0", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "initContainers": [{"name": "migrate", "image": "busybox:1.36", "command": ["sh", "-c", "true"]}],
            "containers": [
                {
                    "name": "web",
                    "image": "nginx:1.27",
                    "ports": [{"name": "http", "containerPort": 80}, {"name": "metrics", "containerPort": 9090}],
                    "env": [
                        {"name": "MODE", "value": "prod"},
                        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                        {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
                    ],
                    "envFrom": [{"configMapRef": {"name": "web-config"}}],
                    "resources": {
                        "requests": {"cpu": "100m", "memory": "64Mi"},
                        "limits": {"cpu": "1", "memory": "128Mi"},
                    },
                    "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "initialDelaySeconds": 5},
                    "readinessProbe": {"tcpSocket": {"port": 80}},
                    "startupProbe": {"exec": {"command": ["cat", "/tmp/ready"]}, "failureThreshold": 30},
                    "lifecycle": {"preStop": {"exec": {"command": ["nginx", "-s", "quit"]}}},
                    "volumeMounts": [
                        {"name": "config", "mountPath": "/etc/nginx/conf.d"},
                        {"name": "cache", "mountPath": "/var/cache/nginx"},
                        {"name": "tls", "mountPath": "/etc/tls", "readOnly": True},
                    ],
                    "securityContext": {"runAsUser": 101, "allowPrivilegeEscalation": False},
                }
            ],
            "volumes": [
                {"name": "config", "configMap": {"name": "web-config", "items": [{"key": "default.conf", "path": "default.conf"}]}},
                {"name": "cache", "emptyDir": {"sizeLimit": "1Gi"}},
                {"name": "tls", "secret": {"secretName": "web-tls"}},
            ],
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "tolerations": [
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
            ],
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {"matchExpressions": [{"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64", "arm64"]}]}
                        ]
                    }
                },
                "podAntiAffinity": {
                    "preferredDuringSchedulingIgnoredDuringExecution": [
                        {
                            "weight": 100,
                            "podAffinityTerm": {
                                "labelSelector": {"matchLabels": {"app": "web"}},
                                "topologyKey": "kubernetes.io/hostname",
                            },
                        }
                    ]
                },
            },
            "topologySpreadConstraints": [
                {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {"matchLabels": {"app": "web"}}}
            ],
            "serviceAccountName": "web",
        },
    }


def minimal_pod() -> dict:
    return {"metadata": {"name": "nginx", "namespace": "default"}, "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}


def deployment() -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["frontend"]}]},
            "template": {
                "metadata": {"labels": {"app": "web", "tier": "frontend"}, "annotations": {"prometheus.io/scrape": "true"}},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": "ghcr.io/example/web:2.1.0",
                            "ports": [{"containerPort": 8080, "name": "http"}],
                            "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}},
                            "resources": {"requests": {"cpu": "250m", "memory": "128Mi"}},
                        }
                    ]
                },
            },
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "minReadySeconds": 5,
        },
    }


def recreate_deployment() -> dict:
    obj = deployment()
    obj["spec"]["strategy"] = {"type": "Recreate"}
    return obj


def replica_set() -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "web-5d4f8c7b9", "namespace": "default"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web", "pod-template-hash": "5d4f8c7b9"}},
            "template": {
                "metadata": {"labels": {"app": "web", "pod-template-hash": "5d4f8c7b9"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
            },
        },
    }


def daemon_set() -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "node-exporter", "namespace": "kube-system"},
        "spec": {
            "selector": {"matchLabels": {"app": "node-exporter"}},
            "template": {
                "metadata": {"labels": {"app": "node-exporter"}},
                "spec": {
                    "hostNetwork": True,
                    "containers": [
                        {"name": "exporter", "image": "prom/node-exporter:v1.8.1", "ports": [{"containerPort": 9100, "hostPort": 9100}]}
                    ],
                    "tolerations": [{"operator": "Exists"}],
                    "volumes": [{"name": "proc", "hostPath": {"path": "/proc", "type": "Directory"}}],
                },
            },
        },
    }


def job() -> dict:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "pi", "namespace": "default", "uid": UID},
        "spec": {
            "backoffLimit": 4,
            "template": {
                "spec": {
                    "containers": [{"name": "pi", "image": "perl:5.34", "command": ["perl", "-Mbignum=bpi", "-wle", "print bpi(2000)"]}],
                    "restartPolicy": "Never",
                }
            },
        },
    }


def job_without_uid() -> dict:
    obj = job()
    del obj["metadata"]["uid"]
    return obj


def manual_job() -> dict:
    obj = job()
    obj["spec"]["manualSelector"] = True
    obj["spec"]["selector"] = {"matchLabels": {"run": "pi"}}
    obj["spec"]["template"]["metadata"] = {"labels": {"run": "pi"}}
    obj["spec"]["template"]["spec"]["restartPolicy"] = "OnFailure"
    return obj


def service() -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "selector": {"app": "web"},
            "ports": [
                {"name": "http", "port": 80, "targetPort": "http"},
                {"name": "https", "port": 443, "targetPort": 8443},
            ],
        },
    }


def node_port_service() -> dict:
    return {
        "metadata": {"name": "web-np", "namespace": "default"},
        "spec": {"type": "NodePort", "selector": {"app": "web"}, "ports": [{"port": 80, "nodePort": 30080}]},
    }


def load_balancer_service() -> dict:
    return {
        "metadata": {"name": "web-lb", "namespace": "default"},
        "spec": {
            "type": "LoadBalancer",
            "selector": {"app": "web"},
            "ports": [{"port": 443, "protocol": "TCP"}],
            "externalTrafficPolicy": "Local",
            "loadBalancerSourceRanges": ["10.0.0.0/8"],
            "sessionAffinity": "ClientIP",
        },
    }


def headless_service() -> dict:
    return {"metadata": {"name": "db", "namespace": "default"}, "spec": {"clusterIP": "None", "selector": {"app": "db"}}}


def external_name_service() -> dict:
    return {"metadata": {"name": "search", "namespace": "default"}, "spec": {"type": "ExternalName", "externalName": "search.example.com."}}


def namespace() -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "labels": {"team": "payments"}}}


def node() -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "lab-node-1", "labels": {"kubernetes.io/hostname": "lab-node-1"}},
        "spec": {"podCIDR": "10.244.1.0/24", "taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]},
        "status": {
            "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            "addresses": [{"type": "InternalIP", "address": "172.18.0.3"}],
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
        },
    }


def endpoints() -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": "web", "namespace": "default"},
        "subsets": [
            {
                "addresses": [{"ip": "10.244.1.5", "nodeName": "lab-node-1", "targetRef": {"kind": "Pod", "name": "web-0"}}],
                "notReadyAddresses": [{"ip": "10.244.2.7"}],
                "ports": [{"name": "http", "port": 8080}, {"name": "https", "port": 8443}],
            }
        ],
    }


def endpoint_slice() -> dict:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": "web-abcde", "namespace": "default", "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "endpoints": [
            {
                "addresses": ["10.244.1.5"],
                "conditions": {"ready": True, "serving": True, "terminating": False},
                "nodeName": "lab-node-1",
                "zone": "zone-a",
                "targetRef": {"kind": "Pod", "namespace": "default", "name": "web-0"},
            }
        ],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP", "appProtocol": "http"}, {"port": 9090}],
    }


def config_map() -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "web-config", "namespace": "default"},
        "data": {"default.conf": "server { listen 80; }", "LOG_LEVEL": "info"},
        "binaryData": {"logo.png": "iVBORw0KGgo="},
    }


def secret() -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": "default"},
        "data": {"password": "czNjcjN0"},
        "stringData": {"username": "admin"},
    }


def tls_secret() -> dict:
    return {
        "metadata": {"name": "web-tls", "namespace": "default"},
        "type": "kubernetes.io/tls",
        "data": {"tls.crt": "LS0tLS1CRUdJTg==", "tls.key": "LS0tLS1CRUdJTg=="},
    }


def event() -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "web-0.17a3b2c1d0e9f8a7", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web-0", "uid": UID, "apiVersion": "v1"},
        "reason": "Scheduled",
        "message": "Successfully assigned default/web-0 to lab-node-1",
        "type": "Normal",
        "source": {"component": "default-scheduler"},
        "count": 1,
    }


def service_account() -> dict:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "web", "namespace": "default"}, "imagePullSecrets": [{"name": "regcred"}]}


def binding() -> dict:
    return {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "web-0", "namespace": "default"}, "target": {"kind": "Node", "name": "lab-node-1"}}


def lease() -> dict:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "lab-node-1", "namespace": "kube-node-lease"},
        "spec": {"holderIdentity": "lab-node-1", "leaseDurationSeconds": 40, "renewTime": "2024-05-01T10:00:00.000000Z"},
    }


def controller_revision() -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {"name": "node-exporter-7c9d8f", "namespace": "kube-system"},
        "data": {"spec": {"template": {"spec": {"containers": [{"name": "exporter", "image": "prom/node-exporter:v1.8.1"}]}}}},
        "revision": 1,
    }


def ingress() -> dict:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "blog", "namespace": "default"},
        "spec": {
            "ingressClassName": "tuik8s",
            "tls": [{"hosts": ["blog.example.com"], "secretName": "blog-tls"}],
            "rules": [
                {
                    "host": "blog.example.com",
                    "http": {
                        "paths": [
                            {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "blog", "port": {"number": 80}}}},
                            {"path": "/api/v1", "pathType": "Exact", "backend": {"service": {"name": "api", "port": {"name": "http"}}}},
                        ]
                    },
                },
                {"host": "*.example.com", "http": {"paths": [{"pathType": "ImplementationSpecific", "backend": {"service": {"name": "blog", "port": {"number": 80}}}}]}},
            ],
        },
    }


def default_backend_ingress() -> dict:
    return {
        "metadata": {"name": "catch-all", "namespace": "default"},
        "spec": {"defaultBackend": {"resource": {"apiGroup": "k8s.example.com", "kind": "StorageBucket", "name": "static-assets"}}},
    }


def ingress_class() -> dict:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "IngressClass",
        "metadata": {"name": "tuik8s", "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"}},
        "spec": {"controller": "tuik8s.io/ingress", "parameters": {"kind": "IngressParameters", "name": "external"}},
    }


def hpa() -> dict:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 2,
            "maxReplicas": 10,
            "metrics": [
                {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}},
                {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "500Mi"}}},
                {"type": "Pods", "pods": {"metric": {"name": "requests_per_second"}, "target": {"type": "AverageValue", "averageValue": "100"}}},
            ],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}},
        },
    }


def minimal_hpa() -> dict:
    return {
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 5},
    }


KEYS = {
    "Pod": "pods",
    "Deployment": "deployments.apps",
    "ReplicaSet": "replicasets.apps",
    "DaemonSet": "daemonsets.apps",
    "Job": "jobs.batch",
    "Service": "services",
    "Namespace": "namespaces",
    "Node": "nodes",
    "Endpoints": "endpoints",
    "EndpointSlice": "endpointslices.discovery.k8s.io",
    "ConfigMap": "configmaps",
    "Secret": "secrets",
    "Event": "events",
    "ServiceAccount": "serviceaccounts",
    "Binding": "bindings",
    "Lease": "leases.coordination.k8s.io",
    "ControllerRevision": "controllerrevisions.apps",
    "Ingress": "ingresses.networking.k8s.io",
    "IngressClass": "ingressclasses.networking.k8s.io",
    "HorizontalPodAutoscaler": "horizontalpodautoscalers.autoscaling",
}

VALID: list[tuple[str, Callable[[], dict]]] = [
    ("Pod", pod),
    ("Pod", minimal_pod),
    ("Deployment", deployment),
    ("Deployment", recreate_deployment),
    ("ReplicaSet", replica_set),
    ("DaemonSet", daemon_set),
    ("Job", job),
    ("Job", job_without_uid),
    ("Job", manual_job),
    ("Service", service),
    ("Service", node_port_service),
    ("Service", load_balancer_service),
    ("Service", headless_service),
    ("Service", external_name_service),
    ("Namespace", namespace),
    ("Node", node),
    ("Endpoints", endpoints),
    ("EndpointSlice", endpoint_slice),
    ("ConfigMap", config_map),
    ("Secret", secret),
    ("Secret", tls_secret),
    ("Event", event),
    ("ServiceAccount", service_account),
    ("Binding", binding),
    ("Lease", lease),
    ("ControllerRevision", controller_revision),
    ("Ingress", ingress),
    ("Ingress", default_backend_ingress),
    ("IngressClass", ingress_class),
    ("HorizontalPodAutoscaler", hpa),
    ("HorizontalPodAutoscaler", minimal_hpa),
]


def defaulted(kind: str, obj: dict) -> dict:
    obj = copy.deepcopy(obj)
    apply_defaults(by_key(KEYS[kind]), obj)
    return obj


def create_errors(kind: str, obj: dict) -> list[FieldError]:
    return validate_create(by_key(KEYS[kind]), defaulted(kind, obj))


def test_every_served_kind_has_a_valid_example() -> None:
    assert {r.kind for r in RESOURCES} == {kind for kind, _ in VALID}


@pytest.mark.parametrize(("kind", "make"), VALID, ids=[f"{k}-{m.__name__}" for k, m in VALID])
def test_realistic_manifests_are_valid(kind: str, make: Callable[[], dict]) -> None:
    assert create_errors(kind, make()) == []


@pytest.mark.parametrize(("kind", "make"), VALID, ids=[f"{k}-{m.__name__}" for k, m in VALID])
def test_unchanged_update_is_valid(kind: str, make: Callable[[], dict]) -> None:
    obj = defaulted(kind, make())
    assert validate_update(by_key(KEYS[kind]), copy.deepcopy(obj), obj) == []


# ---- one failing example per rule --------------------------------------------------------------


def with_changes(obj: dict, changes: dict[str, Any]) -> dict:
    """obj with each dotted path set (digits index lists; DELETE removes the key)."""
    obj = copy.deepcopy(obj)
    for dotted, value in changes.items():
        parts: list[Any] = [int(p) if p.isdigit() else p for p in dotted.split(".")]
        target: Any = obj
        for part in parts[:-1]:
            target = target[part]
        if value is DELETE:
            del target[parts[-1]]
        else:
            target[parts[-1]] = value
    return obj


LABEL_REGEX = "(e.g. 'my-name' or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
C0 = "spec.containers.0"
TC0 = "spec.template.spec.containers.0"
RU = "spec.strategy.rollingUpdate"

# (id, kind, base, changes, field, message); a message ending in "..." is a prefix.
INVALID: list[tuple[str, str, Callable[[], dict], dict[str, Any], str, str]] = [
    # metadata
    ("meta-name-required", "ConfigMap", config_map, {"metadata.name": DELETE}, "metadata.name", "Required value: name or generateName is required"),
    ("meta-label-value", "Pod", minimal_pod, {"metadata.labels": {"app": "web server"}}, "metadata.labels", 'Invalid value: "web server": a valid label must be...'),
    ("namespace-name-dots", "Namespace", namespace, {"metadata.name": "shop.eu"}, "metadata.name", 'Invalid value: "shop.eu": must not contain dots'),
    ("service-name-dns1035", "Service", service, {"metadata.name": "1web"}, "metadata.name", 'Invalid value: "1web": a DNS-1035 label must consist of...'),
    ("pod-name-subdomain", "Pod", minimal_pod, {"metadata.name": "Web_0"}, "metadata.name", 'Invalid value: "Web_0": a lowercase RFC 1123 subdomain...'),
    # wrong JSON types
    ("spec-not-object", "Pod", minimal_pod, {"spec": "nginx"}, "spec", 'Invalid value: "nginx": must be an object'),
    ("containers-not-list", "Pod", minimal_pod, {"spec.containers": {"name": "web"}}, "spec.containers", 'Invalid value: map[string]interface {}{"name":"web"}: must be a list'),
    ("replicas-not-int", "Deployment", deployment, {"spec.replicas": "3"}, "spec.replicas", 'Invalid value: "3": must be an integer'),
    ("metadata-list", "Pod", minimal_pod, {"metadata": ["web"]}, "metadata", 'Invalid value: []string{"web"}: metadata must be an object'),
    # containers
    ("containers-required", "Pod", minimal_pod, {"spec.containers": []}, "spec.containers", "Required value"),
    ("container-name-label", "Pod", minimal_pod, {f"{C0}.name": "Web_1"}, f"{C0.replace('.0', '[0]')}.name", f'Invalid value: "Web_1": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or \'-\', and must start and end with an alphanumeric character {LABEL_REGEX}'),
    ("container-name-required", "Pod", minimal_pod, {f"{C0}.name": DELETE}, "spec.containers[0].name", "Required value"),
    ("container-name-duplicate", "Pod", pod, {"spec.initContainers.0.name": "web"}, "spec.initContainers[0].name", 'Duplicate value: "web"'),
    ("image-required", "Pod", minimal_pod, {f"{C0}.image": ""}, "spec.containers[0].image", "Required value"),
    ("image-whitespace", "Pod", minimal_pod, {f"{C0}.image": " nginx"}, "spec.containers[0].image", 'Invalid value: " nginx": must not have leading or trailing whitespace'),
    ("template-image-required", "Deployment", deployment, {f"{TC0}.image": DELETE}, "spec.template.spec.containers[0].image", "Required value"),
    ("image-pull-policy", "Pod", minimal_pod, {f"{C0}.imagePullPolicy": "Sometimes"}, "spec.containers[0].imagePullPolicy", 'Unsupported value: "Sometimes": supported values: "Always", "IfNotPresent", "Never"'),
    ("termination-message-policy", "Pod", minimal_pod, {f"{C0}.terminationMessagePolicy": "Stdout"}, "spec.containers[0].terminationMessagePolicy", "Invalid value: \"Stdout\": must be 'File' or 'FallbackToLogsOnError'"),
    ("restart-policy", "Pod", minimal_pod, {"spec.restartPolicy": "Sometimes"}, "spec.restartPolicy", 'Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"'),
    ("dns-policy", "Pod", minimal_pod, {"spec.dnsPolicy": "Google"}, "spec.dnsPolicy", 'Unsupported value: "Google": supported values: "ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"'),
    ("dns-policy-none-needs-config", "Pod", minimal_pod, {"spec.dnsPolicy": "None"}, "spec.dnsConfig", "Required value: must provide `dnsConfig` when `dnsPolicy` is None"),
    ("active-deadline", "Pod", minimal_pod, {"spec.activeDeadlineSeconds": 0}, "spec.activeDeadlineSeconds", "Invalid value: 0: must be between 1 and 2147483647, inclusive"),
    ("ephemeral-on-create", "Pod", minimal_pod, {"spec.ephemeralContainers": [{"name": "debug", "image": "busybox"}]}, "spec.ephemeralContainers", "Forbidden: cannot be set on create"),
    ("node-selector-value", "Pod", minimal_pod, {"spec.nodeSelector": {"disk": "fast ssd"}}, "spec.nodeSelector", 'Invalid value: "fast ssd": a valid label must be...'),
    ("toleration-exists-value", "Pod", minimal_pod, {"spec.tolerations": [{"key": "k", "operator": "Exists", "value": "v"}]}, "spec.tolerations[0].operator", "Invalid value: \"v\": value must be empty when `operator` is 'Exists'"),
    ("toleration-effect", "Pod", minimal_pod, {"spec.tolerations": [{"key": "k", "operator": "Equal", "value": "v", "effect": "Never"}]}, "spec.tolerations[0].effect", 'Unsupported value: "Never": supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"'),
    ("node-affinity-operator", "Pod", pod, {"spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms.0.matchExpressions.0.operator": "Like"}, "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator", 'Invalid value: "Like": not a valid selector operator'),
    ("spread-max-skew", "Pod", pod, {"spec.topologySpreadConstraints.0.maxSkew": 0}, "spec.topologySpreadConstraints[0].maxSkew", "Invalid value: 0: must be greater than zero"),
    ("spread-when-unsatisfiable", "Pod", pod, {"spec.topologySpreadConstraints.0.whenUnsatisfiable": "Maybe"}, "spec.topologySpreadConstraints[0].whenUnsatisfiable", 'Unsupported value: "Maybe": supported values: "DoNotSchedule", "ScheduleAnyway"'),
    ("spread-topology-key", "Pod", pod, {"spec.topologySpreadConstraints.0.topologyKey": ""}, "spec.topologySpreadConstraints[0].topologyKey", "Required value: can not be empty"),
    ("replicas-int32", "Deployment", deployment, {"spec.replicas": 3_000_000_000}, "spec.replicas", "Invalid value: 3000000000: must be less than or equal to 2147483647"),
    # ports
    ("container-port-required", "Pod", minimal_pod, {f"{C0}.ports": [{"name": "http"}]}, "spec.containers[0].ports[0].containerPort", "Required value"),
    ("container-port-range", "Pod", minimal_pod, {f"{C0}.ports": [{"containerPort": 70000}]}, "spec.containers[0].ports[0].containerPort", "Invalid value: 70000: must be between 1 and 65535, inclusive"),
    ("host-port-range", "Pod", minimal_pod, {f"{C0}.ports": [{"containerPort": 80, "hostPort": -1}]}, "spec.containers[0].ports[0].hostPort", "Invalid value: -1: must be between 1 and 65535, inclusive"),
    ("port-name-duplicate", "Pod", pod, {f"{C0}.ports.1.name": "http"}, "spec.containers[0].ports[1].name", 'Duplicate value: "http"'),
    ("port-name-charset", "Pod", minimal_pod, {f"{C0}.ports": [{"containerPort": 80, "name": "HTTP_1"}]}, "spec.containers[0].ports[0].name", 'Invalid value: "HTTP_1": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)'),
    ("port-name-letter", "Pod", minimal_pod, {f"{C0}.ports": [{"containerPort": 80, "name": "8080"}]}, "spec.containers[0].ports[0].name", 'Invalid value: "8080": must contain at least one letter (a-z)'),
    ("port-name-length", "Pod", minimal_pod, {f"{C0}.ports": [{"containerPort": 80, "name": "a-very-long-port-name"}]}, "spec.containers[0].ports[0].name", 'Invalid value: "a-very-long-port-name": must be no more than 15 characters'),
    ("port-protocol", "Pod", minimal_pod, {f"{C0}.ports": [{"containerPort": 80, "protocol": "HTTP"}]}, "spec.containers[0].ports[0].protocol", 'Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"'),
    ("host-network-port-mismatch", "Pod", minimal_pod, {"spec.hostNetwork": True, f"{C0}.ports": [{"containerPort": 80, "hostPort": 8080}]}, "spec.containers[0].ports[0].containerPort", "Invalid value: 80: must match `hostPort` when `hostNetwork` is true"),
    ("host-port-duplicate", "Pod", minimal_pod, {"spec.containers": [{"name": "a", "image": "x", "ports": [{"containerPort": 80, "hostPort": 8080}]}, {"name": "b", "image": "x", "ports": [{"containerPort": 81, "hostPort": 8080}]}]}, "spec.containers[1].ports[0].hostPort", 'Duplicate value: "TCP//8080"'),
    # resources
    ("requests-over-limits", "Pod", pod, {f"{C0}.resources.requests.cpu": "2"}, "spec.containers[0].resources.requests[cpu]", 'Invalid value: "2": must be less than or equal to cpu limit of 1'),
    ("quantity-format", "Pod", pod, {f"{C0}.resources.limits.memory": "lots"}, "spec.containers[0].resources.limits[memory]", "Invalid value: \"lots\": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"),
    ("quantity-negative", "Pod", pod, {f"{C0}.resources.requests.memory": "-64Mi"}, "spec.containers[0].resources.requests[memory]", 'Invalid value: "-64Mi": must be greater than or equal to 0'),
    ("resource-name", "Pod", minimal_pod, {f"{C0}.resources": {"limits": {"cpuu": "1"}}}, "spec.containers[0].resources.limits[cpuu]", 'Invalid value: "cpuu": must be a standard resource type or fully qualified'),
    ("extended-resource-integer", "Pod", minimal_pod, {f"{C0}.resources": {"limits": {"example.com/gpu": "500m"}}}, "spec.containers[0].resources.limits[example.com/gpu]", 'Invalid value: "500m": must be an integer'),
    # volumes and mounts
    ("mount-unknown-volume", "Pod", pod, {f"{C0}.volumeMounts.0.name": "data"}, "spec.containers[0].volumeMounts[0].name", 'Not found: "data"'),
    ("mount-path-required", "Pod", pod, {f"{C0}.volumeMounts.0.mountPath": ""}, "spec.containers[0].volumeMounts[0].mountPath", "Required value"),
    ("mount-path-unique", "Pod", pod, {f"{C0}.volumeMounts.1.mountPath": "/etc/nginx/conf.d"}, "spec.containers[0].volumeMounts[1].mountPath", 'Invalid value: "/etc/nginx/conf.d": must be unique'),
    ("mount-subpath-backstep", "Pod", pod, {f"{C0}.volumeMounts.0.subPath": "../etc"}, "spec.containers[0].volumeMounts.subPath", "Invalid value: \"../etc\": must not contain '..'"),
    ("volume-two-sources", "Pod", pod, {"spec.volumes.1.hostPath": {"path": "/tmp"}}, "spec.volumes[1].hostPath", "Forbidden: may not specify more than 1 volume type"),
    ("volume-name-duplicate", "Pod", pod, {"spec.volumes.1.name": "config"}, "spec.volumes[1].name", 'Duplicate value: "config"'),
    ("volume-name-label", "Pod", pod, {"spec.volumes.1.name": "Cache"}, "spec.volumes[1].name", 'Invalid value: "Cache": a lowercase RFC 1123 label...'),
    ("configmap-volume-name", "Pod", pod, {"spec.volumes.0.configMap.name": ""}, "spec.volumes[0].configMap.name", "Required value"),
    ("secret-volume-name", "Pod", pod, {"spec.volumes.2.secret": {}}, "spec.volumes[2].secret.secretName", "Required value"),
    ("volume-default-mode", "Pod", pod, {"spec.volumes.2.secret.defaultMode": 512}, "spec.volumes[2].secret.defaultMode", "Invalid value: 512: must be a number between 0 and 0777 (octal), both inclusive"),
    ("volume-item-path", "Pod", pod, {"spec.volumes.0.configMap.items.0.path": "/etc/x"}, "spec.volumes[0].configMap.items[0].path", 'Invalid value: "/etc/x": must be a relative path'),
    ("host-path-type", "DaemonSet", daemon_set, {"spec.template.spec.volumes.0.hostPath.type": "Folder"}, "spec.template.spec.volumes[0].hostPath.type", 'Unsupported value: "Folder": supported values: "", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File", "FileOrCreate", "Socket"'),
    # env
    ("env-name-required", "Pod", pod, {f"{C0}.env.0.name": ""}, "spec.containers[0].env[0].name", "Required value"),
    ("env-name-relaxed", "Pod", pod, {f"{C0}.env.0.name": "A=B"}, "spec.containers[0].env[0].name", "Invalid value: \"A=B\": a valid environment variable name must consist only of printable ASCII characters other than '='"),
    ("env-value-from-two", "Pod", pod, {f"{C0}.env.1.valueFrom.configMapKeyRef": {"name": "c", "key": "k"}}, "spec.containers[0].env[1].valueFrom", 'Invalid value: "": may not have more than one field specified at a time'),
    ("env-value-and-from", "Pod", pod, {f"{C0}.env.1.value": "x"}, "spec.containers[0].env[1].valueFrom", 'Invalid value: "": may not be specified when `value` is not empty'),
    ("env-secret-key", "Pod", pod, {f"{C0}.env.2.valueFrom.secretKeyRef.key": "pass word"}, "spec.containers[0].env[2].valueFrom.secretKeyRef.key", 'Invalid value: "pass word": a valid config key...'),
    # probes
    ("probe-no-handler", "Pod", pod, {f"{C0}.livenessProbe": {"initialDelaySeconds": 5}}, "spec.containers[0].livenessProbe", "Required value: must specify a handler type"),
    ("probe-two-handlers", "Pod", pod, {f"{C0}.livenessProbe.tcpSocket": {"port": 80}}, "spec.containers[0].livenessProbe.tcpSocket", "Forbidden: may not specify more than 1 handler type"),
    ("probe-success-threshold", "Pod", pod, {f"{C0}.livenessProbe.successThreshold": 2}, "spec.containers[0].livenessProbe.successThreshold", "Invalid value: 2: must be 1"),
    ("probe-negative", "Pod", pod, {f"{C0}.readinessProbe.periodSeconds": -5}, "spec.containers[0].readinessProbe.periodSeconds", "Invalid value: -5: must be greater than or equal to 0"),
    ("probe-port-name", "Pod", pod, {f"{C0}.livenessProbe.httpGet.port": "Web"}, "spec.containers[0].livenessProbe.httpGet.port", 'Invalid value: "Web": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)'),
    ("probe-scheme", "Pod", pod, {f"{C0}.livenessProbe.httpGet.scheme": "FTP"}, "spec.containers[0].livenessProbe.httpGet.scheme", 'Unsupported value: "FTP": supported values: "HTTP", "HTTPS"'),
    ("probe-exec-command", "Pod", pod, {f"{C0}.startupProbe.exec.command": []}, "spec.containers[0].startupProbe.exec.command", "Required value"),
    ("init-container-probe", "Pod", pod, {"spec.initContainers.0.livenessProbe": {"exec": {"command": ["true"]}}}, "spec.initContainers[0].livenessProbe", "Forbidden: may not be set for init containers without restartPolicy=Always"),
    ("lifecycle-no-handler", "Pod", pod, {f"{C0}.lifecycle.preStop": {}}, "spec.containers[0].lifecycle.preStop", "Required value: must specify a handler type"),
    # workloads
    ("deploy-selector-required", "Deployment", deployment, {"spec.selector": DELETE}, "spec.selector", "Required value"),
    ("deploy-selector-mismatch", "Deployment", deployment, {"spec.template.metadata.labels": {"app": "x"}}, "spec.template.metadata.labels", 'Invalid value: map[string]string{"app":"x"}: `selector` does not match template `labels`'),
    ("deploy-selector-empty", "Deployment", deployment, {"spec.selector": {}}, "spec.selector", "Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment"),
    ("deploy-selector-operator", "Deployment", deployment, {"spec.selector.matchExpressions.0.operator": "Like"}, "spec.selector.matchExpressions[0].operator", 'Invalid value: "Like": not a valid selector operator'),
    ("deploy-selector-values", "Deployment", deployment, {"spec.selector.matchExpressions.0.values": []}, "spec.selector.matchExpressions[0].values", "Required value: must be specified when `operator` is 'In' or 'NotIn'"),
    ("deploy-template-label", "Deployment", deployment, {"spec.template.metadata.labels.tier": "front end"}, "spec.template.labels", 'Invalid value: "front end": a valid label must be...'),
    ("deploy-replicas", "Deployment", deployment, {"spec.replicas": -1}, "spec.replicas", "Invalid value: -1: must be greater than or equal to 0"),
    ("deploy-min-ready", "Deployment", deployment, {"spec.minReadySeconds": -1}, "spec.minReadySeconds", "Invalid value: -1: must be greater than or equal to 0"),
    ("deploy-progress-deadline", "Deployment", deployment, {"spec.progressDeadlineSeconds": 5}, "spec.progressDeadlineSeconds", "Invalid value: 5: must be greater than minReadySeconds"),
    ("deploy-history-limit", "Deployment", deployment, {"spec.revisionHistoryLimit": -2}, "spec.revisionHistoryLimit", "Invalid value: -2: must be greater than or equal to 0"),
    ("deploy-both-zero", "Deployment", deployment, {RU: {"maxSurge": 0, "maxUnavailable": "0%"}}, f"{RU}.maxUnavailable", 'Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:"0%"}: may not be 0 when `maxSurge` is 0'),
    ("deploy-bad-percent", "Deployment", deployment, {f"{RU}.maxSurge": "25x"}, f"{RU}.maxSurge", "Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"25x\"}: a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%' or '93%', regex used for validation is '[0-9]+%')"),
    ("deploy-over-100", "Deployment", deployment, {f"{RU}.maxUnavailable": "110%"}, f"{RU}.maxUnavailable", 'Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:"110%"}: must not be greater than 100%'),
    ("deploy-negative-surge", "Deployment", deployment, {f"{RU}.maxSurge": -1}, f"{RU}.maxSurge", "Invalid value: -1: must be greater than or equal to 0"),
    ("deploy-strategy-type", "Deployment", deployment, {"spec.strategy.type": "BlueGreen"}, "spec.strategy.type", 'Unsupported value: "BlueGreen": supported values: "Recreate", "RollingUpdate"'),
    ("deploy-recreate-rolling", "Deployment", deployment, {"spec.strategy.type": "Recreate"}, "spec.strategy.rollingUpdate", "Forbidden: may not be specified when strategy `type` is 'Recreate'"),
    ("deploy-template-restart", "Deployment", deployment, {"spec.template.spec.restartPolicy": "Never"}, "spec.template.spec.restartPolicy", 'Unsupported value: "Never": supported values: "Always"'),
    ("deploy-template-deadline", "Deployment", deployment, {"spec.template.spec.activeDeadlineSeconds": 30}, "spec.template.spec.activeDeadlineSeconds", "Forbidden: activeDeadlineSeconds in ReplicaSet is not Supported"),
    ("rs-replicas", "ReplicaSet", replica_set, {"spec.replicas": -3}, "spec.replicas", "Invalid value: -3: must be greater than or equal to 0"),
    ("rs-selector-mismatch", "ReplicaSet", replica_set, {"spec.template.metadata.labels": {"app": "web"}}, "spec.template.metadata.labels", 'Invalid value: map[string]string{"app":"web"}: `selector` does not match template `labels`'),
    ("ds-selector-empty", "DaemonSet", daemon_set, {"spec.selector": {"matchLabels": {}}}, "spec.selector", "Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for daemonset"),
    ("ds-both-zero", "DaemonSet", daemon_set, {"spec.updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}}}, "spec.updateStrategy.rollingUpdate.maxUnavailable", "Required value: cannot be 0 when maxSurge is 0"),
    ("ds-both-set", "DaemonSet", daemon_set, {"spec.updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": "10%"}}}, "spec.updateStrategy.rollingUpdate.maxSurge", 'Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:"10%"}: may not be set when maxUnavailable is non-zero'),
    ("ds-strategy-type", "DaemonSet", daemon_set, {"spec.updateStrategy": {"type": "Surge"}}, "spec.updateStrategy.type", 'Unsupported value: "Surge": supported values: "OnDelete", "RollingUpdate"'),
    ("ds-host-port-range", "DaemonSet", daemon_set, {f"{TC0}.ports.0.hostPort": 99999}, "spec.template.spec.containers[0].ports[0].hostPort", "Invalid value: 99999: must be between 1 and 65535, inclusive"),
    ("job-restart-always", "Job", job, {"spec.template.spec.restartPolicy": "Always"}, "spec.template.spec.restartPolicy", 'Unsupported value: "Always": supported values: "OnFailure", "Never"'),
    ("job-completions", "Job", job, {"spec.completions": -1}, "spec.completions", "Invalid value: -1: must be greater than or equal to 0"),
    ("job-parallelism", "Job", job, {"spec.parallelism": -1}, "spec.parallelism", "Invalid value: -1: must be greater than or equal to 0"),
    ("job-backoff", "Job", job, {"spec.backoffLimit": -1}, "spec.backoffLimit", "Invalid value: -1: must be greater than or equal to 0"),
    ("job-manual-selector-required", "Job", manual_job, {"spec.selector": DELETE}, "spec.selector", "Required value"),
    ("job-manual-selector-mismatch", "Job", manual_job, {"spec.template.metadata.labels": {"run": "e"}}, "spec.template.metadata.labels", 'Invalid value: map[string]string{"run":"e"}: `selector` does not match template `labels`'),
    ("job-completion-mode", "Job", job, {"spec.completionMode": "Sometimes"}, "spec.completionMode", 'Unsupported value: "Sometimes": supported values: "NonIndexed", "Indexed"'),
    ("job-indexed-needs-completions", "Job", job, {"spec.completionMode": "Indexed", "spec.completions": None, "spec.parallelism": 2}, "spec.completions", "Required value: when completion mode is Indexed"),
    ("controller-revision-data", "ControllerRevision", controller_revision, {"data": DELETE}, "data", "Required value: data is mandatory"),
    ("controller-revision-number", "ControllerRevision", controller_revision, {"revision": -1}, "revision", "Invalid value: -1: must be greater than or equal to 0"),
    # services
    ("svc-ports-required", "Service", service, {"spec.ports": []}, "spec.ports", "Required value"),
    ("svc-port-range", "Service", service, {"spec.ports.0.port": 0}, "spec.ports[0].port", "Invalid value: 0: must be between 1 and 65535, inclusive"),
    ("svc-port-name-required", "Service", service, {"spec.ports.1.name": DELETE}, "spec.ports[1].name", "Required value"),
    ("svc-port-name-duplicate", "Service", service, {"spec.ports.1.name": "http"}, "spec.ports[1].name", 'Duplicate value: "http"'),
    ("svc-port-duplicate", "Service", service, {"spec.ports.1.port": 80}, "spec.ports[1]", 'Duplicate value: core.ServicePort{Name:"", Protocol:"TCP", AppProtocol:(*string)(nil), Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}'),
    ("svc-protocol", "Service", service, {"spec.ports.0.protocol": "ICMP"}, "spec.ports[0].protocol", 'Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"'),
    ("svc-target-port-name", "Service", service, {"spec.ports.0.targetPort": "Web_Port"}, "spec.ports[0].targetPort", 'Invalid value: "Web_Port": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)'),
    ("svc-target-port-number", "Service", service, {"spec.ports.1.targetPort": 70000}, "spec.ports[1].targetPort", "Invalid value: 70000: must be between 1 and 65535, inclusive"),
    ("svc-node-port-cluster-ip", "Service", service, {"spec.ports.0.nodePort": 30080}, "spec.ports[0].nodePort", "Forbidden: may not be used when `type` is 'ClusterIP'"),
    ("svc-node-port-range", "Service", node_port_service, {"spec.ports.0.nodePort": 8080}, "spec.ports[0].nodePort", "Invalid value: 8080: provided port is not in the valid range. The range of valid ports is 30000-32767"),
    ("svc-type", "Service", service, {"spec.type": "Public"}, "spec.type", 'Unsupported value: "Public": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"'),
    ("svc-headless-node-port", "Service", node_port_service, {"spec.clusterIP": "None"}, "spec.clusterIPs[0]", "Invalid value: \"None\": may not be set to 'None' for NodePort services"),
    ("svc-cluster-ip", "Service", service, {"spec.clusterIP": "10.96.0.300"}, "spec.clusterIPs[0]", 'Invalid value: "10.96.0.300": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)'),
    ("svc-session-affinity", "Service", service, {"spec.sessionAffinity": "Cookie"}, "spec.sessionAffinity", 'Unsupported value: "Cookie": supported values: "ClientIP", "None"'),
    ("svc-affinity-timeout", "Service", service, {"spec.sessionAffinity": "ClientIP", "spec.sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 0}}}, "spec.sessionAffinityConfig.clientIP.timeoutSeconds", "Invalid value: 0: must be greater than 0 and less than 86400"),
    ("svc-selector", "Service", service, {"spec.selector": {"app": "web/1"}}, "spec.selector", 'Invalid value: "web/1": a valid label must be...'),
    ("svc-external-name-required", "Service", external_name_service, {"spec.externalName": DELETE}, "spec.externalName", "Required value"),
    ("svc-source-ranges-type", "Service", service, {"spec.loadBalancerSourceRanges": ["10.0.0.0/8"]}, "spec.loadBalancerSourceRanges", "Forbidden: may only be used when `type` is 'LoadBalancer'"),
    ("svc-external-policy", "Service", load_balancer_service, {"spec.externalTrafficPolicy": "Nearest"}, "spec.externalTrafficPolicy", 'Unsupported value: "Nearest": supported values: "Cluster", "Local"'),
    # endpoints
    ("ep-ip", "Endpoints", endpoints, {"subsets.0.addresses.0.ip": "10.244.1"}, "subsets[0].addresses[0].ip", 'Invalid value: "10.244.1": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)'),
    ("ep-loopback", "Endpoints", endpoints, {"subsets.0.addresses.0.ip": "127.0.0.1"}, "subsets[0].addresses[0].ip", 'Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)'),
    ("ep-port-range", "Endpoints", endpoints, {"subsets.0.ports.0.port": 0}, "subsets[0].ports[0].port", "Invalid value: 0: must be between 1 and 65535, inclusive"),
    ("ep-port-name-duplicate", "Endpoints", endpoints, {"subsets.0.ports.1.name": "http"}, "subsets[0].ports[1].name", 'Duplicate value: "http"'),
    ("ep-port-name-required", "Endpoints", endpoints, {"subsets.0.ports.1.name": DELETE}, "subsets[0].ports[1].name", "Required value"),
    ("ep-node-name", "Endpoints", endpoints, {"subsets.0.addresses.0.nodeName": "Lab_Node"}, "subsets[0].addresses[0].nodeName", 'Invalid value: "Lab_Node": a lowercase RFC 1123 subdomain...'),
    # ingress
    ("ing-nothing", "Ingress", ingress, {"spec.rules": DELETE}, "spec", "Invalid value: []networking.IngressRule(nil): either `defaultBackend` or `rules` must be specified"),
    ("ing-host-ip", "Ingress", ingress, {"spec.rules.0.host": "10.0.0.1"}, "spec.rules[0].host", 'Invalid value: "10.0.0.1": must be a DNS name, not an IP address'),
    ("ing-host", "Ingress", ingress, {"spec.rules.0.host": "Blog.example.com"}, "spec.rules[0].host", 'Invalid value: "Blog.example.com": a lowercase RFC 1123 subdomain...'),
    ("ing-wildcard", "Ingress", ingress, {"spec.rules.1.host": "*blog.example.com"}, "spec.rules[1].host", 'Invalid value: "*blog.example.com": a wildcard DNS-1123 subdomain must start with \'*.\'...'),
    ("ing-paths-required", "Ingress", ingress, {"spec.rules.0.http.paths": []}, "spec.rules[0].http.paths", "Required value"),
    ("ing-path-absolute", "Ingress", ingress, {"spec.rules.0.http.paths.0.path": "api"}, "spec.rules[0].http.paths[0].path", 'Invalid value: "api": must be an absolute path'),
    ("ing-path-sequence", "Ingress", ingress, {"spec.rules.0.http.paths.0.path": "/a//b"}, "spec.rules[0].http.paths[0].path", "Invalid value: \"/a//b\": must not contain '//'"),
    ("ing-path-type-required", "Ingress", ingress, {"spec.rules.0.http.paths.0.pathType": DELETE}, "spec.rules[0].http.paths[0].pathType", "Required value: pathType must be specified"),
    ("ing-path-type", "Ingress", ingress, {"spec.rules.0.http.paths.0.pathType": "Regex"}, "spec.rules[0].http.paths[0].pathType", 'Unsupported value: "Regex": supported values: "Exact", "ImplementationSpecific", "Prefix"'),
    ("ing-backend-port", "Ingress", ingress, {"spec.rules.0.http.paths.0.backend.service.port": {}}, "spec.rules[0].http.paths[0].backend", "Required value: port name or number is required"),
    ("ing-backend-port-both", "Ingress", ingress, {"spec.rules.0.http.paths.0.backend.service.port.name": "http"}, "spec.rules[0].http.paths[0].backend", 'Invalid value: "": cannot set both port name & port number'),
    ("ing-backend-port-number", "Ingress", ingress, {"spec.rules.0.http.paths.0.backend.service.port.number": 65536}, "spec.rules[0].http.paths[0].backend.service.port.number", "Invalid value: 65536: must be between 1 and 65535, inclusive"),
    ("ing-backend-service-name", "Ingress", ingress, {"spec.rules.0.http.paths.0.backend.service.name": ""}, "spec.rules[0].http.paths[0].backend.service.name", "Required value"),
    ("ing-backend-none", "Ingress", ingress, {"spec.rules.0.http.paths.0.backend": {}}, "spec.rules[0].http.paths[0].backend", 'Invalid value: "": resource or service backend is required'),
    ("ing-backend-both", "Ingress", default_backend_ingress, {"spec.defaultBackend.service": {"name": "x", "port": {"number": 80}}}, "spec.defaultBackend", 'Invalid value: "": cannot set both resource and service backends'),
    ("ing-resource-kind", "Ingress", default_backend_ingress, {"spec.defaultBackend.resource.kind": ""}, "spec.defaultBackend.resource.kind", "Required value: kind is required"),
    ("ing-tls-host", "Ingress", ingress, {"spec.tls.0.hosts.0": "blog_example"}, "spec.tls[0].hosts[0]", 'Invalid value: "blog_example": a lowercase RFC 1123 subdomain...'),
    ("ingress-class-controller", "IngressClass", ingress_class, {"spec.controller": ""}, "spec.controller", "Required value"),
    ("ingress-class-controller-path", "IngressClass", ingress_class, {"spec.controller": "tuik8s"}, "spec.controller", 'Invalid value: "tuik8s": must be a domain-prefixed path (such as "acme.io/foo")'),
    ("ingress-class-scope", "IngressClass", ingress_class, {"spec.parameters.scope": "Namespace"}, "spec.parameters.namespace", "Required value: `parameters.scope` is set to 'Namespace'"),
    # configmaps and secrets
    ("cm-key", "ConfigMap", config_map, {"data": {"a b": "x"}}, "data[a b]", "Invalid value: \"a b\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name' or 'KEY_NAME' or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"),
    ("cm-key-dotdot", "ConfigMap", config_map, {"data": {"..": "x"}}, "data[..]", "Invalid value: \"..\": must not be '..'"),
    ("cm-duplicate-key", "ConfigMap", config_map, {"data": {"logo.png": "x"}}, "data[logo.png]", 'Invalid value: "logo.png": duplicate of key present in binaryData'),
    ("cm-value-type", "ConfigMap", config_map, {"data": {"port": 80}}, "data[port]", "Invalid value: 80: must be a string"),
    ("secret-base64", "Secret", secret, {"data.password": "not base64!"}, "data[password]", 'Invalid value: "<secret contents redacted>": must be a base64-encoded string'),
    ("secret-key", "Secret", secret, {"data": {"pass/word": "czNjcjN0"}}, "data[pass/word]", 'Invalid value: "pass/word": a valid config key...'),
    ("secret-tls-key", "Secret", tls_secret, {"data": {"tls.crt": "LS0tLS1CRUdJTg=="}}, "data[tls.key]", "Required value"),
    ("secret-tls-both", "Secret", tls_secret, {"data": {}}, "data[tls.crt]", "Required value"),
    # nodes, leases, events, bindings
    ("node-pod-cidr", "Node", node, {"spec.podCIDR": "10.244.1.0/33"}, "spec.podCIDRs[0]", 'Invalid value: "10.244.1.0/33": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)'),
    ("node-taint-effect", "Node", node, {"spec.taints.0.effect": "Never"}, "spec.taints[0].effect", 'Unsupported value: "Never": supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"'),
    ("node-taint-effect-required", "Node", node, {"spec.taints.0.effect": DELETE}, "spec.taints[0].effect", "Required value"),
    ("node-taint-key", "Node", node, {"spec.taints.0.key": ""}, "spec.taints[0].key", 'Invalid value: "": name part must be non-empty'),
    ("node-capacity", "Node", node, {"status.capacity.cpu": "four"}, "status.capacity[cpu]", "Invalid value: \"four\": quantities must match the regular expression..."),
    ("lease-duration", "Lease", lease, {"spec.leaseDurationSeconds": 0}, "spec.leaseDurationSeconds", "Invalid value: 0: must be greater than 0"),
    ("lease-transitions", "Lease", lease, {"spec.leaseTransitions": -1}, "spec.leaseTransitions", "Invalid value: -1: must be greater than or equal to 0"),
    ("event-involved-required", "Event", event, {"involvedObject": DELETE}, "involvedObject", "Required value"),
    ("event-namespace", "Event", event, {"involvedObject.namespace": "other"}, "involvedObject.namespace", 'Invalid value: "other": does not match event.namespace'),
    ("binding-target", "Binding", binding, {"target.name": ""}, "target.name", "Required value"),
    ("binding-kind", "Binding", binding, {"target.kind": "Pod"}, "target.kind", 'Unsupported value: "Pod": supported values: "Node", "<empty>"'),
    ("namespace-finalizer", "Namespace", namespace, {"spec": {"finalizers": ["custom"]}}, "spec.finalizers", 'Invalid value: "custom": name is neither a standard finalizer name nor is it fully qualified'),
    ("sa-secrets-type", "ServiceAccount", service_account, {"imagePullSecrets": "regcred"}, "imagePullSecrets", 'Invalid value: "regcred": must be a list'),
    # autoscaling
    ("hpa-min-replicas", "HorizontalPodAutoscaler", hpa, {"spec.minReplicas": 0}, "spec.minReplicas", "Invalid value: 0: must be greater than or equal to 1"),
    ("hpa-max-below-min", "HorizontalPodAutoscaler", hpa, {"spec.maxReplicas": 1}, "spec.maxReplicas", "Invalid value: 1: must be greater than or equal to `minReplicas`"),
    ("hpa-max-zero", "HorizontalPodAutoscaler", minimal_hpa, {"spec.maxReplicas": 0}, "spec.maxReplicas", "Invalid value: 0: must be greater than 0"),
    ("hpa-target-name", "HorizontalPodAutoscaler", hpa, {"spec.scaleTargetRef.name": ""}, "spec.scaleTargetRef.name", "Required value"),
    ("hpa-target-kind", "HorizontalPodAutoscaler", hpa, {"spec.scaleTargetRef.kind": DELETE}, "spec.scaleTargetRef.kind", "Required value"),
    ("hpa-metric-type", "HorizontalPodAutoscaler", hpa, {"spec.metrics.0.type": "Queue"}, "spec.metrics[0].type", 'Unsupported value: "Queue": supported values: "Object", "Pods", "Resource", "External", "ContainerResource"'),
    ("hpa-utilization", "HorizontalPodAutoscaler", hpa, {"spec.metrics.0.resource.target.averageUtilization": 0}, "spec.metrics[0].resource.target.averageUtilization", "Invalid value: 0: must be greater than 0"),
    ("hpa-target-type", "HorizontalPodAutoscaler", hpa, {"spec.metrics.0.resource.target.type": "Percent"}, "spec.metrics[0].resource.target.type", 'Invalid value: "Percent": must be either Utilization, Value, or AverageValue'),
    ("hpa-resource-no-target", "HorizontalPodAutoscaler", hpa, {"spec.metrics.1.resource.target": {"type": "AverageValue"}}, "spec.metrics[1].resource.target.averageUtilization", "Required value: must set either a target raw value or a target utilization"),
    ("hpa-pods-average", "HorizontalPodAutoscaler", hpa, {"spec.metrics.2.pods.target": {"type": "AverageValue"}}, "spec.metrics[2].pods.target.averageValue", "Required value: must specify a positive target averageValue"),
    ("hpa-metric-source-missing", "HorizontalPodAutoscaler", hpa, {"spec.metrics.2.pods": DELETE}, "spec.metrics[2].pods", "Required value: must populate information for the given metric source"),
    ("hpa-metric-source-extra", "HorizontalPodAutoscaler", hpa, {"spec.metrics.0.pods": {"metric": {"name": "x"}}}, "spec.metrics[0].pods", "Forbidden: must populate the given metric source only"),
    ("hpa-value-positive", "HorizontalPodAutoscaler", hpa, {"spec.metrics.1.resource.target.averageValue": "0"}, "spec.metrics[1].resource.target.averageValue", 'Invalid value: "0": must be positive'),
    ("hpa-behavior-policy", "HorizontalPodAutoscaler", hpa, {"spec.behavior.scaleUp": {"policies": [{"type": "Pods", "value": 0, "periodSeconds": 15}]}}, "spec.behavior.scaleUp.policies[0].value", "Invalid value: 0: must be greater than zero"),
]


def matches(error: FieldError, field: str, message: str) -> bool:
    if error.field != field:
        return False
    if message.endswith("..."):
        return error.message.startswith(message[:-3])
    return error.message == message


@pytest.mark.parametrize(
    ("kind", "make", "changes", "field", "message"),
    [case[1:] for case in INVALID],
    ids=[case[0] for case in INVALID],
)
def test_rule(kind: str, make: Callable[[], dict], changes: dict[str, Any], field: str, message: str) -> None:
    errors = create_errors(kind, with_changes(make(), changes))
    assert any(matches(e, field, message) for e in errors), "\n".join(map(str, errors))
    assert not any(e.type == INTERNAL for e in errors)


def test_invalid_ids_are_unique() -> None:
    ids = [case[0] for case in INVALID]
    assert len(ids) == len(set(ids))


def test_errors_carry_cause_types() -> None:
    errors = create_errors("Pod", with_changes(pod(), {"spec.restartPolicy": "Sometimes", f"{C0}.image": "", "spec.initContainers.0.name": "web"}))
    types = {e.field: e.type for e in errors}
    assert types["spec.restartPolicy"] == "FieldValueNotSupported"
    assert types["spec.containers[0].image"] == "FieldValueRequired"
    assert types["spec.initContainers[0].name"] == "FieldValueDuplicate"


def test_secret_values_are_never_echoed() -> None:
    errors = create_errors("Secret", with_changes(secret(), {"data.password": "hunter2!!"}))
    assert errors and all("hunter2" not in e.message for e in errors)


def test_job_selector_is_not_required_when_it_will_be_generated() -> None:
    assert create_errors("Job", job_without_uid()) == []


# ---- updates --------------------------------------------------------------------------------


def update_errors(kind: str, old: dict, changes: dict[str, Any]) -> list[FieldError]:
    old = defaulted(kind, old)
    old.setdefault("metadata", {}).setdefault("uid", UID)
    new = defaulted(kind, with_changes(old, changes))
    return validate_update(by_key(KEYS[kind]), new, old)


POD_FORBIDDEN = "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,..."

UPDATES_OK: list[tuple[str, str, Callable[[], dict], dict[str, Any]]] = [
    ("deploy-scale-and-image", "Deployment", deployment, {"spec.replicas": 5, f"{TC0}.image": "ghcr.io/example/web:2.2.0"}),
    ("deploy-template-labels-added", "Deployment", deployment, {"spec.template.metadata.labels.version": "2"}),
    ("pod-image", "Pod", pod, {f"{C0}.image": "nginx:1.28", "spec.initContainers.0.image": "busybox:1.37"}),
    ("pod-labels", "Pod", pod, {"metadata.labels": {"app": "web", "canary": "true"}}),
    ("pod-toleration-added", "Pod", pod, {"spec.tolerations": pod()["spec"]["tolerations"] + [{"key": "gpu", "operator": "Exists"}]}),
    ("pod-toleration-seconds-shrink", "Pod", pod, {"spec.tolerations.0.tolerationSeconds": 60}),
    ("pod-deadline-set", "Pod", pod, {"spec.activeDeadlineSeconds": 600}),
    ("svc-cluster-ip-omitted", "Service", with_changes(service(), {"spec.clusterIP": "10.96.0.10"}).copy, {"spec.clusterIP": DELETE, "spec.clusterIPs": DELETE}),
    ("svc-type-to-external-name", "Service", with_changes(service(), {"spec.clusterIP": "10.96.0.10"}).copy, {"spec.type": "ExternalName", "spec.externalName": "example.com", "spec.clusterIP": DELETE, "spec.clusterIPs": DELETE, "spec.ipFamilies": DELETE, "spec.ipFamilyPolicy": DELETE, "spec.internalTrafficPolicy": DELETE}),
    ("svc-node-port-to-cluster-ip", "Service", node_port_service, {"spec.type": "ClusterIP"}),
    ("svc-cluster-ip-to-external-name-stale-fields", "Service", with_changes(service(), {"spec.clusterIP": "10.96.0.10"}).copy, {"spec.type": "ExternalName", "spec.externalName": "example.com"}),
    ("job-parallelism", "Job", job, {"spec.parallelism": 3}),
    ("job-suspended-node-selector", "Job", job, {"spec.suspend": True, "spec.template.spec.nodeSelector": {"zone": "a"}}),
    ("cm-data", "ConfigMap", config_map, {"data.LOG_LEVEL": "debug"}),
    ("node-taints", "Node", node, {"spec.taints": []}),
    ("secret-data", "Secret", secret, {"data.password": "bmV3"}),
]


@pytest.mark.parametrize(("kind", "make", "changes"), [c[1:] for c in UPDATES_OK], ids=[c[0] for c in UPDATES_OK])
def test_allowed_updates(kind: str, make: Callable[[], dict], changes: dict[str, Any]) -> None:
    assert update_errors(kind, make(), changes) == []


UPDATES_REJECTED: list[tuple[str, str, Callable[[], dict], dict[str, Any], str, str]] = [
    ("deploy-selector", "Deployment", deployment, {"spec.selector": {"matchLabels": {"app": "other"}}, "spec.template.metadata.labels": {"app": "other"}}, "spec.selector", 'Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"other"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable'),
    ("rs-selector", "ReplicaSet", replica_set, {"spec.selector.matchLabels.extra": "x", "spec.template.metadata.labels.extra": "x"}, "spec.selector", "Invalid value: v1.LabelSelector{MatchLabels:..."),
    ("ds-selector", "DaemonSet", daemon_set, {"spec.selector.matchLabels.app": "ne", "spec.template.metadata.labels.app": "ne"}, "spec.selector", 'Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"ne"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable'),
    ("deploy-update-still-validated", "Deployment", deployment, {"spec.replicas": -1}, "spec.replicas", "Invalid value: -1: must be greater than or equal to 0"),
    ("job-selector", "Job", manual_job, {"spec.selector.matchLabels.run": "e", "spec.template.metadata.labels.run": "e"}, "spec.selector", "Invalid value: v1.LabelSelector{MatchLabels:..."),
    ("job-template", "Job", job, {f"{TC0}.image": "perl:5.36"}, "spec.template", "Invalid value: core.PodTemplateSpec{...}: field is immutable"),
    ("job-completions", "Job", job, {"spec.completions": 4}, "spec.completions", "Invalid value: 4: field is immutable"),
    ("pod-port", "Pod", pod, {f"{C0}.ports.0.containerPort": 8080}, "spec", POD_FORBIDDEN),
    ("pod-resources", "Pod", pod, {f"{C0}.resources.limits.cpu": "2"}, "spec", POD_FORBIDDEN),
    ("pod-node-name", "Pod", pod, {"spec.nodeName": "lab-node-2"}, "spec", POD_FORBIDDEN),
    ("pod-toleration-removed", "Pod", pod, {"spec.tolerations": []}, "spec.tolerations", "Forbidden: existing toleration can not be modified except its tolerationSeconds"),
    ("pod-containers-added", "Pod", minimal_pod, {"spec.containers": [{"name": "nginx", "image": "nginx"}, {"name": "sidecar", "image": "busybox"}]}, "spec.containers", "Forbidden: pod updates may not add or remove containers"),
    ("pod-deadline-raised", "Pod", with_changes(pod(), {"spec.activeDeadlineSeconds": 60}).copy, {"spec.activeDeadlineSeconds": 120}, "spec.activeDeadlineSeconds", "Invalid value: 120: must be less than or equal to previous value"),
    ("pod-deadline-removed", "Pod", with_changes(pod(), {"spec.activeDeadlineSeconds": 60}).copy, {"spec.activeDeadlineSeconds": DELETE}, "spec.activeDeadlineSeconds", "Invalid value: null: must not update from a positive integer to nil value"),
    ("svc-cluster-ip", "Service", with_changes(service(), {"spec.clusterIP": "10.96.0.10"}).copy, {"spec.clusterIP": "10.96.0.20", "spec.clusterIPs": ["10.96.0.20"]}, "spec.clusterIPs[0]", 'Invalid value: []string{"10.96.0.20"}: may not change once set'),
    ("svc-cluster-ip-to-none", "Service", with_changes(service(), {"spec.clusterIP": "10.96.0.10"}).copy, {"spec.clusterIP": "None", "spec.clusterIPs": ["None"]}, "spec.clusterIPs[0]", 'Invalid value: []string{"None"}: may not change once set'),
    ("svc-new-node-port-on-cluster-ip", "Service", node_port_service, {"spec.type": "ClusterIP", "spec.ports.0.nodePort": 30081}, "spec.ports[0].nodePort", "Forbidden: may not be used when `type` is 'ClusterIP'"),
    ("secret-type", "Secret", secret, {"type": "kubernetes.io/basic-auth"}, "type", 'Invalid value: "kubernetes.io/basic-auth": field is immutable'),
    ("secret-immutable", "Secret", with_changes(secret(), {"immutable": True}).copy, {"data.password": "bmV3"}, "data", "Forbidden: field is immutable when `immutable` is set"),
    ("cm-immutable", "ConfigMap", with_changes(config_map(), {"immutable": True}).copy, {"data.LOG_LEVEL": "debug"}, "data", "Forbidden: field is immutable when `immutable` is set"),
    ("cm-immutable-unset", "ConfigMap", with_changes(config_map(), {"immutable": True}).copy, {"immutable": False}, "immutable", "Forbidden: field is immutable when `immutable` is set"),
    ("ingress-class-controller", "IngressClass", ingress_class, {"spec.controller": "example.com/other"}, "spec.controller", 'Invalid value: "example.com/other": field is immutable'),
    ("node-pod-cidr", "Node", node, {"spec.podCIDR": "10.244.9.0/24", "spec.podCIDRs": ["10.244.9.0/24"]}, "spec.podCIDRs", 'Forbidden: node updates may not change podCIDR except from "" to valid'),
    ("controller-revision-data", "ControllerRevision", controller_revision, {"data": {"spec": {}}}, "data", "Invalid value: runtime.RawExtension{...}: field is immutable"),
]


@pytest.mark.parametrize(
    ("kind", "make", "changes", "field", "message"),
    [c[1:] for c in UPDATES_REJECTED],
    ids=[c[0] for c in UPDATES_REJECTED],
)
def test_rejected_updates(kind: str, make: Callable[[], dict], changes: dict[str, Any], field: str, message: str) -> None:
    errors = update_errors(kind, make(), changes)
    assert any(matches(e, field, message) for e in errors), "\n".join(map(str, errors))


def test_pod_update_names_the_changed_fields() -> None:
    errors = update_errors("Pod", pod(), {"spec.nodeName": "lab-node-2"})
    assert [e.field for e in errors] == ["spec"]
    assert "spec.nodeName" in errors[0].message


def test_job_selector_generated_on_first_update_is_accepted() -> None:
    # A Job stored without a uid at defaulting time has no selector; the first update
    # defaults one (uid now known), which must not count as changing it.
    info = by_key("jobs.batch")
    old = defaulted("Job", job_without_uid())
    old["metadata"]["uid"] = UID
    new = copy.deepcopy(old)
    apply_defaults(info, new)
    assert new["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": UID}}
    assert validate_update(info, new, old) == []


# ---- status updates --------------------------------------------------------------------------


def status_errors(kind: str, obj: dict, status: Any) -> list[FieldError]:
    old = defaulted(kind, obj)
    new = copy.deepcopy(old)
    new["status"] = status
    return validate_status_update(by_key(KEYS[kind]), new, old)


def test_valid_pod_status() -> None:
    status = {
        "phase": "Running",
        "podIP": "10.244.1.5",
        "podIPs": [{"ip": "10.244.1.5"}],
        "hostIP": "172.18.0.3",
        "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2024-05-01T10:00:00Z"}],
        "containerStatuses": [{"name": "web", "ready": True, "restartCount": 0, "image": "nginx:1.27", "state": {"running": {}}}],
    }
    assert status_errors("Pod", pod(), status) == []


@pytest.mark.parametrize(
    ("kind", "make", "status", "field", "message"),
    [
        pytest.param("Pod", pod, {"phase": "Done"}, "status.phase", 'Unsupported value: "Done": supported values: "Pending", "Running", "Succeeded", "Failed", "Unknown"', id="pod-phase"),
        pytest.param("Pod", pod, {"conditions": [{"status": "True"}]}, "status.conditions[0].type", "Required value", id="condition-type"),
        pytest.param("Pod", pod, {"conditions": [{"type": "Ready"}]}, "status.conditions[0].status", "Required value", id="condition-status"),
        pytest.param("Pod", pod, {"conditions": [{"type": "Ready", "status": "Yes"}]}, "status.conditions[0].status", 'Unsupported value: "Yes": supported values: "True", "False", "Unknown"', id="condition-status-enum"),
        pytest.param("Pod", pod, {"podIP": "10.244.1"}, "status.podIP", 'Invalid value: "10.244.1": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)', id="pod-ip"),
        pytest.param("Pod", pod, "Running", "status", 'Invalid value: "Running": must be an object', id="status-not-object"),
        pytest.param("Deployment", deployment, {"replicas": -1}, "status.replicas", "Invalid value: -1: must be greater than or equal to 0", id="deploy-replicas"),
        pytest.param("Deployment", deployment, {"conditions": [{"type": "Available"}]}, "status.conditions[0].status", "Required value", id="deploy-condition"),
        pytest.param("Node", node, {"capacity": {"cpu": "x"}}, "status.capacity[cpu]", 'Invalid value: "x": quantities must match...', id="node-capacity"),
        pytest.param("Namespace", namespace, {"phase": "Gone"}, "status.phase", 'Unsupported value: "Gone": supported values: "Active", "Terminating"', id="namespace-phase"),
    ],
)
def test_status_rules(kind: str, make: Callable[[], dict], status: Any, field: str, message: str) -> None:
    errors = status_errors(kind, make(), status)
    assert any(matches(e, field, message) for e in errors), "\n".join(map(str, errors))


def test_pod_qos_class_may_not_change() -> None:
    old = defaulted("Pod", pod())
    old["status"] = {"phase": "Pending", "qosClass": "Burstable"}
    new = copy.deepcopy(old)
    new["status"]["qosClass"] = "Guaranteed"
    errors = validate_status_update(by_key("pods"), new, old)
    assert [str(e) for e in errors] == ['status.qosClass: Invalid value: "Guaranteed": field is immutable']


# ---- never raise on any JSON ----------------------------------------------------------------

FIELD_NAMES = st.sampled_from(
    [
        "metadata", "spec", "status", "name", "namespace", "labels", "annotations", "containers",
        "initContainers", "image", "ports", "containerPort", "port", "targetPort", "nodePort",
        "protocol", "selector", "matchLabels", "matchExpressions", "template", "replicas",
        "strategy", "rollingUpdate", "maxSurge", "maxUnavailable", "volumes", "volumeMounts",
        "resources", "limits", "requests", "env", "valueFrom", "livenessProbe", "httpGet",
        "type", "clusterIP", "rules", "http", "paths", "backend", "service", "data", "items",
        "tolerations", "affinity", "restartPolicy", "configMap", "secret", "emptyDir", "hostPath",
        "ownerReferences", "finalizers", "metrics", "target", "scaleTargetRef", "conditions",
        "subsets", "addresses", "ip", "taints", "effect", "podCIDR", "uid", "values", "key",
        "operator", "defaultBackend", "tls", "hosts", "stringData", "binaryData", "involvedObject",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(),
    st.text(max_size=12),
    st.sampled_from(["", "None", "-1", "0", "1e3", "25%", "110%", "Always", "TCP", "http", "a/b", "*.x", "/", "..", "10.0.0.1", "::1"]),
)
JSON = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(FIELD_NAMES, st.text(max_size=8)), children, max_size=4),
    ),
    max_leaves=16,
)

FUZZ_BASES: list[tuple[str, Callable[[], dict]]] = [
    ("Pod", pod),
    ("Deployment", deployment),
    ("Service", service),
    ("Service", node_port_service),
    ("Job", job),
    ("DaemonSet", daemon_set),
    ("Ingress", ingress),
    ("HorizontalPodAutoscaler", hpa),
    ("Node", node),
    ("Secret", secret),
    ("ConfigMap", config_map),
    ("Endpoints", endpoints),
    ("Event", event),
    ("IngressClass", ingress_class),
    ("Lease", lease),
    ("Namespace", namespace),
]


def positions(obj: Any, prefix: tuple = ()) -> Iterator[tuple]:
    """Every path into obj: dict keys and list indexes, the root included."""
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


def assert_never_raises(kind: str, obj: Any, old: Any) -> None:
    info = by_key(KEYS[kind])
    apply_defaults(info, obj)
    for errors in (
        validate_create(info, obj),
        validate_update(info, obj, old),
        validate_update(info, old, obj),
        validate_status_update(info, obj, old),
    ):
        assert isinstance(errors, list)
        assert all(isinstance(e, FieldError) and isinstance(e.message, str) for e in errors)
        internal = [str(e) for e in errors if e.type == INTERNAL]
        assert not internal, internal


@pytest.mark.parametrize(("kind", "make"), FUZZ_BASES, ids=[f"{k}-{m.__name__}" for k, m in FUZZ_BASES])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_json_anywhere_never_raises(kind: str, make: Callable[[], dict], data: st.DataObject) -> None:
    base = defaulted(kind, make())
    path = data.draw(st.sampled_from(list(positions(base))), label="path")
    value = data.draw(JSON, label="value")
    obj = replaced(base, path, value)
    assert_never_raises(kind, obj, base)


@pytest.mark.parametrize(("kind", "make"), FUZZ_BASES, ids=[f"{k}-{m.__name__}" for k, m in FUZZ_BASES])
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_json_added_anywhere_never_raises(kind: str, make: Callable[[], dict], data: st.DataObject) -> None:
    base = defaulted(kind, make())
    dict_paths = [p for p in positions(base) if isinstance(_at(base, p), dict)]
    path = data.draw(st.sampled_from(dict_paths), label="path")
    key = data.draw(FIELD_NAMES, label="key")
    value = data.draw(JSON, label="value")
    obj = replaced(base, (*path, key), value) if path or key else base
    if not path:
        obj = copy.deepcopy(base)
        obj[key] = value
    assert_never_raises(kind, obj, base)


def _at(obj: Any, path: tuple) -> Any:
    for part in path:
        obj = obj[part]
    return obj


@pytest.mark.parametrize("kind", sorted(KEYS))
@settings(max_examples=60, deadline=None)
@given(value=JSON)
def test_random_whole_objects_never_raise(kind: str, value: Any) -> None:
    assert_never_raises(kind, value, {"metadata": {"name": "x"}})
