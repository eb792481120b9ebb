"""OpenAPI v3 component schemas for the kinds we serve, and strict field validation.

kubectl needs the schemas twice: `apply`/`edit` check that the server validates fields
itself (a `fieldValidation` parameter on the kind's PATCH operation) and then compute the
client-side three-way strategic merge patch *from these schemas*, so list fields must carry
upstream's patch strategy and merge key or kubectl would replace whole lists; `explain`
prints descriptions and types from them. The API server uses the same schemas to reject or
warn about unknown fields (`fieldValidation=Strict|Warn`).

The shapes come from the `kubernetes` client's generated models, which carry
`openapi_types`, `attribute_map`, required-ness and field descriptions, but not the Go
package a type lives in, nor IntOrString/Quantity/MicroTime, nor patch strategies. The
package is inferred from reachability (a type reachable from any core/v1 kind is core,
otherwise it belongs to the group of the served kind that reaches it); the rest comes from
the small tables below.

Importing `kubernetes.client.models` takes about half a second and walking it more, so the
schemas are built once, lazily, under a lock: the API server calls `build()` in a thread at
start, and `schemas()` waits for (or does) that build.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterable
from typing import Any, get_args

from tuik8s.api import errors, registry
from tuik8s.api.registry import ResourceInfo

REF_PREFIX = "#/components/schemas/"

META = "io.k8s.apimachinery.pkg.apis.meta.v1"
TIME = f"{META}.Time"
MICRO_TIME = f"{META}.MicroTime"
FIELDS_V1 = f"{META}.FieldsV1"
PATCH = f"{META}.Patch"
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
RAW_EXTENSION = "io.k8s.apimachinery.pkg.runtime.RawExtension"

# Types that live in apimachinery's meta/v1 rather than in an API group's package.
_META_KINDS = frozenset({
    "APIGroup", "APIGroupList", "APIResource", "APIResourceList", "APIVersions", "Condition",
    "DeleteOptions", "FieldSelectorRequirement", "GroupVersionForDiscovery", "LabelSelector",
    "LabelSelectorRequirement", "ListMeta", "ManagedFieldsEntry", "ObjectMeta",
    "OwnerReference", "Preconditions", "ServerAddressByClientCIDR", "Status", "StatusCause",
    "StatusDetails", "WatchEvent",
})

# Every core/v1 kind the client models know: whatever these reach is core's, even when an
# apps or batch kind reaches it too (PodTemplateSpec, Container, ...).
_CORE_KINDS = (
    "Binding", "ComponentStatus", "ConfigMap", "Endpoints", "Event", "LimitRange", "Namespace",
    "Node", "PersistentVolume", "PersistentVolumeClaim", "Pod", "PodTemplate",
    "ReplicationController", "ResourceQuota", "Secret", "Service", "ServiceAccount",
)

# Go's resource.Quantity is a plain `str` in the client models.
_QUANTITY_FIELDS = frozenset({
    ("V1ContainerStatus", "allocated_resources"), ("V1EmptyDirVolumeSource", "size_limit"),
    ("V1LimitRangeItem", "default"), ("V1LimitRangeItem", "default_request"),
    ("V1LimitRangeItem", "max"), ("V1LimitRangeItem", "max_limit_request_ratio"),
    ("V1LimitRangeItem", "min"), ("V1NodeStatus", "allocatable"), ("V1NodeStatus", "capacity"),
    ("V1Overhead", "pod_fixed"), ("V1PersistentVolumeClaimStatus", "allocated_resources"),
    ("V1PersistentVolumeClaimStatus", "capacity"), ("V1PersistentVolumeSpec", "capacity"),
    ("V1PodSpec", "overhead"), ("V1PodStatus", "allocated_resources"),
    ("V1ResourceFieldSelector", "divisor"), ("V1ResourceQuotaSpec", "hard"),
    ("V1ResourceQuotaStatus", "hard"), ("V1ResourceQuotaStatus", "used"),
    ("V1ResourceRequirements", "limits"), ("V1ResourceRequirements", "requests"),
    ("V1VolumeResourceRequirements", "limits"), ("V1VolumeResourceRequirements", "requests"),
    ("V2HPAScalingRules", "tolerance"), ("V2MetricTarget", "average_value"),
    ("V2MetricTarget", "value"), ("V2MetricValueStatus", "average_value"),
    ("V2MetricValueStatus", "value"),
})

_MICRO_TIME_FIELDS = frozenset({
    ("V1LeaseSpec", "acquire_time"), ("V1LeaseSpec", "renew_time"), ("CoreV1Event", "event_time"),
})

# Untyped `object` fields that upstream gives a named schema.
_OBJECT_FIELDS = {
    ("V1ControllerRevision", "data"): RAW_EXTENSION,
    ("V1WatchEvent", "object"): RAW_EXTENSION,
    ("V1ManagedFieldsEntry", "fields_v1"): FIELDS_V1,
}

_INT64_FIELDS = frozenset({
    "activeDeadlineSeconds", "deletionGracePeriodSeconds", "expirationSeconds", "fsGroup",
    "generation", "gracePeriodSeconds", "observedGeneration", "revision", "runAsGroup",
    "runAsUser", "supplementalGroups", "terminationGracePeriodSeconds",
})

# (class, JSON field) -> (x-kubernetes-patch-strategy, x-kubernetes-patch-merge-key,
# x-kubernetes-list-map-keys); the Go struct tags the client models lost.
_PATCH_META: dict[tuple[str, str], tuple[str, str | None, tuple[str, ...]]] = {
    ("V1ObjectMeta", "finalizers"): ("merge", None, ()),
    ("V1ObjectMeta", "ownerReferences"): ("merge", "uid", ("uid",)),
    ("V1PodSpec", "containers"): ("merge", "name", ("name",)),
    ("V1PodSpec", "ephemeralContainers"): ("merge", "name", ("name",)),
    ("V1PodSpec", "hostAliases"): ("merge", "ip", ("ip",)),
    ("V1PodSpec", "imagePullSecrets"): ("merge", "name", ("name",)),
    ("V1PodSpec", "initContainers"): ("merge", "name", ("name",)),
    ("V1PodSpec", "resourceClaims"): ("merge,retainKeys", "name", ("name",)),
    ("V1PodSpec", "schedulingGates"): ("merge", "name", ("name",)),
    ("V1PodSpec", "topologySpreadConstraints"): (
        "merge", "topologyKey", ("topologyKey", "whenUnsatisfiable")),
    ("V1PodSpec", "volumes"): ("merge,retainKeys", "name", ("name",)),
    ("V1Container", "env"): ("merge", "name", ("name",)),
    ("V1Container", "ports"): ("merge", "containerPort", ("containerPort", "protocol")),
    ("V1Container", "volumeDevices"): ("merge", "devicePath", ("devicePath",)),
    ("V1Container", "volumeMounts"): ("merge", "mountPath", ("mountPath",)),
    ("V1EphemeralContainer", "env"): ("merge", "name", ("name",)),
    ("V1EphemeralContainer", "ports"): ("merge", "containerPort", ("containerPort", "protocol")),
    ("V1EphemeralContainer", "volumeDevices"): ("merge", "devicePath", ("devicePath",)),
    ("V1EphemeralContainer", "volumeMounts"): ("merge", "mountPath", ("mountPath",)),
    ("V1PodStatus", "conditions"): ("merge", "type", ("type",)),
    ("V1PodStatus", "hostIPs"): ("merge", "ip", ()),
    ("V1PodStatus", "podIPs"): ("merge", "ip", ()),
    ("V1PodStatus", "resourceClaimStatuses"): ("merge,retainKeys", "name", ("name",)),
    ("V1ServiceSpec", "ports"): ("merge", "port", ("port", "protocol")),
    ("V1ServiceStatus", "conditions"): ("merge", "type", ("type",)),
    ("V1ServiceAccount", "secrets"): ("merge", "name", ()),
    ("V1NodeSpec", "podCIDRs"): ("merge", None, ()),
    ("V1NodeStatus", "addresses"): ("merge", "type", ("type",)),
    ("V1NodeStatus", "conditions"): ("merge", "type", ("type",)),
    ("V1NamespaceStatus", "conditions"): ("merge", "type", ("type",)),
    ("V1DeploymentSpec", "strategy"): ("retainKeys", None, ()),
    ("V1DeploymentStatus", "conditions"): ("merge", "type", ("type",)),
    ("V1ReplicaSetStatus", "conditions"): ("merge", "type", ("type",)),
    ("V1DaemonSetStatus", "conditions"): ("merge", "type", ("type",)),
    ("V1JobStatus", "conditions"): ("merge", "type", ()),
    ("V2HorizontalPodAutoscalerStatus", "conditions"): ("merge", "type", ("type",)),
}

_SPECIAL_SCHEMAS: dict[str, dict[str, Any]] = {
    TIME: {
        "description": "A point in time, serialized as an RFC 3339 string in UTC "
        "(second precision).",
        "type": "string",
        "format": "date-time",
    },
    MICRO_TIME: {
        "description": "A point in time with microsecond precision, serialized as an "
        "RFC 3339 string.",
        "type": "string",
        "format": "date-time",
    },
    INT_OR_STRING: {
        "description": "A value that is either an integer or a string, such as a port "
        "number or a port name, or a count or a percentage (\"25%\").",
        "format": "int-or-string",
        "oneOf": [{"type": "integer"}, {"type": "string"}],
        "x-kubernetes-int-or-string": True,
    },
    QUANTITY: {
        "description": "A fixed-point number with an optional suffix: binary (Ki, Mi, Gi, "
        "Ti, Pi, Ei), decimal SI (m, k, M, G, T, P, E) or a decimal exponent "
        "(e3). Examples: \"500m\" CPU, \"128Mi\" memory, \"2\".",
        "oneOf": [{"type": "string"}, {"type": "number"}],
    },
    RAW_EXTENSION: {
        "description": "An embedded object of any kind, kept as it was written.",
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
    },
    FIELDS_V1: {
        "description": "The set of fields a manager owns, in the structured-merge-diff "
        "field set format.",
        "type": "object",
    },
    PATCH: {
        "description": "The body of a PATCH request: a JSON patch, a JSON merge patch, a "
        "strategic merge patch or an apply configuration, as the Content-Type says.",
        "type": "object",
    },
}

def ref(name: str) -> dict[str, str]:
    return {"$ref": REF_PREFIX + name}


_SIMPLE_TYPES: dict[str, dict[str, Any]] = {
    "str": {"type": "string"},
    "bool": {"type": "boolean"},
    "float": {"type": "number", "format": "double"},
    "bytes": {"type": "string", "format": "byte"},
    "datetime": ref(TIME),
    "MicroTime": ref(MICRO_TIME),
    "Quantity": ref(QUANTITY),
    "object": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
}

_CLASS_NAME = re.compile(r"^([A-Z][a-z]+)?(V\d+(?:(?:alpha|beta)\d+)?)([A-Z]\w*)$")

_lock = threading.Lock()
_schemas: dict[str, dict[str, Any]] | None = None
_by_gvk: dict[tuple[str, str, str], str] = {}
_build_seconds: float | None = None


def build() -> None:
    """Build the component schemas once; safe to call from several threads at once.

    Call it with `asyncio.to_thread(schema.build)` when the server starts so the first
    kubectl apply does not pay for it.
    """
    global _schemas, _build_seconds
    if _schemas is not None:
        return
    with _lock:
        if _schemas is not None:
            return
        started = time.perf_counter()
        built, by_gvk = _Builder().run()
        _by_gvk.update(by_gvk)
        _build_seconds = time.perf_counter() - started
        _schemas = built


def schemas() -> dict[str, dict[str, Any]]:
    """Every component schema by upstream name; built on first use. Do not mutate."""
    if _schemas is None:
        build()
    assert _schemas is not None
    return _schemas


def is_built() -> bool:
    return _schemas is not None


def build_seconds() -> float | None:
    """How long `build()` took (model import included), once it has run."""
    return _build_seconds


def schema_name(group: str, version: str, kind: str) -> str | None:
    """The component name of a top-level kind: `io.k8s.api.apps.v1.Deployment`."""
    schemas()
    return _by_gvk.get((group, version, kind))


# --- strict field validation ---------------------------------------------------------------

FIELD_VALIDATION_VALUES = ("Ignore", "Strict", "Warn")


def unknown_fields(info: ResourceInfo, obj: dict[str, Any]) -> list[str]:
    """JSON paths of the fields of `obj` that `info`'s kind does not have, in document order.

    `["spec.replica", "spec.template.spec.containers[0].imagee"]`. Free-form maps (labels,
    annotations, data, matchLabels, nodeSelector, resource requests/limits, ...) accept any
    key; strategic-merge-patch directives (`$patch`, `$setElementOrder/...`) are skipped, so
    a patch body can be checked as well as the object a patch produced.
    """
    return unknown_fields_of(info.group, info.version, info.kind, obj)


def unknown_fields_of(group: str, version: str, kind: str, obj: dict[str, Any]) -> list[str]:
    """`unknown_fields` for any kind with a schema (`autoscaling/v1 Scale` for `/scale`)."""
    name = schema_name(group, version, kind)
    if name is None or not isinstance(obj, dict):
        return []
    found: list[str] = []
    _walk(obj, ref(name), "", schemas(), found)
    return found


def strict_decoding_message(fields: Iterable[str]) -> str:
    """`strict decoding error: unknown field "spec.replica", unknown field "..."`."""
    return "strict decoding error: " + ", ".join(f'unknown field "{f}"' for f in fields)


def field_warnings(fields: Iterable[str]) -> list[str]:
    """One warning text per unknown field, as `fieldValidation=Warn` reports them."""
    return [f'unknown field "{f}"' for f in fields]


def warning_header(text: str) -> str:
    """A `Warning` response header value (RFC 7234 code 299, as the apiserver sends).
    Control characters a client's field names bring in are escaped: aiohttp refuses to send
    them and would drop the connection without an answer."""
    escaped = errors.one_line(text.replace("\\", "\\\\").replace('"', '\\"'))
    return f'299 - "{escaped}"'


def field_validation(
    info: ResourceInfo,
    obj: dict[str, Any],
    directive: str | None,
    *,
    verb: str = "create",
    patch: Any = None,
    patch_type: str = "",
    kind: tuple[str, str, str] | None = None,
) -> list[str]:
    """Apply a request's `fieldValidation` to the object it would write.

    `verb` is create, update or patch. For patches pass the object the patch produced as
    `obj` (and the request body as `patch`, its Content-Type as `patch_type`): as upstream,
    the result is what is checked. `kind` overrides the (group, version, kind) checked, for
    subresources such as /scale.

    Strict: raises the StatusError upstream answers: 400 BadRequest for create and update,
    422 Invalid on field `patch` for patches. Warn (the default when the parameter is absent)
    returns the warning texts for `warning_header`. Ignore returns []. Any other value is a
    422 on the request's options, as upstream.
    """
    mode = directive or "Warn"
    if mode not in FIELD_VALIDATION_VALUES:
        options = {"update": "UpdateOptions", "patch": "PatchOptions"}.get(verb, "CreateOptions")
        supported = ", ".join(f'"{v}"' for v in FIELD_VALIDATION_VALUES)
        raise errors.invalid(options, "", [errors.FieldError(
            "fieldValidation",
            f"Unsupported value: {json.dumps(mode)}: supported values: {supported}",
            "FieldValueNotSupported",
        )], group="meta.k8s.io")
    if mode == "Ignore":
        return []
    group, version, kind_name = kind or (info.group, info.version, info.kind)
    fields = unknown_fields_of(group, version, kind_name, obj)
    if not fields:
        return []
    if mode == "Warn":
        return field_warnings(fields)
    raise strict_error(group, version, kind_name, fields, verb=verb, patch=patch,
                       patch_type=patch_type, patched=obj)


def strict_error(
    group: str,
    version: str,
    kind: str,
    fields: list[str],
    *,
    verb: str = "create",
    patch: Any = None,
    patch_type: str = "",
    patched: Any = None,
) -> errors.StatusError:
    """The error upstream answers a Strict request carrying unknown fields with.

    create/update (and server-side apply): 400 BadRequest
    `Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: ...`.
    patch: 422 Invalid ` "" is invalid: patch: Invalid value: "<patch>": strict decoding ...`,
    which kubectl prints as `The request is invalid: patch: ...`; the value shown is Go's
    rendering of the patch map for strategic merge patches and the patched object's JSON
    for JSON and merge patches.
    """
    message = strict_decoding_message(fields)
    if verb != "patch" or patch_type.startswith("application/apply-patch"):
        return errors.bad_request(
            f'{kind} in version "{version}" cannot be handled as a {kind}: {message}'
        )
    if patch_type.startswith("application/strategic-merge-patch"):
        shown = _go_format(patch)
    else:
        shown = json.dumps(patched, separators=(",", ":"))
    return errors.invalid("", "", [errors.FieldError(
        "patch", f"Invalid value: {json.dumps(shown)}: {message}", "FieldValueInvalid"
    )])


def _go_format(value: Any) -> str:
    """Go's `%+v` of a decoded JSON value: `map[spec:map[replicas:3]]`."""
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_go_format(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(_go_format(v) for v in value) + "]"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return str(value)


def _resolve(schema: dict[str, Any], components: dict[str, dict[str, Any]]) -> dict[str, Any]:
    while True:
        target = schema.get("$ref")
        if target is not None:
            schema = components.get(target[len(REF_PREFIX):], {})
            continue
        all_of = schema.get("allOf")
        if all_of and len(all_of) == 1 and "properties" not in schema:
            schema = all_of[0]
            continue
        return schema


def _walk(
    value: Any,
    schema: dict[str, Any],
    path: str,
    components: dict[str, dict[str, Any]],
    found: list[str],
) -> None:
    schema = _resolve(schema, components)
    properties = schema.get("properties")
    if properties is not None:
        if not isinstance(value, dict):
            return
        for key, sub in value.items():
            if key.startswith("$"):
                continue
            where = f"{path}.{key}" if path else key
            known = properties.get(key)
            if known is None:
                found.append(where)
            elif sub is not None:
                _walk(sub, known, where, components, found)
        return
    items = schema.get("items")
    if items is not None:
        if isinstance(value, list):
            for i, item in enumerate(value):
                if item is not None:
                    _walk(item, items, f"{path}[{i}]", components, found)
        return
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict) and isinstance(value, dict):
        for key, sub in value.items():
            if sub is not None:
                _walk(sub, extra, f"{path}.{key}" if path else key, components, found)


# --- building ------------------------------------------------------------------------------


def _served_kinds() -> list[tuple[str, str, str]]:
    """(group, version, kind) of every object the served paths take or return."""
    kinds: list[tuple[str, str, str]] = []

    def add(gvk: tuple[str, str, str]) -> None:
        if gvk not in kinds:
            kinds.append(gvk)

    for r in registry.RESOURCES:
        add((r.group, r.version, r.kind))
        add((r.group, r.version, r.list_kind))
        for sub in r.subresources:
            add((sub.group, sub.version, sub.kind))
    for kind in ("Status", "APIVersions", "APIGroupList", "APIGroup", "DeleteOptions",
                 "WatchEvent"):
        add(("", "v1", kind))
    return kinds


def _meta_gvks(kind: str) -> list[dict[str, str]]:
    """DeleteOptions and WatchEvent are registered in every group version, as upstream."""
    if kind == "Status":
        return [{"group": "", "kind": "Status", "version": "v1"}]
    gvs: list[tuple[str, str]] = list(registry.group_versions())
    for r in registry.RESOURCES:
        for sub in r.subresources:
            if (sub.group, sub.version) not in gvs:
                gvs.append((sub.group, sub.version))
    return [{"group": g, "kind": kind, "version": v} for g, v in gvs]


class _Builder:
    """One build: walks the client models from the served kinds into component schemas."""

    def __init__(self) -> None:
        import kubernetes.client.models as models  # slow: ~850 modules

        self.models = models
        self.owner: dict[str, str] = {}  # class name -> API group ("" for core)
        self.names: dict[str, str] = {}  # class name -> component name
        self.out: dict[str, dict[str, Any]] = dict(_SPECIAL_SCHEMAS)

    def run(self) -> tuple[dict[str, dict[str, Any]], dict[tuple[str, str, str], str]]:
        served = [(gvk, self._class_for(*gvk)) for gvk in _served_kinds()]
        served_classes = [(gvk, cls) for gvk, cls in served if cls is not None]
        core_seeds = [c for c in (self._class_for("", "v1", k) for k in _CORE_KINDS) if c]
        for name in self._closure(core_seeds):
            self.owner[name] = ""
        for (group, _, _), cls in served_classes:
            for name in self._closure([cls]):
                self.owner.setdefault(name, group)

        by_gvk: dict[tuple[str, str, str], str] = {}
        gvk_lists: dict[str, list[dict[str, str]]] = {}
        for (group, version, kind), cls in served_classes:
            name = self._name(cls.__name__)
            by_gvk[(group, version, kind)] = name
            entries = gvk_lists.setdefault(name, [])
            wanted = (_meta_gvks(kind) if name.startswith(META)
                      else [{"group": group, "kind": kind, "version": version}])
            entries.extend(g for g in wanted if g not in entries)
        for cls_name in self._closure([cls for _, cls in served_classes]):
            self.out[self._name(cls_name)] = self._object_schema(getattr(self.models, cls_name))
        for name, gvks in gvk_lists.items():
            self.out[name]["x-kubernetes-group-version-kind"] = gvks
        return dict(sorted(self.out.items())), by_gvk

    def _class_for(self, group: str, version: str, kind: str) -> Any | None:
        vprefix = version[:1].upper() + version[1:]
        gprefix = (group.split(".")[0] or "core").capitalize()
        for name in (f"{gprefix}{vprefix}{kind}", f"{vprefix}{kind}"):
            cls = getattr(self.models, name, None)
            if isinstance(cls, type) and hasattr(cls, "openapi_types"):
                return cls
        return None

    def _closure(self, seeds: list[type]) -> list[str]:
        seen: list[str] = []
        stack = [c.__name__ for c in seeds]
        known: set[str] = set()
        while stack:
            name = stack.pop()
            if name in known:
                continue
            known.add(name)
            seen.append(name)
            cls = getattr(self.models, name)
            for type_name in cls.openapi_types.values():
                if _newer_than_served(name, type_name):
                    continue
                model = _model_in(type_name)
                if model and hasattr(self.models, model):
                    stack.append(model)
        return seen

    def _name(self, cls_name: str) -> str:
        cached = self.names.get(cls_name)
        if cached:
            return cached
        match = _CLASS_NAME.match(cls_name)
        if match is None:
            name = f"io.k8s.api.core.v1.{cls_name}"
        else:
            prefix, version, kind = match.groups()
            if kind in _META_KINDS and version == "V1" and prefix is None:
                name = f"{META}.{kind}"
            else:
                group = self.owner.get(cls_name, "")
                package = prefix.lower() if prefix else (group.split(".")[0] or "core")
                name = f"io.k8s.api.{package}.{version.lower()}.{kind}"
        self.names[cls_name] = name
        return name

    def _object_schema(self, cls: Any) -> dict[str, Any]:
        cls_name = cls.__name__
        fields = getattr(cls, "model_fields", {})
        properties: dict[str, Any] = {}
        required: list[str] = []
        for attr, type_name in cls.openapi_types.items():
            if _newer_than_served(cls_name, type_name):
                continue
            json_name = cls.attribute_map[attr]
            info = fields.get(attr)
            prop = self._field_schema(cls_name, attr, json_name, type_name, info)
            description = getattr(info, "description", None)
            if description:
                if "$ref" in prop:
                    prop = {"allOf": [prop], "description": description}
                else:
                    prop["description"] = description
            elif "$ref" in prop and hasattr(self.models, type_name):
                # The models drop the description of required fields; the type's will do.
                # Beside a bare $ref, explain shows it in field lists, while a FIELD view
                # resolves the ref and prints the type's description once.
                prop["description"] = _class_description(getattr(self.models, type_name))
            meta = _PATCH_META.get((cls_name, json_name))
            if meta:
                strategy, merge_key, map_keys = meta
                prop["x-kubernetes-patch-strategy"] = strategy
                if merge_key:
                    prop["x-kubernetes-patch-merge-key"] = merge_key
                if map_keys:
                    prop["x-kubernetes-list-type"] = "map"
                    prop["x-kubernetes-list-map-keys"] = list(map_keys)
            properties[json_name] = prop
            if info is not None and info.is_required():
                required.append(json_name)
        schema: dict[str, Any] = {}
        description = _class_description(cls)
        if description:
            schema["description"] = description
        schema["properties"] = dict(sorted(properties.items()))
        if required:
            schema["required"] = required
        schema["type"] = "object"
        return schema

    def _field_schema(
        self, cls_name: str, attr: str, json_name: str, type_name: str, info: Any
    ) -> dict[str, Any]:
        if (cls_name, attr) in _QUANTITY_FIELDS:
            type_name = "Dict[str, Quantity]" if type_name.startswith("Dict[") else "Quantity"
        elif (cls_name, attr) in _MICRO_TIME_FIELDS:
            type_name = "MicroTime"
        elif type_name == "object":
            special = _OBJECT_FIELDS.get((cls_name, attr))
            if special:
                return ref(special)
            if info is not None and _is_int_or_string(info.annotation):
                return ref(INT_OR_STRING)
        return self._type_schema(type_name, json_name)

    def _type_schema(self, type_name: str, json_name: str) -> dict[str, Any]:
        if type_name.startswith("List["):
            return {"type": "array", "items": self._type_schema(type_name[5:-1], json_name)}
        if type_name.startswith("Dict[str, "):
            return {"type": "object",
                    "additionalProperties": self._type_schema(type_name[10:-1], json_name)}
        simple = _SIMPLE_TYPES.get(type_name)
        if simple is not None:
            return dict(simple)
        if type_name == "int":
            return {"type": "integer",
                    "format": "int64" if json_name in _INT64_FIELDS else "int32"}
        if hasattr(self.models, type_name):
            return ref(self._name(type_name))
        return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


def _model_in(type_name: str) -> str | None:
    while type_name.startswith(("List[", "Dict[str, ")):
        type_name = type_name[5:-1] if type_name.startswith("List[") else type_name[10:-1]
    if type_name in ("str", "int", "bool", "float", "bytes", "datetime", "object"):
        return None
    return type_name


_PRERELEASE = re.compile(r"V\d+(alpha|beta)\d+")


def _newer_than_served(cls_name: str, type_name: str) -> bool:
    """A GA type's field of an alpha/beta type: a feature gate of a later release."""
    model = _model_in(type_name)
    return bool(model and _PRERELEASE.search(model) and not _PRERELEASE.search(cls_name))


def _is_int_or_string(annotation: Any) -> bool:
    flat: set[Any] = set()
    stack = [annotation]
    while stack:
        current = stack.pop()
        args = get_args(current)
        if args and current not in (int, str):
            stack.extend(args)
        else:
            flat.add(current)
    return int in flat and str in flat


def _class_description(cls: type) -> str:
    doc = cls.__doc__ or ""
    doc = doc.split("Attributes:")[0]
    return " ".join(doc.split())
