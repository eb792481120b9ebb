"""Defaulting: the fields upstream fills in before it validates or stores an object.

What a user reads back with `kubectl get -o yaml` must match a real cluster, so this
mirrors upstream's `SetDefaults_*` functions for the served versions (core/v1, apps/v1,
batch/v1, networking.k8s.io/v1, autoscaling/v2), plus the few things upstream does in
conversion or in the REST strategy that change what is stored and that no other layer of
ours does: Secret `stringData` folded into `data`, Service `clusterIPs`/`ipFamilies`, Pod
priority, a Job's generated selector.

Defaulting is in place and idempotent, and it never raises: a field of the wrong JSON
type is left as it is for validation to report. Like upstream, only the Pod itself gets
`SetDefaults_Pod` (requests from limits, `enableServiceLinks`, host ports); pod templates
inside workloads get the PodSpec defaults only, so they do not change under a controller.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from tuik8s.api.registry import ResourceInfo

Obj = dict[str, Any]

DEFAULT_TERMINATION_GRACE_PERIOD = 30
DEFAULT_SCHEDULER_NAME = "default-scheduler"
TERMINATION_MESSAGE_PATH = "/dev/termination-log"
VOLUME_DEFAULT_MODE = 0o644  # 420, what kubectl shows for secret/configMap volumes
SERVICE_ACCOUNT_TOKEN_EXPIRATION = 3600
CLIENT_IP_AFFINITY_SECONDS = 10800
MAX_INT32 = 2**31 - 1

# Labels the Job strategy puts on a Job's pods when it generates the selector.
JOB_CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
LEGACY_JOB_CONTROLLER_UID_LABEL = "controller-uid"
LEGACY_JOB_NAME_LABEL = "job-name"

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"

# Built-in PriorityClasses; the Priority admission plugin resolves a class name to these.
SYSTEM_PRIORITY_CLASSES = {"system-cluster-critical": 2000000000, "system-node-critical": 2000001000}

_PROBES = ("livenessProbe", "readinessProbe", "startupProbe")


def apply_defaults(info: ResourceInfo, obj: dict) -> None:
    """Fill in upstream's defaults for `obj`, a `info.kind` as the client sent it."""
    if not isinstance(obj, dict):
        return
    defaulter = _DEFAULTERS.get(info.key)
    if defaulter is not None:
        defaulter(obj)


# ---- small helpers over untyped JSON ------------------------------------------------------


def _dict(parent: Any, key: str) -> Obj | None:
    """parent[key] when both are objects, else None (nothing to default into)."""
    if not isinstance(parent, dict):
        return None
    value = parent.get(key)
    return value if isinstance(value, dict) else None


def _ensure_dict(parent: Obj, key: str) -> Obj | None:
    """parent[key], created as {} when absent or null; None when it has another type."""
    value = parent.get(key)
    if value is None:
        value = parent[key] = {}
    return value if isinstance(value, dict) else None


def _dicts(parent: Any, key: str) -> list[Obj]:
    """The object items of the list parent[key]; anything else yields nothing."""
    if not isinstance(parent, dict):
        return []
    value = parent.get(key)
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, dict)]


def _unset(obj: Obj, key: str) -> bool:
    """Whether a Go zero value would be there: absent, null or the empty string."""
    value = obj.get(key)
    return value is None or value == ""


def _default(obj: Obj, key: str, value: Any) -> None:
    if _unset(obj, key):
        obj[key] = value


def _default_nonzero(obj: Obj, key: str, value: int) -> None:
    """For int fields that upstream defaults when 0 (probe timings)."""
    current = obj.get(key)
    if current is None or (isinstance(current, int | float) and not isinstance(current, bool) and current == 0):
        obj[key] = value


# ---- pods -------------------------------------------------------------------------------


def image_tag(image: Any) -> str:
    """The tag upstream's ParseImageName finds: "latest" when there is neither tag nor digest."""
    if not isinstance(image, str) or not image or image != image.strip():
        return ""
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        return last.rsplit(":", 1)[1]
    return "" if digest else "latest"


def _default_container(container: Obj) -> None:
    if _unset(container, "imagePullPolicy"):
        container["imagePullPolicy"] = "Always" if image_tag(container.get("image")) == "latest" else "IfNotPresent"
    _default(container, "terminationMessagePath", TERMINATION_MESSAGE_PATH)
    _default(container, "terminationMessagePolicy", "File")
    for port in _dicts(container, "ports"):
        _default(port, "protocol", "TCP")
    for env in _dicts(container, "env"):
        _default_field_ref(_dict(_dict(env, "valueFrom"), "fieldRef"))
    for probe_name in _PROBES:
        probe = _dict(container, probe_name)
        if probe is not None:
            _default_probe(probe)
    lifecycle = _dict(container, "lifecycle")
    for hook in ("postStart", "preStop"):
        _default_handler(_dict(lifecycle, hook))


def _default_probe(probe: Obj) -> None:
    _default_nonzero(probe, "timeoutSeconds", 1)
    _default_nonzero(probe, "periodSeconds", 10)
    _default_nonzero(probe, "successThreshold", 1)
    _default_nonzero(probe, "failureThreshold", 3)
    _default_handler(probe)
    grpc = _dict(probe, "grpc")
    if grpc is not None and grpc.get("service") is None:
        grpc["service"] = ""


def _default_handler(handler: Obj | None) -> None:
    http_get = _dict(handler, "httpGet")
    if http_get is not None:
        _default(http_get, "path", "/")
        _default(http_get, "scheme", "HTTP")


def _default_field_ref(field_ref: Obj | None) -> None:
    if field_ref is not None:
        _default(field_ref, "apiVersion", "v1")


# Every VolumeSource member: a volume with none of them set becomes an emptyDir.
VOLUME_SOURCES = (
    "emptyDir", "hostPath", "gitRepo", "gcePersistentDisk", "awsElasticBlockStore", "secret",
    "nfs", "iscsi", "glusterfs", "flocker", "persistentVolumeClaim", "rbd", "cinder", "cephfs",
    "quobyte", "downwardAPI", "fc", "flexVolume", "configMap", "azureFile", "vsphereVolume",
    "photonPersistentDisk", "portworxVolume", "azureDisk", "storageos", "projected", "scaleIO",
    "csi", "ephemeral", "image",
)


def _default_volume(volume: Obj) -> None:
    if all(volume.get(source) is None for source in VOLUME_SOURCES):
        volume["emptyDir"] = {}
        return
    for source in ("secret", "configMap", "downwardAPI", "projected"):
        src = _dict(volume, source)
        if src is not None and src.get("defaultMode") is None:
            src["defaultMode"] = VOLUME_DEFAULT_MODE
    for item in _dicts(_dict(volume, "downwardAPI"), "items"):
        _default_field_ref(_dict(item, "fieldRef"))
    for source in _dicts(_dict(volume, "projected"), "sources"):
        token = _dict(source, "serviceAccountToken")
        if token is not None and token.get("expirationSeconds") is None:
            token["expirationSeconds"] = SERVICE_ACCOUNT_TOKEN_EXPIRATION
        for item in _dicts(_dict(source, "downwardAPI"), "items"):
            _default_field_ref(_dict(item, "fieldRef"))
    host_path = _dict(volume, "hostPath")
    if host_path is not None and host_path.get("type") is None:
        host_path["type"] = ""
    claim_spec = _dict(_dict(_dict(volume, "ephemeral"), "volumeClaimTemplate"), "spec")
    if claim_spec is not None:
        _default(claim_spec, "volumeMode", "Filesystem")
    image = _dict(volume, "image")
    if image is not None and _unset(image, "pullPolicy"):
        image["pullPolicy"] = "Always" if image_tag(image.get("reference")) == "latest" else "IfNotPresent"


def default_pod_spec(spec: Obj) -> None:
    """SetDefaults_PodSpec and everything it reaches; for pods and pod templates alike."""
    _default(spec, "dnsPolicy", "ClusterFirst")
    _default(spec, "restartPolicy", "Always")
    if spec.get("securityContext") is None:
        spec["securityContext"] = {}
    if spec.get("terminationGracePeriodSeconds") is None:
        spec["terminationGracePeriodSeconds"] = DEFAULT_TERMINATION_GRACE_PERIOD
    _default(spec, "schedulerName", DEFAULT_SCHEDULER_NAME)
    for key in ("containers", "initContainers", "ephemeralContainers"):
        for container in _dicts(spec, key):
            _default_container(container)
    for volume in _dicts(spec, "volumes"):
        _default_volume(volume)


def _requests_from_limits(container: Obj) -> None:
    resources = _dict(container, "resources")
    limits = _dict(resources, "limits")
    if resources is None or limits is None:
        return
    requests = _ensure_dict(resources, "requests")
    if requests is None:
        return
    for name, quantity in limits.items():
        requests.setdefault(name, quantity)


def _default_pod(pod: Obj) -> None:
    spec = _ensure_dict(pod, "spec")
    if spec is None:
        return
    default_pod_spec(spec)
    for key in ("containers", "initContainers"):
        for container in _dicts(spec, key):
            _requests_from_limits(container)
    if spec.get("enableServiceLinks") is None:
        spec["enableServiceLinks"] = True
    if spec.get("hostNetwork") is True:
        for key in ("containers", "initContainers"):
            for container in _dicts(spec, key):
                for port in _dicts(container, "ports"):
                    if port.get("hostPort") in (None, 0):
                        port["hostPort"] = port.get("containerPort")
    # What the Priority admission plugin sets when no default PriorityClass exists.
    if spec.get("priority") is None:
        class_name = spec.get("priorityClassName")
        if class_name in (None, ""):
            spec["priority"] = 0
        elif isinstance(class_name, str) and class_name in SYSTEM_PRIORITY_CLASSES:
            spec["priority"] = SYSTEM_PRIORITY_CLASSES[class_name]
    if spec.get("priority") is not None:
        _default(spec, "preemptionPolicy", "PreemptLowerPriority")


def default_pod_template(template: Obj | None) -> None:
    spec = _ensure_dict(template, "spec") if template is not None else None
    if spec is not None:
        default_pod_spec(spec)


# ---- workloads ----------------------------------------------------------------------------


def _template(spec: Obj) -> Obj | None:
    return _ensure_dict(spec, "template")


def _default_deployment(obj: Obj) -> None:
    spec = _ensure_dict(obj, "spec")
    if spec is None:
        return
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    strategy = _ensure_dict(spec, "strategy")
    if strategy is not None:
        _default(strategy, "type", "RollingUpdate")
        if strategy.get("type") == "RollingUpdate":
            rolling = _ensure_dict(strategy, "rollingUpdate")
            if rolling is not None:
                if rolling.get("maxUnavailable") is None:
                    rolling["maxUnavailable"] = "25%"
                if rolling.get("maxSurge") is None:
                    rolling["maxSurge"] = "25%"
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    if spec.get("progressDeadlineSeconds") is None:
        spec["progressDeadlineSeconds"] = 600
    default_pod_template(_template(spec))


def _default_replicaset(obj: Obj) -> None:
    spec = _ensure_dict(obj, "spec")
    if spec is None:
        return
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    default_pod_template(_template(spec))


def _default_daemonset(obj: Obj) -> None:
    spec = _ensure_dict(obj, "spec")
    if spec is None:
        return
    strategy = _ensure_dict(spec, "updateStrategy")
    if strategy is not None:
        _default(strategy, "type", "RollingUpdate")
        if strategy.get("type") == "RollingUpdate":
            rolling = _ensure_dict(strategy, "rollingUpdate")
            if rolling is not None:
                if rolling.get("maxUnavailable") is None:
                    rolling["maxUnavailable"] = 1
                if rolling.get("maxSurge") is None:
                    rolling["maxSurge"] = 0
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    default_pod_template(_template(spec))


def _default_job(obj: Obj) -> None:
    spec = _ensure_dict(obj, "spec")
    if spec is None:
        return
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    if spec.get("parallelism") is None:
        spec["parallelism"] = 1
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = MAX_INT32 if spec.get("backoffLimitPerIndex") is not None else 6
    if spec.get("completionMode") is None:
        spec["completionMode"] = "NonIndexed"
    if spec.get("suspend") is None:
        spec["suspend"] = False
    failure_policy = _dict(spec, "podFailurePolicy")
    if spec.get("podReplacementPolicy") is None:
        spec["podReplacementPolicy"] = "Failed" if failure_policy is not None else "TerminatingOrFailed"
    for rule in _dicts(failure_policy, "rules"):
        for pattern in _dicts(rule, "onPodConditions"):
            _default(pattern, "status", "True")
    template = _template(spec)
    default_pod_template(template)
    if template is not None:
        _generate_job_selector(obj, spec, template)
    meta = _dict(obj, "metadata")
    template_labels = _dict(_dict(template, "metadata"), "labels")
    if meta is not None and template_labels is not None and not meta.get("labels"):
        meta["labels"] = dict(template_labels)


def _generate_job_selector(job: Obj, spec: Obj, template: Obj) -> None:
    """The Job strategy's selector generation, which needs the Job's uid.

    Upstream runs it after the uid is assigned; here it runs whenever the uid is already
    there, so the API server must assign it before defaulting a new Job.
    """
    if spec.get("manualSelector") is True:
        return
    meta = _dict(job, "metadata")
    uid = meta.get("uid") if meta is not None else None
    name = meta.get("name") if meta is not None else None
    if not isinstance(uid, str) or not uid or not isinstance(name, str):
        return
    template_meta = _ensure_dict(template, "metadata")
    labels = _ensure_dict(template_meta, "labels") if template_meta is not None else None
    if labels is None:
        return
    for key in (LEGACY_JOB_NAME_LABEL, JOB_NAME_LABEL):
        labels.setdefault(key, name)
    for key in (LEGACY_JOB_CONTROLLER_UID_LABEL, JOB_CONTROLLER_UID_LABEL):
        labels.setdefault(key, uid)
    selector = _ensure_dict(spec, "selector")
    match_labels = _ensure_dict(selector, "matchLabels") if selector is not None else None
    if match_labels is not None:
        match_labels.setdefault(JOB_CONTROLLER_UID_LABEL, uid)


# ---- core ---------------------------------------------------------------------------------


def _externally_accessible(spec: Obj) -> bool:
    kind = spec.get("type")
    external_ips = spec.get("externalIPs")
    return kind in ("LoadBalancer", "NodePort") or (kind == "ClusterIP" and isinstance(external_ips, list) and bool(external_ips))


def _default_service(obj: Obj) -> None:
    spec = _ensure_dict(obj, "spec")
    if spec is None:
        return
    _default(spec, "sessionAffinity", "None")
    if spec.get("sessionAffinity") == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec.get("sessionAffinity") == "ClientIP":
        client_ip = _dict(_dict(spec, "sessionAffinityConfig"), "clientIP")
        if client_ip is None or client_ip.get("timeoutSeconds") is None:
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": CLIENT_IP_AFFINITY_SECONDS}}
    _default(spec, "type", "ClusterIP")
    for port in _dicts(spec, "ports"):
        _default(port, "protocol", "TCP")
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port")
    if _externally_accessible(spec):
        _default(spec, "externalTrafficPolicy", "Cluster")
    service_type = spec.get("type")
    if spec.get("internalTrafficPolicy") is None and service_type in ("ClusterIP", "NodePort", "LoadBalancer"):
        spec["internalTrafficPolicy"] = "Cluster"
    if service_type == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        spec["allocateLoadBalancerNodePorts"] = True
    _default_cluster_ips(spec)


def _default_cluster_ips(spec: Obj) -> None:
    """What the Service REST storage does before allocating: clusterIP and clusterIPs in
    sync, and a single-stack IPv4 family unless the client chose otherwise."""
    cluster_ip = spec.get("clusterIP")
    cluster_ips = spec.get("clusterIPs")
    if isinstance(cluster_ip, str) and cluster_ip and cluster_ips is None:
        spec["clusterIPs"] = [cluster_ip]
    elif _unset(spec, "clusterIP") and isinstance(cluster_ips, list) and cluster_ips and isinstance(cluster_ips[0], str):
        spec["clusterIP"] = cluster_ips[0]
    if spec.get("type") == "ExternalName":
        return
    if spec.get("ipFamilyPolicy") is None:
        selector = spec.get("selector")
        headless = spec.get("clusterIP") == "None"
        spec["ipFamilyPolicy"] = "RequireDualStack" if headless and not selector else "SingleStack"
    if spec.get("ipFamilies") is None:
        spec["ipFamilies"] = ["IPv4"]


def _default_namespace(obj: Obj) -> None:
    meta = _dict(obj, "metadata")
    name = meta.get("name") if meta is not None else None
    if meta is not None and isinstance(name, str) and name:
        labels = _ensure_dict(meta, "labels")
        if labels is not None:
            labels[NAMESPACE_NAME_LABEL] = name
    # The "kubernetes" finalizer only on create (no uid yet): upstream lets it be removed
    # over the namespace's life, so an update must never put it back.
    if meta is None or not meta.get("uid"):
        spec = _ensure_dict(obj, "spec")
        if spec is not None:
            finalizers = spec.get("finalizers")
            if finalizers is None:
                spec["finalizers"] = ["kubernetes"]
            elif isinstance(finalizers, list) and "kubernetes" not in finalizers:
                finalizers.append("kubernetes")
    status = _ensure_dict(obj, "status")
    if status is not None:
        _default(status, "phase", "Active")


def _default_node(obj: Obj) -> None:
    spec = _dict(obj, "spec")
    if spec is not None:
        # v1 podCIDR is podCIDRs[0] after conversion.
        cidr, cidrs = spec.get("podCIDR"), spec.get("podCIDRs")
        if isinstance(cidr, str) and cidr and cidrs is None:
            spec["podCIDRs"] = [cidr]
        elif isinstance(cidrs, list) and cidrs and isinstance(cidrs[0], str):
            spec["podCIDR"] = cidrs[0]
    status = _dict(obj, "status")
    if status is not None and status.get("allocatable") is None and isinstance(status.get("capacity"), dict):
        status["allocatable"] = dict(status["capacity"])


def _default_endpoints(obj: Obj) -> None:
    for subset in _dicts(obj, "subsets"):
        for port in _dicts(subset, "ports"):
            _default(port, "protocol", "TCP")


def _default_endpoint_slice(obj: Obj) -> None:
    """discovery/v1 SetDefaults_EndpointPort: a port's name is "" and its protocol TCP."""
    for port in _dicts(obj, "ports"):
        # pointers upstream: only an absent (nil) value is defaulted
        if port.get("name") is None:
            port["name"] = ""
        if port.get("protocol") is None:
            port["protocol"] = "TCP"


def _default_secret(obj: Obj) -> None:
    _default(obj, "type", "Opaque")
    # Conversion from v1 folds stringData into data (it wins) and drops it.
    string_data = obj.get("stringData")
    if not isinstance(string_data, dict):
        return
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in string_data.items()):
        return
    data = _ensure_dict(obj, "data")
    if data is None:
        return
    for key, value in string_data.items():
        data[key] = base64.b64encode(value.encode()).decode()
    del obj["stringData"]


# ---- networking, autoscaling --------------------------------------------------------------


def _default_ingress_class(obj: Obj) -> None:
    parameters = _dict(_dict(obj, "spec"), "parameters")
    if parameters is not None and parameters.get("scope") is None:
        parameters["scope"] = "Cluster"


_HPA_SCALE_UP = {
    "stabilizationWindowSeconds": 0,
    "selectPolicy": "Max",
    "policies": [
        {"type": "Pods", "value": 4, "periodSeconds": 15},
        {"type": "Percent", "value": 100, "periodSeconds": 15},
    ],
}
# No stabilizationWindowSeconds: the controller's --horizontal-pod-autoscaler-downscale-
# stabilization flag applies when it is unset.
_HPA_SCALE_DOWN = {
    "selectPolicy": "Max",
    "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
}


def _fill_scaling_rules(behavior: Obj, key: str, defaults: Obj) -> None:
    rules = behavior.get(key)
    if rules is None:
        rules = behavior[key] = {}
    if not isinstance(rules, dict):
        return
    for field, value in defaults.items():
        if rules.get(field) is None:
            rules[field] = [dict(p) for p in value] if isinstance(value, list) else value


def _default_hpa(obj: Obj) -> None:
    spec = _ensure_dict(obj, "spec")
    if spec is None:
        return
    if spec.get("minReplicas") is None:
        spec["minReplicas"] = 1
    metrics = spec.get("metrics")
    if metrics is None or metrics == []:
        spec["metrics"] = [
            {
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
            }
        ]
    behavior = _dict(spec, "behavior")
    if behavior is not None:
        _fill_scaling_rules(behavior, "scaleUp", _HPA_SCALE_UP)
        _fill_scaling_rules(behavior, "scaleDown", _HPA_SCALE_DOWN)
    # Go serializes status.desiredReplicas without omitempty: clients (the official one
    # among them) expect it on every HPA, also before the controller first writes status.
    status = obj.get("status")
    if not isinstance(status, dict):
        status = obj["status"] = {}
    status.setdefault("desiredReplicas", 0)


_DEFAULTERS: dict[str, Callable[[Obj], None]] = {
    "pods": _default_pod,
    "services": _default_service,
    "namespaces": _default_namespace,
    "nodes": _default_node,
    "endpoints": _default_endpoints,
    "endpointslices.discovery.k8s.io": _default_endpoint_slice,
    "secrets": _default_secret,
    "deployments.apps": _default_deployment,
    "replicasets.apps": _default_replicaset,
    "daemonsets.apps": _default_daemonset,
    "jobs.batch": _default_job,
    "ingressclasses.networking.k8s.io": _default_ingress_class,
    "horizontalpodautoscalers.autoscaling": _default_hpa,
}
