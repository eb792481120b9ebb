"""Kubernetes protobuf bodies decode to the JSON a client would have sent for the object.

Bodies are built with the decoder's own message classes from dicts in protobuf's shape
(Time as {seconds}, IntOrString as {type, intVal, strVal}, inline structs under their
upstream field names), so each case reads as wire-in, Kubernetes-JSON-out.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from google.protobuf import json_format

from tuik8s.api import registry
from tuik8s.api.errors import StatusError
from tuik8s.api.protobuf import MAGIC, decode_k8s_protobuf, envelope, message_class

T2024 = 1704067200  # 2024-01-01T00:00:00Z


def wire(name: str, fields: dict[str, Any]) -> bytes:
    message = message_class(name)()
    json_format.ParseDict(fields, message)
    return message.SerializeToString()


def decode(api_version: str, kind: str, name: str, fields: dict[str, Any]) -> dict[str, Any]:
    return decode_k8s_protobuf(envelope(api_version, kind, wire(name, fields)))


def refused(data: bytes) -> StatusError:
    with pytest.raises(StatusError) as info:
        decode_k8s_protobuf(data)
    return info.value


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


META = {"name": "web", "namespace": "default", "labels": {"app": "web"}}


# ---- one round trip per kind ------------------------------------------------------------

KINDS: list[tuple[str, str, str, dict[str, Any], dict[str, Any]]] = [
    (
        "v1", "Namespace", "core.Namespace",
        {"metadata": {"name": "team-a", "labels": {"team": "a"}}, "spec": {"finalizers": ["kubernetes"]}},
        {"metadata": {"name": "team-a", "labels": {"team": "a"}}, "spec": {"finalizers": ["kubernetes"]}},
    ),
    (
        "v1", "ConfigMap", "core.ConfigMap",
        {"metadata": META, "data": {"greeting": "hello"}, "binaryData": {"blob": b64(b"\x00\xff")},
         "immutable": False},
        {"metadata": META, "data": {"greeting": "hello"}, "binaryData": {"blob": "AP8="}, "immutable": False},
    ),
    (
        "v1", "Secret", "core.Secret",
        {"metadata": META, "data": {"password": b64(b"s3cr3t")}, "stringData": {"user": "admin"},
         "type": "Opaque"},
        {"metadata": META, "data": {"password": "czNjcjN0"}, "stringData": {"user": "admin"}, "type": "Opaque"},
    ),
    (
        "v1", "ServiceAccount", "core.ServiceAccount",
        {"metadata": META, "imagePullSecrets": [{"name": "reg"}], "automountServiceAccountToken": False},
        {"metadata": META, "imagePullSecrets": [{"name": "reg"}], "automountServiceAccountToken": False},
    ),
    (
        "v1", "Service", "core.Service",
        {"metadata": META, "spec": {
            "type": "NodePort", "selector": {"app": "web"}, "clusterIP": "None",
            "ports": [
                {"name": "http", "protocol": "TCP", "port": 80, "targetPort": {"type": 0, "intVal": 8080},
                 "nodePort": 30080},
                {"name": "https", "protocol": "TCP", "port": 443, "targetPort": {"type": 1, "strVal": "https"}},
            ],
            "sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}},
            "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
        }},
        {"metadata": META, "spec": {
            "type": "NodePort", "selector": {"app": "web"}, "clusterIP": "None",
            "ports": [
                {"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080, "nodePort": 30080},
                {"name": "https", "protocol": "TCP", "port": 443, "targetPort": "https"},
            ],
            "sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}},
            "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
        }},
    ),
    (
        "v1", "Endpoints", "core.Endpoints",
        {"metadata": META, "subsets": [{
            "addresses": [{"ip": "10.0.0.5", "nodeName": "n1",
                           "targetRef": {"kind": "Pod", "name": "web-1", "namespace": "default"}}],
            "notReadyAddresses": [{"ip": "10.0.0.6"}],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        }]},
        {"metadata": META, "subsets": [{
            "addresses": [{"ip": "10.0.0.5", "nodeName": "n1",
                           "targetRef": {"kind": "Pod", "name": "web-1", "namespace": "default"}}],
            "notReadyAddresses": [{"ip": "10.0.0.6"}],
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        }]},
    ),
    (
        "v1", "Event", "core.Event",
        {"metadata": {"name": "web.1", "namespace": "default"},
         "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default", "uid": "u1"},
         "reason": "Scheduled", "message": "assigned", "source": {"component": "scheduler"},
         "firstTimestamp": {"seconds": T2024}, "lastTimestamp": {"seconds": T2024 + 60}, "count": 2,
         "type": "Normal", "eventTime": {"seconds": T2024, "nanos": 123456789},
         "reportingComponent": "scheduler", "reportingInstance": "s-1"},
        {"metadata": {"name": "web.1", "namespace": "default"},
         "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default", "uid": "u1"},
         "reason": "Scheduled", "message": "assigned", "source": {"component": "scheduler"},
         "firstTimestamp": "2024-01-01T00:00:00Z", "lastTimestamp": "2024-01-01T00:01:00Z", "count": 2,
         "type": "Normal", "eventTime": "2024-01-01T00:00:00.123456Z",
         "reportingComponent": "scheduler", "reportingInstance": "s-1"},
    ),
    (
        "v1", "Binding", "core.Binding",
        {"metadata": {"name": "web-1", "namespace": "default", "uid": "u1"},
         "target": {"kind": "Node", "name": "n1", "apiVersion": "v1"}},
        {"metadata": {"name": "web-1", "namespace": "default", "uid": "u1"},
         "target": {"kind": "Node", "name": "n1", "apiVersion": "v1"}},
    ),
    (
        "v1", "Node", "core.Node",
        {"metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1"}},
         "spec": {"podCIDR": "10.244.1.0/24", "unschedulable": True,
                  "taints": [{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute",
                              "timeAdded": {"seconds": T2024}}]},
         "status": {
             "capacity": {"cpu": {"string": "2"}, "memory": {"string": "4Gi"}},
             "allocatable": {"cpu": {"string": "1900m"}},
             "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": {"seconds": T2024},
                             "reason": "KubeletReady"}],
             "addresses": [{"type": "InternalIP", "address": "172.18.0.2"}],
             "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
             "nodeInfo": {"kubeletVersion": "v1.32.0", "architecture": "amd64", "operatingSystem": "linux"},
         }},
        {"metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1"}},
         "spec": {"podCIDR": "10.244.1.0/24", "unschedulable": True,
                  "taints": [{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute",
                              "timeAdded": "2024-01-01T00:00:00Z"}]},
         "status": {
             "capacity": {"cpu": "2", "memory": "4Gi"},
             "allocatable": {"cpu": "1900m"},
             "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": "2024-01-01T00:00:00Z",
                             "reason": "KubeletReady"}],
             "addresses": [{"type": "InternalIP", "address": "172.18.0.2"}],
             "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
             "nodeInfo": {"kubeletVersion": "v1.32.0", "architecture": "amd64", "operatingSystem": "linux"},
         }},
    ),
    (
        "coordination.k8s.io/v1", "Lease", "coordination.Lease",
        {"metadata": {"name": "n1", "namespace": "kube-node-lease"},
         "spec": {"holderIdentity": "n1", "leaseDurationSeconds": 40,
                  "renewTime": {"seconds": T2024, "nanos": 500000000}, "leaseTransitions": 0}},
        {"metadata": {"name": "n1", "namespace": "kube-node-lease"},
         "spec": {"holderIdentity": "n1", "leaseDurationSeconds": 40,
                  "renewTime": "2024-01-01T00:00:00.500000Z", "leaseTransitions": 0}},
    ),
    (
        "policy/v1", "Eviction", "policy.Eviction",
        {"metadata": {"name": "web-1", "namespace": "default"},
         "deleteOptions": {"gracePeriodSeconds": 0, "preconditions": {"uid": "u1"}}},
        {"metadata": {"name": "web-1", "namespace": "default"},
         "deleteOptions": {"gracePeriodSeconds": 0, "preconditions": {"uid": "u1"}}},
    ),
    (
        "policy/v1", "Eviction", "policy.Eviction",
        {"metadata": {"name": "web-1", "namespace": "default"}, "deleteOptions": {}},
        {"metadata": {"name": "web-1", "namespace": "default"}, "deleteOptions": {}},
    ),
    (
        "v1", "DeleteOptions", "meta.DeleteOptions",
        {"propagationPolicy": "Foreground", "dryRun": ["All"], "orphanDependents": False},
        {"propagationPolicy": "Foreground", "dryRun": ["All"], "orphanDependents": False},
    ),
    (
        "apps/v1", "DeleteOptions", "meta.DeleteOptions",
        {"propagationPolicy": "Background"},
        {"propagationPolicy": "Background"},
    ),
    (
        "autoscaling/v1", "Scale", "autoscalingv1.Scale",
        {"metadata": META, "spec": {"replicas": 3}, "status": {"replicas": 0, "selector": "app=web"}},
        {"metadata": META, "spec": {"replicas": 3}, "status": {"replicas": 0, "selector": "app=web"}},
    ),
    (
        "autoscaling/v1", "HorizontalPodAutoscaler", "autoscalingv1.HorizontalPodAutoscaler",
        {"metadata": META, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"},
                                    "minReplicas": 1, "maxReplicas": 5, "targetCPUUtilizationPercentage": 60}},
        {"metadata": META, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"},
                                    "minReplicas": 1, "maxReplicas": 5, "targetCPUUtilizationPercentage": 60}},
    ),
    (
        "autoscaling/v2", "HorizontalPodAutoscaler", "autoscalingv2.HorizontalPodAutoscaler",
        {"metadata": META, "spec": {
            "scaleTargetRef": {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"},
            "minReplicas": 2, "maxReplicas": 10,
            "metrics": [
                {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization",
                                                                            "averageUtilization": 70}}},
                {"type": "Pods", "pods": {"metric": {"name": "rps"},
                                          "target": {"type": "AverageValue", "averageValue": {"string": "100"}}}},
                {"type": "Object", "object": {
                    "describedObject": {"kind": "Ingress", "name": "web", "apiVersion": "networking.k8s.io/v1"},
                    "metric": {"name": "hits", "selector": {"matchLabels": {"a": "b"}}},
                    "target": {"type": "Value", "value": {"string": "2k"}}}},
            ],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                                       "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}]}},
        }},
        {"metadata": META, "spec": {
            "scaleTargetRef": {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"},
            "minReplicas": 2, "maxReplicas": 10,
            "metrics": [
                {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization",
                                                                            "averageUtilization": 70}}},
                {"type": "Pods", "pods": {"metric": {"name": "rps"},
                                          "target": {"type": "AverageValue", "averageValue": "100"}}},
                {"type": "Object", "object": {
                    "describedObject": {"kind": "Ingress", "name": "web", "apiVersion": "networking.k8s.io/v1"},
                    "metric": {"name": "hits", "selector": {"matchLabels": {"a": "b"}}},
                    "target": {"type": "Value", "value": "2k"}}},
            ],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
                                       "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}]}},
        }},
    ),
    (
        "networking.k8s.io/v1", "IngressClass", "networking.IngressClass",
        {"metadata": {"name": "nginx", "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"}},
         "spec": {"controller": "tuik8s.io/ingress",
                  "parameters": {"apiGroup": "k8s.example.com", "kind": "Params", "name": "p", "scope": "Cluster"}}},
        {"metadata": {"name": "nginx", "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"}},
         "spec": {"controller": "tuik8s.io/ingress",
                  "parameters": {"apiGroup": "k8s.example.com", "kind": "Params", "name": "p", "scope": "Cluster"}}},
    ),
    (
        "networking.k8s.io/v1", "Ingress", "networking.Ingress",
        {"metadata": META, "spec": {
            "ingressClassName": "nginx",
            "defaultBackend": {"resource": {"apiGroup": "k8s.example.com", "kind": "Bucket", "name": "static"}},
            "tls": [{"hosts": ["foo.com"], "secretName": "cert"}],
            "rules": [{"host": "foo.com", "ingressRuleValue": {"http": {"paths": [
                {"path": "/bar", "pathType": "Prefix",
                 "backend": {"service": {"name": "svc", "port": {"number": 8080}}}},
                {"path": "/", "pathType": "Exact", "backend": {"service": {"name": "other", "port": {"name": "http"}}}},
            ]}}}],
        }},
        {"metadata": META, "spec": {
            "ingressClassName": "nginx",
            "defaultBackend": {"resource": {"apiGroup": "k8s.example.com", "kind": "Bucket", "name": "static"}},
            "tls": [{"hosts": ["foo.com"], "secretName": "cert"}],
            "rules": [{"host": "foo.com", "http": {"paths": [
                {"path": "/bar", "pathType": "Prefix",
                 "backend": {"service": {"name": "svc", "port": {"number": 8080}}}},
                {"path": "/", "pathType": "Exact", "backend": {"service": {"name": "other", "port": {"name": "http"}}}},
            ]}}],
        }},
    ),
    (
        "authentication.k8s.io/v1", "TokenRequest", "authentication.TokenRequest",
        {"spec": {"audiences": ["api"], "expirationSeconds": 3600,
                  "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "web-1", "uid": "u1"}}},
        {"spec": {"audiences": ["api"], "expirationSeconds": 3600,
                  "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "web-1", "uid": "u1"}}},
    ),
    (
        "apps/v1", "ControllerRevision", "apps.ControllerRevision",
        {"metadata": META, "data": {"raw": b64(b'{"spec":{"template":{"metadata":{"labels":{"a":"b"}}}}}')},
         "revision": 3},
        {"metadata": META, "data": {"spec": {"template": {"metadata": {"labels": {"a": "b"}}}}}, "revision": 3},
    ),
]


@pytest.mark.parametrize(("api_version", "kind", "name", "fields", "expected"), KINDS,
                         ids=[f"{k[1]}-{i}" for i, k in enumerate(KINDS)])
def test_each_kind_decodes_to_its_json(api_version: str, kind: str, name: str, fields: dict, expected: dict) -> None:
    assert decode(api_version, kind, name, fields) == {"apiVersion": api_version, "kind": kind, **expected}


POD_TEMPLATE_WIRE = {
    "metadata": {"labels": {"app": "web"}, "annotations": {"kubectl.kubernetes.io/restartedAt": "now"}},
    "spec": {
        "volumes": [
            {"name": "scratch", "volumeSource": {"emptyDir": {}}},
            {"name": "cache", "volumeSource": {"emptyDir": {"medium": "Memory", "sizeLimit": {"string": "64Mi"}}}},
            {"name": "cfg", "volumeSource": {"configMap": {
                "localObjectReference": {"name": "web-config"}, "items": [{"key": "a", "path": "a.txt", "mode": 0o400}],
                "defaultMode": 0o644, "optional": False}}},
            {"name": "creds", "volumeSource": {"secret": {"secretName": "db", "optional": True}}},
            {"name": "logs", "volumeSource": {"hostPath": {"path": "/var/log", "type": "Directory"}}},
            {"name": "data", "volumeSource": {"persistentVolumeClaim": {"claimName": "data", "readOnly": True}}},
            {"name": "meta", "volumeSource": {"downwardAPI": {"items": [
                {"path": "labels", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.labels"}},
                {"path": "cpu", "resourceFieldRef": {"containerName": "web", "resource": "limits.cpu",
                                                     "divisor": {"string": "1m"}}},
            ]}}},
            {"name": "token", "volumeSource": {"projected": {"sources": [
                {"serviceAccountToken": {"audience": "api", "expirationSeconds": 3600, "path": "token"}},
                {"configMap": {"localObjectReference": {"name": "ca"}, "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            ], "defaultMode": 0o420}}},
        ],
        "initContainers": [{"name": "init", "image": "busybox", "command": ["sh", "-c", "true"]}],
        "containers": [{
            "name": "web", "image": "nginx:1.27", "args": ["-g", "daemon off;"], "workingDir": "/srv",
            "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}, {"containerPort": 0}],
            "env": [
                {"name": "MODE", "value": "prod"},
                {"name": "EMPTY", "value": ""},
                {"name": "PASS", "valueFrom": {"secretKeyRef": {"localObjectReference": {"name": "db"},
                                                                "key": "password", "optional": False}}},
                {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            ],
            "envFrom": [{"prefix": "CFG_", "configMapRef": {"localObjectReference": {"name": "web-config"}}},
                        {"secretRef": {"localObjectReference": {"name": "db"}, "optional": True}}],
            "resources": {"limits": {"cpu": {"string": "500m"}, "memory": {"string": "128Mi"}},
                          "requests": {"cpu": {"string": "100m"}}},
            "volumeMounts": [{"name": "cfg", "mountPath": "/etc/web", "readOnly": True, "subPath": "a.txt"}],
            "livenessProbe": {"probeHandler": {"httpGet": {"path": "/healthz", "port": {"type": 1, "strVal": "http"},
                                                           "scheme": "HTTP",
                                                           "httpHeaders": [{"name": "X-Probe", "value": "1"}]}},
                              "initialDelaySeconds": 5, "periodSeconds": 10, "failureThreshold": 3},
            "readinessProbe": {"probeHandler": {"tcpSocket": {"port": {"intVal": 80}}}, "timeoutSeconds": 1},
            "startupProbe": {"probeHandler": {"grpc": {"port": 9090, "service": ""}},
                             "terminationGracePeriodSeconds": 0},
            "lifecycle": {"postStart": {"exec": {"command": ["touch", "/ready"]}},
                          "preStop": {"sleep": {"seconds": 5}}},
            "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
            "imagePullPolicy": "IfNotPresent",
            "securityContext": {"runAsUser": 1000, "runAsNonRoot": False, "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]}},
            "stdin": False, "tty": False,
        }],
        "ephemeralContainers": [{"ephemeralContainerCommon": {"name": "debug", "image": "busybox", "stdin": True},
                                 "targetContainerName": "web"}],
        "restartPolicy": "Always", "terminationGracePeriodSeconds": 0, "activeDeadlineSeconds": 600,
        "dnsPolicy": "ClusterFirst", "nodeSelector": {"disk": "ssd"}, "serviceAccountName": "robot",
        "automountServiceAccountToken": False, "nodeName": "n1", "hostNetwork": True, "hostPID": False,
        "securityContext": {"fsGroup": 2000, "supplementalGroups": [3000, 4000], "runAsNonRoot": True,
                            "seccompProfile": {"type": "RuntimeDefault"}, "sysctls": [{"name": "net.core.somaxconn",
                                                                                       "value": "1024"}]},
        "imagePullSecrets": [{"name": "reg"}], "hostname": "web-0", "subdomain": "web",
        "affinity": {
            "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}]}},
            "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 100, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "web"}},
                                                    "topologyKey": "kubernetes.io/hostname"}}]},
        },
        "schedulerName": "default-scheduler",
        "tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
                         "tolerationSeconds": 300}],
        "hostAliases": [{"ip": "10.0.0.1", "hostnames": ["db.local"]}],
        "priorityClassName": "high", "priority": 0, "dnsConfig": {"nameservers": ["1.1.1.1"],
                                                                  "options": [{"name": "ndots", "value": "2"}]},
        "readinessGates": [{"conditionType": "example.com/ready"}], "enableServiceLinks": False,
        "preemptionPolicy": "Never", "overhead": {"cpu": {"string": "10m"}},
        "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
                                       "labelSelector": {"matchLabels": {"app": "web"}}, "minDomains": 2}],
        "os": {"name": "linux"}, "schedulingGates": [{"name": "wait"}],
    },
}

POD_TEMPLATE_JSON = {
    "metadata": {"labels": {"app": "web"}, "annotations": {"kubectl.kubernetes.io/restartedAt": "now"}},
    "spec": {
        "volumes": [
            {"name": "scratch", "emptyDir": {}},
            {"name": "cache", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
            {"name": "cfg", "configMap": {"name": "web-config", "items": [{"key": "a", "path": "a.txt", "mode": 0o400}],
                                          "defaultMode": 0o644, "optional": False}},
            {"name": "creds", "secret": {"secretName": "db", "optional": True}},
            {"name": "logs", "hostPath": {"path": "/var/log", "type": "Directory"}},
            {"name": "data", "persistentVolumeClaim": {"claimName": "data", "readOnly": True}},
            {"name": "meta", "downwardAPI": {"items": [
                {"path": "labels", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.labels"}},
                {"path": "cpu", "resourceFieldRef": {"containerName": "web", "resource": "limits.cpu",
                                                     "divisor": "1m"}},
            ]}},
            {"name": "token", "projected": {"sources": [
                {"serviceAccountToken": {"audience": "api", "expirationSeconds": 3600, "path": "token"}},
                {"configMap": {"name": "ca", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            ], "defaultMode": 0o420}},
        ],
        "initContainers": [{"name": "init", "image": "busybox", "command": ["sh", "-c", "true"]}],
        "containers": [{
            "name": "web", "image": "nginx:1.27", "args": ["-g", "daemon off;"], "workingDir": "/srv",
            # containerPort has no omitempty in Go: a zero one is still written
            "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}, {"containerPort": 0}],
            "env": [
                {"name": "MODE", "value": "prod"},
                {"name": "EMPTY"},
                {"name": "PASS", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password", "optional": False}}},
                {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            ],
            "envFrom": [{"prefix": "CFG_", "configMapRef": {"name": "web-config"}},
                        {"secretRef": {"name": "db", "optional": True}}],
            "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "100m"}},
            "volumeMounts": [{"name": "cfg", "mountPath": "/etc/web", "readOnly": True, "subPath": "a.txt"}],
            "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTP",
                                          "httpHeaders": [{"name": "X-Probe", "value": "1"}]},
                              "initialDelaySeconds": 5, "periodSeconds": 10, "failureThreshold": 3},
            "readinessProbe": {"tcpSocket": {"port": 80}, "timeoutSeconds": 1},
            "startupProbe": {"grpc": {"port": 9090, "service": ""}, "terminationGracePeriodSeconds": 0},
            "lifecycle": {"postStart": {"exec": {"command": ["touch", "/ready"]}},
                          "preStop": {"sleep": {"seconds": 5}}},
            "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
            "imagePullPolicy": "IfNotPresent",
            "securityContext": {"runAsUser": 1000, "runAsNonRoot": False, "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]}},
        }],
        "ephemeralContainers": [{"name": "debug", "image": "busybox", "stdin": True, "targetContainerName": "web"}],
        "restartPolicy": "Always", "terminationGracePeriodSeconds": 0, "activeDeadlineSeconds": 600,
        "dnsPolicy": "ClusterFirst", "nodeSelector": {"disk": "ssd"}, "serviceAccountName": "robot",
        "automountServiceAccountToken": False, "nodeName": "n1", "hostNetwork": True,
        "securityContext": {"fsGroup": 2000, "supplementalGroups": [3000, 4000], "runAsNonRoot": True,
                            "seccompProfile": {"type": "RuntimeDefault"}, "sysctls": [{"name": "net.core.somaxconn",
                                                                                       "value": "1024"}]},
        "imagePullSecrets": [{"name": "reg"}], "hostname": "web-0", "subdomain": "web",
        "affinity": {
            "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}]}},
            "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 100, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "web"}},
                                                    "topologyKey": "kubernetes.io/hostname"}}]},
        },
        "schedulerName": "default-scheduler",
        "tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
                         "tolerationSeconds": 300}],
        "hostAliases": [{"ip": "10.0.0.1", "hostnames": ["db.local"]}],
        "priorityClassName": "high", "priority": 0, "dnsConfig": {"nameservers": ["1.1.1.1"],
                                                                  "options": [{"name": "ndots", "value": "2"}]},
        "readinessGates": [{"conditionType": "example.com/ready"}], "enableServiceLinks": False,
        "preemptionPolicy": "Never", "overhead": {"cpu": "10m"},
        "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
                                       "labelSelector": {"matchLabels": {"app": "web"}}, "minDomains": 2}],
        "os": {"name": "linux"}, "schedulingGates": [{"name": "wait"}],
    },
}


def test_a_pod_with_every_common_field() -> None:
    status_wire = {"phase": "Running", "startTime": {"seconds": T2024}, "podIP": "10.244.1.5",
                   "podIPs": [{"ip": "10.244.1.5"}], "qosClass": "Burstable",
                   "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": {"seconds": T2024}}],
                   "containerStatuses": [{"name": "web", "ready": False, "restartCount": 0, "image": "nginx:1.27",
                                          "imageID": "", "started": False,
                                          "state": {"running": {"startedAt": {"seconds": T2024}}},
                                          "lastState": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}
    status_json = {"phase": "Running", "startTime": "2024-01-01T00:00:00Z", "podIP": "10.244.1.5",
                   "podIPs": [{"ip": "10.244.1.5"}], "qosClass": "Burstable",
                   "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"}],
                   "containerStatuses": [{"name": "web", "ready": False, "restartCount": 0, "image": "nginx:1.27",
                                          "imageID": "", "started": False,
                                          "state": {"running": {"startedAt": "2024-01-01T00:00:00Z"}},
                                          "lastState": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}
    got = decode("v1", "Pod", "core.Pod", {"metadata": META, "spec": POD_TEMPLATE_WIRE["spec"],
                                           "status": status_wire})
    assert got == {"apiVersion": "v1", "kind": "Pod", "metadata": META, "spec": POD_TEMPLATE_JSON["spec"],
                   "status": status_json}


WORKLOADS = [
    ("apps/v1", "Deployment", "apps.Deployment",
     {"replicas": 0, "selector": {"matchLabels": {"app": "web"},
                                  "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}]},
      "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": {"type": 0, "intVal": 0},
                                                              "maxSurge": {"type": 1, "strVal": "25%"}}},
      "minReadySeconds": 5, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600, "paused": False},
     {"replicas": 0, "selector": {"matchLabels": {"app": "web"},
                                  "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}]},
      "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}},
      "minReadySeconds": 5, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600}),
    ("apps/v1", "ReplicaSet", "apps.ReplicaSet",
     {"replicas": 3, "minReadySeconds": 0, "selector": {"matchLabels": {"app": "web"}}},
     {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}}),
    ("apps/v1", "DaemonSet", "apps.DaemonSet",
     {"selector": {"matchLabels": {"app": "web"}},
      "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": {"intVal": 1},
                                                                    "maxSurge": {"intVal": 0}}}},
     {"selector": {"matchLabels": {"app": "web"}},
      "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}}),
    ("batch/v1", "Job", "batch.Job",
     {"parallelism": 2, "completions": 4, "backoffLimit": 0, "ttlSecondsAfterFinished": 100,
      "completionMode": "Indexed", "suspend": False, "manualSelector": False,
      "podFailurePolicy": {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}},
                                     {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget",
                                                                               "status": "True"}]}]}},
     {"parallelism": 2, "completions": 4, "backoffLimit": 0, "ttlSecondsAfterFinished": 100,
      "completionMode": "Indexed", "suspend": False, "manualSelector": False,
      "podFailurePolicy": {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}},
                                     {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget",
                                                                               "status": "True"}]}]}}),
]


@pytest.mark.parametrize(("api_version", "kind", "name", "spec_wire", "spec_json"), WORKLOADS,
                         ids=[w[1] for w in WORKLOADS])
def test_workloads_carry_their_pod_template(api_version: str, kind: str, name: str, spec_wire: dict,
                                            spec_json: dict) -> None:
    got = decode(api_version, kind, name, {"metadata": META, "spec": {**spec_wire, "template": POD_TEMPLATE_WIRE}})
    assert got == {"apiVersion": api_version, "kind": kind, "metadata": META,
                   "spec": {**spec_json, "template": POD_TEMPLATE_JSON}}


# ---- the JSON forms of special types ----------------------------------------------------

OWNER = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "uid": "u1", "controller": True,
         "blockOwnerDeletion": True}


def test_object_meta_in_full() -> None:
    fields_v1 = b'{"f:metadata":{"f:labels":{}}}'
    got = decode("v1", "ConfigMap", "core.ConfigMap", {"metadata": {
        "name": "c", "generateName": "c-", "namespace": "default", "uid": "u", "resourceVersion": "7",
        "generation": 2, "creationTimestamp": {"seconds": T2024}, "deletionTimestamp": {"seconds": T2024 + 30},
        "deletionGracePeriodSeconds": 0, "labels": {"a": "1"}, "annotations": {"note": ""},
        "ownerReferences": [OWNER], "finalizers": ["example.com/keep"],
        "managedFields": [{"manager": "kubectl", "operation": "Apply", "apiVersion": "v1",
                           "time": {"seconds": T2024}, "fieldsType": "FieldsV1", "fieldsV1": {"Raw": b64(fields_v1)}}],
    }})
    assert got["metadata"] == {
        "name": "c", "generateName": "c-", "namespace": "default", "uid": "u", "resourceVersion": "7",
        "generation": 2, "creationTimestamp": "2024-01-01T00:00:00Z", "deletionTimestamp": "2024-01-01T00:00:30Z",
        "deletionGracePeriodSeconds": 0, "labels": {"a": "1"}, "annotations": {"note": ""},
        "ownerReferences": [OWNER], "finalizers": ["example.com/keep"],
        "managedFields": [{"manager": "kubectl", "operation": "Apply", "apiVersion": "v1",
                           "time": "2024-01-01T00:00:00Z", "fieldsType": "FieldsV1",
                           "fieldsV1": {"f:metadata": {"f:labels": {}}}}],
    }


@pytest.mark.parametrize(("wire_time", "expected"), [
    ({"seconds": T2024}, "2024-01-01T00:00:00Z"),
    ({"seconds": T2024, "nanos": 999_999_999}, "2024-01-01T00:00:00Z"),  # metav1.Time keeps seconds
    ({"seconds": -1}, "1969-12-31T23:59:59Z"),
    ({"seconds": 253402300799}, "9999-12-31T23:59:59Z"),
    ({}, None),  # the zero Time: Go writes null, the decoder leaves it out
], ids=["2024", "nanos-dropped", "before-1970", "year-9999", "zero"])
def test_times_are_rfc3339_in_utc(wire_time: dict, expected: str | None) -> None:
    got = decode("v1", "Namespace", "core.Namespace", {"metadata": {"name": "n", "creationTimestamp": wire_time}})
    assert got["metadata"].get("creationTimestamp") == expected


def test_micro_times_keep_microseconds() -> None:
    got = decode("coordination.k8s.io/v1", "Lease", "coordination.Lease",
                 {"spec": {"acquireTime": {"seconds": T2024, "nanos": 1_500}, "renewTime": {"seconds": 1}}})
    assert got["spec"] == {"acquireTime": "2024-01-01T00:00:00.000001Z", "renewTime": "1970-01-01T00:00:01.000000Z"}


def test_a_time_out_of_range_is_a_bad_request() -> None:
    body = envelope("v1", "Namespace", wire("core.Namespace", {"metadata": {"creationTimestamp": {"seconds": 10**15}}}))
    assert refused(body).code == 400


@pytest.mark.parametrize(("wire_port", "expected"), [
    ({"type": 0, "intVal": 8080}, 8080),
    ({"type": 1, "strVal": "http"}, "http"),
    ({"type": 1, "strVal": "8080"}, "8080"),
    ({"type": 0, "intVal": 0}, None),  # a zero non-pointer IntOrString: unset
], ids=["int", "name", "numeric-string", "zero"])
def test_int_or_string(wire_port: dict, expected: int | str | None) -> None:
    got = decode("v1", "Service", "core.Service", {"spec": {"ports": [{"port": 80, "targetPort": wire_port}]}})
    assert got["spec"]["ports"][0].get("targetPort") == expected


def test_an_int_or_string_of_unknown_type_is_a_bad_request() -> None:
    body = envelope("v1", "Service", wire("core.Service", {"spec": {"ports": [{"targetPort": {"type": 7}}]}}))
    assert refused(body).code == 400


def test_bytes_become_base64_and_strings_stay_text() -> None:
    got = decode("v1", "Secret", "core.Secret", {
        "data": {"bin": b64(bytes(range(256))), "empty": ""}, "stringData": {"text": "héllo ✓"}})
    assert got["data"] == {"bin": b64(bytes(range(256))), "empty": ""}
    assert got["stringData"] == {"text": "héllo ✓"}


def test_pointers_keep_zero_values_and_omitempty_fields_drop_them() -> None:
    got = decode("apps/v1", "Deployment", "apps.Deployment", {"spec": {
        "replicas": 0, "minReadySeconds": 0, "paused": False, "revisionHistoryLimit": 0,
        "template": {"spec": {"hostNetwork": False, "enableServiceLinks": False, "nodeName": ""}},
    }})
    assert got["spec"] == {"replicas": 0, "revisionHistoryLimit": 0, "template": {"spec": {"enableServiceLinks": False}}}


def test_empty_structs_are_dropped_but_present_pointer_structs_are_kept() -> None:
    got = decode("apps/v1", "Deployment", "apps.Deployment", {"metadata": {"name": "d"}, "spec": {
        "strategy": {}, "template": {"metadata": {}, "spec": {
            "containers": [{"name": "c", "resources": {}, "securityContext": {}}]}}}, "status": {}})
    assert got == {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {
        "template": {"spec": {"containers": [{"name": "c", "securityContext": {}}]}}}}


def test_a_raw_extension_may_hold_a_protobuf_object() -> None:
    inner = envelope("v1", "ConfigMap", wire("core.ConfigMap", {"metadata": {"name": "c"}, "data": {"a": "b"}}))
    got = decode("apps/v1", "ControllerRevision", "apps.ControllerRevision",
                 {"data": {"raw": b64(inner)}, "revision": 1})
    assert got["data"] == {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "b"}}


def test_a_raw_extension_that_is_not_json_is_a_bad_request() -> None:
    body = envelope("apps/v1", "ControllerRevision", wire("apps.ControllerRevision", {"data": {"raw": b64(b"\x01{")}}))
    assert "not JSON" in refused(body).message


def test_raw_extensions_nested_without_end_are_refused() -> None:
    raw = envelope("apps/v1", "ControllerRevision", b"")
    for _ in range(10):
        raw = envelope("apps/v1", "ControllerRevision", wire("apps.ControllerRevision", {"data": {"raw": b64(raw)}}))
    assert refused(raw).code == 400


# ---- what is refused --------------------------------------------------------------------

NAMESPACE = wire("core.Namespace", {"metadata": {"name": "n"}})


@pytest.mark.parametrize("body", [
    b"",
    b"k8s",
    b'{"kind":"Namespace"}',
    b"k9s\x00" + envelope("v1", "Namespace", NAMESPACE)[4:],
    envelope("v1", "Namespace", NAMESPACE)[:-3],  # the envelope cut short
    envelope("v1", "Namespace", NAMESPACE[:-2]),  # the object cut short
    envelope("v1", "Namespace", b"\x0a\x04\x0a\x02\xff\xfe"),  # a name that is not UTF-8
    envelope("v1", "", NAMESPACE),
    MAGIC + b"\xff\xff\xff",
], ids=["empty", "short", "json", "bad-magic", "truncated-envelope", "truncated-object", "not-utf8",
        "no-kind", "garbage"])
def test_malformed_bodies_are_bad_requests(body: bytes) -> None:
    error = refused(body)
    assert (error.code, error.reason) == (400, "BadRequest")
    assert "\n" not in error.message


def test_a_kind_without_a_table_is_unsupported_and_says_what_to_do() -> None:
    error = refused(envelope("batch/v1", "CronJob", b""))
    assert (error.code, error.reason) == (415, "UnsupportedMediaType")
    assert "CronJob (batch/v1)" in error.message
    assert "JSON" in error.message and "kubectl apply -f -" in error.message
    assert "\n" not in error.message


def test_a_field_the_table_does_not_know_is_refused_naming_it() -> None:
    pod: Any = message_class("core.Pod")()
    volume = pod.spec.volumes.add(name="old")
    volume.volumeSource.MergeFromString(b"\x1a\x02\x0a\x00")  # gcePersistentDisk (3): left out of the table
    error = refused(envelope("v1", "Pod", pod.SerializeToString()))
    assert (error.code, error.reason) == (415, "UnsupportedMediaType")
    assert "field 3 of VolumeSource at spec.volumes[0]" in error.message


def test_a_known_field_with_the_wrong_wire_type_is_refused() -> None:
    # metadata.generation (7) is a varint; here it comes length-delimited
    error = refused(envelope("v1", "Namespace", b"\x0a\x03\x3a\x01\x00"))
    assert error.code == 415
    assert "field 7 of ObjectMeta at metadata" in error.message


def test_a_content_encoding_is_unsupported() -> None:
    unknown: Any = message_class("meta.Unknown")()
    json_format.ParseDict({"typeMeta": {"apiVersion": "v1", "kind": "Namespace"}, "raw": b64(NAMESPACE),
                           "contentEncoding": "gzip"}, unknown)
    assert refused(MAGIC + unknown.SerializeToString()).code == 415


def test_every_registry_kind_has_a_protobuf_table() -> None:
    for info in registry.RESOURCES:
        got = decode_k8s_protobuf(envelope(info.api_version, info.kind, b""))
        assert got == {"apiVersion": info.api_version, "kind": info.kind}, info.kind


def test_a_memoryview_body_is_accepted() -> None:
    assert decode_k8s_protobuf(memoryview(envelope("v1", "Namespace", NAMESPACE)))["metadata"] == {"name": "n"}  # type: ignore[arg-type]
