"""Validation: what upstream's `pkg/apis/*/validation` rejects, with its field paths and words.

The API server defaults an object (`tuik8s.api.defaults`) and then asks this module what is
wrong with it; a non-empty answer becomes a 422 Invalid whose causes kubectl prints. The
messages are upstream's (Kubernetes 1.32), because users paste them into search engines, and
bad values are rendered the way 1.32's `field.Error` renders them (`%q` for strings, `%#v`
for maps and structs: `map[string]string{"app":"x"}`).

Upstream validates typed Go structs after a decoder has already rejected `"spec": "x"`. We
get JSON of any shape, so every read goes through the small typed accessors below: a value of
the wrong JSON type is reported as a FieldError and read as absent, and no code indexes into
a value it has not checked. The public functions never raise; the last-resort guard in
`_guarded` only exists so that a bug here is a 422 naming the object, never a 500.
"""

from __future__ import annotations

import base64
import binascii
import copy
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

from tuik8s.api.defaults import JOB_CONTROLLER_UID_LABEL, VOLUME_SOURCES
from tuik8s.api.errors import FieldError
from tuik8s.api.names import (
    DUPLICATE,
    INVALID,
    field_duplicate,
    field_forbidden,
    field_invalid,
    field_not_supported,
    field_required,
    field_too_long,
    go_quote,
    go_value,
    is_dns1035_label,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_qualified_name,
    is_valid_label_value,
    validate_annotations,
    validate_labels,
    validate_object_meta,
)
from tuik8s.api.quantity import parse_quantity
from tuik8s.api.registry import ResourceInfo
from tuik8s.api.selectors import LabelSelector, SelectorError, selector_from_spec

Errors = list[FieldError]
Obj = dict[str, Any]

NOT_FOUND = "FieldValueNotFound"
INTERNAL = "InternalError"

NONNEGATIVE = "must be greater than or equal to 0"
POSITIVE = "must be greater than 0"
PORT_RANGE = "must be between 1 and 65535, inclusive"
IMMUTABLE = "field is immutable"
FILE_MODE = "must be a number between 0 and 0777 (octal), both inclusive"
IP_MSG = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
CIDR_MSG = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"
MAX_INT32 = 2**31 - 1
MAX_SECRET_SIZE = 1024 * 1024
NODE_PORT_RANGE = (30000, 32767)

POD_UPDATE_FORBIDDEN = (
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,"
    "`spec.tolerations` (only additions to existing tolerations),"
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"
)


# ---- public surface ----------------------------------------------------------------------


def validate_create(info: ResourceInfo, obj: dict) -> list[FieldError]:
    """Everything wrong with `obj`, a defaulted `info.kind` about to be created."""
    return _guarded(lambda: _validate(info, obj, creating=True))


def validate_update(info: ResourceInfo, obj: dict, old: dict) -> list[FieldError]:
    """What validate_create finds, plus changes to fields upstream does not let change.

    metadata.name/namespace/uid are the caller's business.
    """

    def run() -> Errors:
        judged = obj
        if info.key == "services" and isinstance(obj, dict) and isinstance(old, dict):
            judged = _drop_type_dependent_fields(obj, old)
        errs = _validate(info, judged, creating=False)
        if isinstance(obj, dict) and isinstance(old, dict):
            check = _UPDATE_VALIDATORS.get(info.key)
            if check is not None:
                check(obj, old, errs)
        return errs

    return _guarded(run)


def validate_status_update(info: ResourceInfo, obj: dict, old: dict) -> list[FieldError]:
    """A write to /status: valid metadata, a status object, known phases, well-formed conditions."""

    def run() -> Errors:
        if not isinstance(obj, dict):
            return [_wrong_type("", obj, "an object")]
        errs: Errors = []
        errs.extend(_object_meta(info, obj.get("metadata")))
        status = _map(obj.get("status"), "status", errs)
        if status is not None:
            _status(info, status, old if isinstance(old, dict) else {}, errs)
        return errs

    return _guarded(run)


def _guarded(run: Callable[[], Errors]) -> Errors:
    try:
        return run()
    except Exception as exc:  # noqa: BLE001 - a validator bug must not become a 500
        return [FieldError("", f"Internal error: validation failed: {type(exc).__name__}: {exc}", INTERNAL)]


def _validate(info: ResourceInfo, obj: Any, *, creating: bool) -> Errors:
    if not isinstance(obj, dict):
        return [_wrong_type("", obj, "an object")]
    errs = _object_meta(info, obj.get("metadata"))
    validator = _VALIDATORS.get(info.key)
    if validator is not None:
        validator(obj, errs, creating)
    return errs


def _object_meta(info: ResourceInfo, meta: Any) -> Errors:
    check = _NAME_CHECKS.get(info.key, is_dns1123_subdomain)
    return validate_object_meta(meta, namespaced=info.namespaced, name_check=check)


_NAME_CHECKS: dict[str, Callable[[str], list[str]]] = {
    "namespaces": is_dns1123_label,
    "services": is_dns1035_label,
}


# ---- typed accessors over untyped JSON -----------------------------------------------------


def _wrong_type(path: str, value: Any, what: str) -> FieldError:
    return field_invalid(path, value, f"must be {what}")


def _map(value: Any, path: str, errs: Errors) -> Obj | None:
    """value as an object; None when absent (null) or reported as the wrong type."""
    if value is None:
        return None
    if isinstance(value, dict):
        return value
    errs.append(_wrong_type(path, value, "an object"))
    return None


def _list(value: Any, path: str, errs: Errors) -> list | None:
    if value is None:
        return None
    if isinstance(value, list):
        return value
    errs.append(_wrong_type(path, value, "a list"))
    return None


def _str(value: Any, path: str, errs: Errors) -> str:
    """value as a string; "" when absent or reported as the wrong type (Go's zero value)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    errs.append(_wrong_type(path, value, "a string"))
    return ""


def _int(value: Any, path: str, errs: Errors) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        errs.append(_wrong_type(path, value, "an integer"))
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    errs.append(_wrong_type(path, value, "an integer"))
    return None


def _bool(value: Any, path: str, errs: Errors) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    errs.append(_wrong_type(path, value, "a boolean"))
    return None


def _maps(value: Any, path: str, errs: Errors) -> list[tuple[str, Obj]]:
    """(path, item) for the object items of a list; a null item reads as {} like in Go."""
    out: list[tuple[str, Obj]] = []
    for i, item in enumerate(_list(value, path, errs) or []):
        item_path = f"{path}[{i}]"
        if item is None:
            out.append((item_path, {}))
        else:
            found = _map(item, item_path, errs)
            if found is not None:
                out.append((item_path, found))
    return out


def _strings(value: Any, path: str, errs: Errors) -> list[tuple[str, str]]:
    """(path, item) for the string items of a list."""
    out: list[tuple[str, str]] = []
    for i, item in enumerate(_list(value, path, errs) or []):
        item_path = f"{path}[{i}]"
        if isinstance(item, str):
            out.append((item_path, item))
        else:
            errs.append(_wrong_type(item_path, item, "a string"))
    return out


def _str_map(value: Any, path: str, errs: Errors) -> dict[str, str]:
    found = _map(value, path, errs)
    out: dict[str, str] = {}
    for key, item in (found or {}).items():
        if isinstance(item, str):
            out[key] = item
        else:
            errs.append(_wrong_type(f"{path}[{key}]", item, "a string"))
    return out


def _required_str(parent: Obj, key: str, path: str, errs: Errors, detail: str = "") -> str:
    raw = parent.get(key)
    value = _str(raw, path, errs)
    if raw is None or raw == "":
        errs.append(field_required(path, detail))
    return value


def _names(value: str, path: str, check: Callable[[str], list[str]], errs: Errors) -> None:
    errs.extend(field_invalid(path, value, msg) for msg in check(value))


def _nonnegative(parent: Obj, key: str, path: str, errs: Errors, *, int32: bool = True) -> int | None:
    value = _int(parent.get(key), path, errs)
    if value is None:
        return None
    if value < 0:
        errs.append(field_invalid(path, value, NONNEGATIVE))
    elif int32 and value > MAX_INT32:
        # Upstream's decoder refuses these before validation ("... of type int32").
        errs.append(field_invalid(path, value, f"must be less than or equal to {MAX_INT32}"))
        return None
    return value


def _enum(
    parent: Obj, key: str, path: str, supported: Iterable[str], errs: Errors, *, required: bool = True
) -> str:
    raw = parent.get(key)
    value = _str(raw, path, errs)
    if raw is None or raw == "":
        if required:
            errs.append(field_required(path))
        return ""
    supported = list(supported)
    if value and value not in supported:
        errs.append(field_not_supported(path, value, supported))
    return value


def _not_found(path: str, value: Any) -> FieldError:
    return FieldError(path, f"Not found: {go_value(value)}", NOT_FOUND)


def _invalid_rendered(path: str, rendered: str, detail: str) -> FieldError:
    """An Invalid error whose value is already rendered the way Go's %#v prints it."""
    return FieldError(path, f"Invalid value: {rendered}: {detail}", INVALID)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# ---- Go renderings of bad values (field.Error uses %#v for structs and maps) -----------------


def _go_string_map(value: Any) -> str:
    if value is None:
        return "map[string]string(nil)"
    if not isinstance(value, Mapping):
        return go_value(value)
    items = ", ".join(f"{go_quote(str(k))}:{go_quote(str(v))}" for k, v in sorted(value.items(), key=lambda kv: str(kv[0])))
    return "map[string]string{" + items + "}"


def _go_string_list(value: Any) -> str:
    if not value:
        return "[]string(nil)" if value is None else "[]string{}"
    if not isinstance(value, list):
        return go_value(value)
    return "[]string{" + ", ".join(go_quote(str(v)) for v in value) + "}"


def _go_selector(selector: Any) -> str:
    if not isinstance(selector, Mapping):
        return go_value(selector)
    expressions = selector.get("matchExpressions")
    if isinstance(expressions, list) and expressions:
        rendered = []
        for expr in expressions:
            expr = expr if isinstance(expr, Mapping) else {}
            rendered.append(
                "v1.LabelSelectorRequirement{"
                f"Key:{go_quote(str(expr.get('key') or ''))}, "
                f"Operator:{go_quote(str(expr.get('operator') or ''))}, "
                f"Values:{_go_string_list(expr.get('values'))}}}"
            )
        exprs = "[]v1.LabelSelectorRequirement{" + ", ".join(rendered) + "}"
    else:
        exprs = "[]v1.LabelSelectorRequirement(nil)"
    labels = selector.get("matchLabels")
    return f"v1.LabelSelector{{MatchLabels:{_go_string_map(labels or None)}, MatchExpressions:{exprs}}}"


def _go_intstr(value: Any) -> str:
    if _is_int(value):
        return f"intstr.IntOrString{{Type:0, IntVal:{value}, StrVal:\"\"}}"
    if isinstance(value, str):
        return f"intstr.IntOrString{{Type:1, IntVal:0, StrVal:{go_quote(value)}}}"
    return go_value(value)


# ---- string formats upstream checks ----------------------------------------------------------


def _regex_error(msg: str, fmt: str, *examples: str) -> str:
    shown = " or ".join(f"'{e}'" for e in examples)
    return f"{msg} (e.g. {shown}, regex used for validation is '{fmt}')"


_PORT_NAME_CHARS = re.compile(r"[-a-z0-9]+", re.ASCII)
_PERCENT_FMT = "[0-9]+%"
_PERCENT_RE = re.compile(_PERCENT_FMT, re.ASCII)
_CONFIG_KEY_FMT = "[-._a-zA-Z0-9]+"
_CONFIG_KEY_RE = re.compile(_CONFIG_KEY_FMT, re.ASCII)
_WILDCARD_FMT = r"\*\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_WILDCARD_RE = re.compile(_WILDCARD_FMT, re.ASCII)
_HTTP_PATH_FMT = r"[A-Za-z0-9/\-._~%!$&'()*+,;=:]+"
_HTTP_PATH_RE = re.compile(_HTTP_PATH_FMT, re.ASCII)


def is_valid_port_num(port: int) -> list[str]:
    return [] if 1 <= port <= 65535 else [PORT_RANGE]


def is_valid_port_name(name: str) -> list[str]:
    """IANA_SVC_NAME: 1-15 characters of a-z, 0-9 and '-', at least one letter."""
    errs = []
    if len(name) > 15:
        errs.append("must be no more than 15 characters")
    if not _PORT_NAME_CHARS.fullmatch(name):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    elif not re.search("[a-z]", name):
        errs.append("must contain at least one letter (a-z)")
    if "--" in name:
        errs.append("must not contain consecutive hyphens")
    if name and (name[0] == "-" or name[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def is_config_map_key(key: str) -> list[str]:
    errs = []
    if len(key) > 253:
        errs.append("must be no more than 253 characters")
    if not _CONFIG_KEY_RE.fullmatch(key):
        errs.append(
            _regex_error(
                "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
                _CONFIG_KEY_FMT,
                "key.name",
                "KEY_NAME",
                "key-name",
            )
        )
    errs.extend(_ch_dir_prefix(key))
    return errs


def _ch_dir_prefix(value: str) -> list[str]:
    if value == ".":
        return ["must not be '.'"]
    if value == "..":
        return ["must not be '..'"]
    if value.startswith(".."):
        return ["must not start with '..'"]
    return []


def is_relaxed_env_var_name(name: str) -> list[str]:
    """1.32's RelaxedEnvironmentVariableValidation (beta, on): printable ASCII except '='."""
    errs = []
    if not name:
        errs.append("environment variable name must be non-empty")
    if any(ord(c) > 126 or ord(c) < 32 or c == "=" for c in name):
        errs.append(
            "a valid environment variable name must consist only of printable ASCII "
            "characters other than '='"
        )
    return errs


def is_wildcard_dns1123_subdomain(value: str) -> list[str]:
    errs = []
    if len(value) > 253:
        errs.append("must be no more than 253 characters")
    if not _WILDCARD_RE.fullmatch(value):
        errs.append(
            _regex_error(
                "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS "
                "subdomain, which must consist of lower case alphanumeric characters, '-' or '.' "
                "and end with an alphanumeric character",
                _WILDCARD_FMT,
                "*.example.com",
            )
        )
    return errs


def is_valid_path_segment_name(name: str) -> list[str]:
    for illegal in (".", ".."):
        if name == illegal:
            return [f"may not be '{illegal}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in name]


def _parse_ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if "%" in value:
        return None
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _valid_cidr(value: str) -> bool:
    if "%" in value or "/" not in value:
        return False
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return True


def _ip(value: str, path: str, errs: Errors) -> None:
    if _parse_ip(value) is None:
        errs.append(field_invalid(path, value, IP_MSG))


def _port_num_or_name(value: Any, path: str, errs: Errors) -> None:
    """An IntOrString port: a number in 1-65535, or an IANA service name."""
    if _is_int(value):
        errs.extend(field_invalid(path, value, msg) for msg in is_valid_port_num(value))
    elif isinstance(value, str):
        if not value:
            errs.append(field_required(path))
        else:
            errs.extend(field_invalid(path, value, msg) for msg in is_valid_port_name(value))
    elif value is None:
        errs.append(field_required(path))
    else:
        errs.append(_wrong_type(path, value, "an integer or a string"))


def _quantity(value: Any, path: str, errs: Errors) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        errs.append(_wrong_type(path, value, "a quantity"))
        return None
    try:
        return parse_quantity(value)
    except (ValueError, ArithmeticError) as exc:
        errs.append(field_invalid(path, value if isinstance(value, str) else str(value), str(exc)))
        return None


# ---- label selectors -------------------------------------------------------------------------


def _label_selector(selector: Obj, path: str, errs: Errors) -> LabelSelector | None:
    """ValidateLabelSelector; the parsed selector when it is valid, else None."""
    before = len(errs)
    errs.extend(validate_labels(selector.get("matchLabels"), f"{path}.matchLabels"))
    for item_path, expr in _maps(selector.get("matchExpressions"), f"{path}.matchExpressions", errs):
        operator = _str(expr.get("operator"), f"{item_path}.operator", errs)
        values = _strings(expr.get("values"), f"{item_path}.values", errs)
        if operator in ("In", "NotIn"):
            if not values:
                errs.append(
                    field_required(
                        f"{item_path}.values", "must be specified when `operator` is 'In' or 'NotIn'"
                    )
                )
        elif operator in ("Exists", "DoesNotExist"):
            if values:
                errs.append(
                    field_forbidden(
                        f"{item_path}.values",
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    )
                )
        else:
            errs.append(field_invalid(f"{item_path}.operator", operator, "not a valid selector operator"))
        key = _str(expr.get("key"), f"{item_path}.key", errs)
        _names(key, f"{item_path}.key", is_qualified_name, errs)
        for value_path, value in values:
            _names(value, value_path, is_valid_label_value, errs)
    if len(errs) > before:
        return None
    try:
        return selector_from_spec(selector)
    except SelectorError as exc:
        errs.append(_invalid_rendered(path, _go_selector(selector), f"invalid label selector: {exc}"))
        return None


def _selector_is_empty(selector: Obj) -> bool:
    return not selector.get("matchLabels") and not selector.get("matchExpressions")


def _normalized_selector(selector: Any) -> Any:
    """A selector with empty parts dropped: upstream's semantic equality treats nil as empty."""
    if not isinstance(selector, dict):
        return selector
    return {k: v for k, v in selector.items() if v not in (None, {}, [])}


# ---- pods ----------------------------------------------------------------------------------

RESTART_POLICIES = ("Always", "OnFailure", "Never")
DNS_POLICIES = ("ClusterFirst", "ClusterFirstWithHostNet", "Default", "None")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
PROTOCOLS = ("SCTP", "TCP", "UDP")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
HOST_PATH_TYPES = ("", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File", "FileOrCreate", "Socket")
POD_PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")
CONDITION_STATUSES = ("True", "False", "Unknown")
_PROBE_HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")
_LIFECYCLE_HANDLERS = ("exec", "httpGet", "tcpSocket", "sleep")
_STANDARD_CONTAINER_RESOURCES = ("cpu", "memory", "ephemeral-storage")
_STANDARD_RESOURCES = (
    "cpu", "memory", "ephemeral-storage", "pods", "services", "replicationcontrollers",
    "resourcequotas", "secrets", "configmaps", "persistentvolumeclaims", "storage",
    "requests.cpu", "requests.memory", "requests.storage", "requests.ephemeral-storage",
    "limits.cpu", "limits.memory", "limits.ephemeral-storage", "services.nodeports",
    "services.loadbalancers",
)


def _pod_spec(spec: Obj, path: str, errs: Errors, *, template: bool) -> None:
    """ValidatePodSpec: containers, volumes and the pod-level fields, for pods and templates."""
    volumes = _volumes(spec.get("volumes"), f"{path}.volumes", errs)
    host_network = spec.get("hostNetwork") is True
    _bool(spec.get("hostNetwork"), f"{path}.hostNetwork", errs)
    names: set[str] = set()
    containers = spec.get("containers")
    if containers is None or containers == []:
        errs.append(field_required(f"{path}.containers"))
    for item_path, container in _maps(containers, f"{path}.containers", errs):
        _container(container, item_path, volumes, names, errs, init=False, host_network=host_network)
    for item_path, container in _maps(spec.get("initContainers"), f"{path}.initContainers", errs):
        _container(container, item_path, volumes, names, errs, init=True, host_network=host_network)
    if template:
        if spec.get("ephemeralContainers"):
            errs.append(
                field_forbidden(
                    f"{path}.ephemeralContainers", "ephemeral containers not allowed in pod template"
                )
            )
    else:
        for item_path, container in _maps(spec.get("ephemeralContainers"), f"{path}.ephemeralContainers", errs):
            name = _required_str(container, "name", f"{item_path}.name", errs)
            if name:
                _names(name, f"{item_path}.name", is_dns1123_label, errs)
                if name in names:
                    errs.append(field_duplicate(f"{item_path}.name", name))

    _enum(spec, "restartPolicy", f"{path}.restartPolicy", RESTART_POLICIES, errs)
    dns_policy = _enum(spec, "dnsPolicy", f"{path}.dnsPolicy", DNS_POLICIES, errs)
    dns_config = _map(spec.get("dnsConfig"), f"{path}.dnsConfig", errs)
    if dns_policy == "None" and dns_config is None:
        errs.append(field_required(f"{path}.dnsConfig", "must provide `dnsConfig` when `dnsPolicy` is None"))
    if dns_config is not None:
        nameservers = _strings(dns_config.get("nameservers"), f"{path}.dnsConfig.nameservers", errs)
        if len(nameservers) > 3:
            errs.append(
                field_invalid(
                    f"{path}.dnsConfig.nameservers",
                    [n for _, n in nameservers],
                    "must not have more than 3 nameservers",
                )
            )
        for item_path, server in nameservers:
            _ip(server, item_path, errs)
        if dns_policy == "None" and not nameservers:
            errs.append(
                field_required(
                    f"{path}.dnsConfig.nameservers",
                    "must provide at least one DNS nameserver when `dnsPolicy` is None",
                )
            )

    errs.extend(validate_labels(spec.get("nodeSelector"), f"{path}.nodeSelector"))
    for key in ("serviceAccountName", "nodeName"):
        value = _str(spec.get(key), f"{path}.{key}", errs)
        if value:
            _names(value, f"{path}.{key}", is_dns1123_subdomain, errs)
    for key in ("hostname", "subdomain"):
        value = _str(spec.get(key), f"{path}.{key}", errs)
        if value:
            _names(value, f"{path}.{key}", is_dns1123_label, errs)
    for key in ("schedulerName", "priorityClassName"):
        value = _str(spec.get(key), f"{path}.{key}", errs)
        if value:
            _names(value, f"{path}.{key}", is_dns1123_subdomain, errs)
    deadline = _int(spec.get("activeDeadlineSeconds"), f"{path}.activeDeadlineSeconds", errs)
    if deadline is not None and not 1 <= deadline <= MAX_INT32:
        errs.append(
            field_invalid(
                f"{path}.activeDeadlineSeconds", deadline, f"must be between 1 and {MAX_INT32}, inclusive"
            )
        )
    _int(spec.get("terminationGracePeriodSeconds"), f"{path}.terminationGracePeriodSeconds", errs)
    _int(spec.get("priority"), f"{path}.priority", errs)
    for key in ("hostPID", "hostIPC", "automountServiceAccountToken", "enableServiceLinks", "shareProcessNamespace"):
        _bool(spec.get(key), f"{path}.{key}", errs)
    _tolerations(spec.get("tolerations"), f"{path}.tolerations", errs)
    for item_path, secret in _maps(spec.get("imagePullSecrets"), f"{path}.imagePullSecrets", errs):
        _str(secret.get("name"), f"{item_path}.name", errs)
    _affinity(spec.get("affinity"), f"{path}.affinity", errs)
    _topology_spread(spec.get("topologySpreadConstraints"), f"{path}.topologySpreadConstraints", errs)
    _pod_security_context(spec.get("securityContext"), f"{path}.securityContext", errs)
    _unique_host_ports(spec, path, errs)


def _unique_host_ports(spec: Obj, path: str, errs: Errors) -> None:
    """accumulateUniqueHostPorts: no two containers may claim the same protocol/hostIP/hostPort."""
    seen: set[str] = set()
    for key in ("containers", "initContainers"):
        for item_path, container in _maps(spec.get(key), f"{path}.{key}", []):
            for port_path, port in _maps(container.get("ports"), f"{item_path}.ports", []):
                host_port = port.get("hostPort")
                if not _is_int(host_port) or host_port == 0:
                    continue
                protocol = port.get("protocol") if isinstance(port.get("protocol"), str) else ""
                host_ip = port.get("hostIP") if isinstance(port.get("hostIP"), str) else ""
                claim = f"{protocol}/{host_ip}/{host_port}"
                if claim in seen:
                    errs.append(field_duplicate(f"{port_path}.hostPort", claim))
                seen.add(claim)


def _topology_spread(value: Any, path: str, errs: Errors) -> None:
    seen: set[tuple[str, str]] = set()
    for item_path, constraint in _maps(value, path, errs):
        skew = _int(constraint.get("maxSkew"), f"{item_path}.maxSkew", errs)
        if skew is None or skew <= 0:
            errs.append(field_invalid(f"{item_path}.maxSkew", skew or 0, "must be greater than zero"))
        key = _required_str(constraint, "topologyKey", f"{item_path}.topologyKey", errs, "can not be empty")
        if key:
            _names(key, f"{item_path}.topologyKey", is_qualified_name, errs)
        action = _str(constraint.get("whenUnsatisfiable"), f"{item_path}.whenUnsatisfiable", errs)
        if action not in ("DoNotSchedule", "ScheduleAnyway"):
            errs.append(
                field_not_supported(f"{item_path}.whenUnsatisfiable", action, ["DoNotSchedule", "ScheduleAnyway"])
            )
        if (key, action) in seen:
            errs.append(field_duplicate(f"{item_path}.{{topologyKey, whenUnsatisfiable}}", f"{{{key}, {action}}}"))
        seen.add((key, action))
        min_domains = _int(constraint.get("minDomains"), f"{item_path}.minDomains", errs)
        if min_domains is not None:
            if min_domains <= 0:
                errs.append(field_invalid(f"{item_path}.minDomains", min_domains, "must be greater than zero"))
            if action != "DoNotSchedule":
                errs.append(
                    field_invalid(
                        f"{item_path}.minDomains",
                        min_domains,
                        f"can only use minDomains if whenUnsatisfiable=DoNotSchedule, not {action}",
                    )
                )
        selector = _map(constraint.get("labelSelector"), f"{item_path}.labelSelector", errs)
        if selector is not None:
            _label_selector(selector, f"{item_path}.labelSelector", errs)
        for policy in ("nodeAffinityPolicy", "nodeTaintsPolicy"):
            chosen = _str(constraint.get(policy), f"{item_path}.{policy}", errs)
            if chosen and chosen not in ("Honor", "Ignore"):
                errs.append(field_not_supported(f"{item_path}.{policy}", chosen, ["Honor", "Ignore"]))
        for key_path, label_key in _strings(constraint.get("matchLabelKeys"), f"{item_path}.matchLabelKeys", errs):
            _names(label_key, key_path, is_qualified_name, errs)


def _volumes(value: Any, path: str, errs: Errors) -> set[str]:
    """ValidateVolumes; the names of the valid volumes (mounts may only name those)."""
    valid: set[str] = set()
    seen: set[str] = set()
    for item_path, volume in _maps(value, path, errs):
        own: Errors = []
        _volume_source(volume, item_path, own)
        name_path = f"{item_path}.name"
        name = _required_str(volume, "name", name_path, own)
        if name:
            _names(name, name_path, is_dns1123_label, own)
        if name and name in seen:
            own.append(field_duplicate(name_path, name))
        seen.add(name)
        if own:
            errs.extend(own)
        else:
            valid.add(name)
    return valid


def _volume_source(volume: Obj, path: str, errs: Errors) -> None:
    present = [s for s in VOLUME_SOURCES if volume.get(s) is not None]
    if not present:
        errs.append(field_required(path, "must specify a volume type"))
        return
    for extra in present[1:]:
        errs.append(field_forbidden(f"{path}.{extra}", "may not specify more than 1 volume type"))
    source = present[0]
    src_path = f"{path}.{source}"
    src = _map(volume.get(source), src_path, errs)
    if src is None:
        return
    checker = _VOLUME_SOURCE_CHECKS.get(source)
    if checker is not None:
        checker(src, src_path, errs)


def _file_mode(parent: Obj, key: str, path: str, errs: Errors) -> None:
    mode = _int(parent.get(key), path, errs)
    if mode is not None and not 0 <= mode <= 0o777:
        errs.append(field_invalid(path, mode, FILE_MODE))


def _local_descending_path(value: str, path: str, errs: Errors) -> None:
    if value.startswith("/"):
        errs.append(field_invalid(path, value, "must be a relative path"))
    if ".." in value.split("/"):
        errs.append(field_invalid(path, value, "must not contain '..'"))


def _key_to_paths(value: Any, path: str, errs: Errors) -> None:
    for item_path, item in _maps(value, path, errs):
        _required_str(item, "key", f"{item_path}.key", errs)
        target = _required_str(item, "path", f"{item_path}.path", errs)
        _local_descending_path(target, f"{item_path}.path", errs)
        if target.startswith(".."):
            errs.append(field_invalid(f"{item_path}.path", target, "must not start with '..'"))
        _file_mode(item, "mode", f"{item_path}.mode", errs)


def _check_empty_dir(src: Obj, path: str, errs: Errors) -> None:
    _str(src.get("medium"), f"{path}.medium", errs)
    size = _quantity(src.get("sizeLimit"), f"{path}.sizeLimit", errs)
    if size is not None and size < 0:
        errs.append(field_forbidden(f"{path}.sizeLimit", "SizeLimit field must be a valid resource quantity"))


def _check_host_path(src: Obj, path: str, errs: Errors) -> None:
    target = _required_str(src, "path", f"{path}.path", errs)
    if ".." in target.split("/"):
        errs.append(field_invalid(f"{path}.path", target, "must not contain '..'"))
    kind = _str(src.get("type"), f"{path}.type", errs)
    if kind not in HOST_PATH_TYPES:
        errs.append(field_not_supported(f"{path}.type", kind, HOST_PATH_TYPES))


def _check_secret_volume(src: Obj, path: str, errs: Errors) -> None:
    _required_str(src, "secretName", f"{path}.secretName", errs)
    _file_mode(src, "defaultMode", f"{path}.defaultMode", errs)
    _key_to_paths(src.get("items"), f"{path}.items", errs)
    _bool(src.get("optional"), f"{path}.optional", errs)


def _check_config_map_volume(src: Obj, path: str, errs: Errors) -> None:
    _required_str(src, "name", f"{path}.name", errs)
    _file_mode(src, "defaultMode", f"{path}.defaultMode", errs)
    _key_to_paths(src.get("items"), f"{path}.items", errs)
    _bool(src.get("optional"), f"{path}.optional", errs)


def _check_pvc(src: Obj, path: str, errs: Errors) -> None:
    _required_str(src, "claimName", f"{path}.claimName", errs)
    _bool(src.get("readOnly"), f"{path}.readOnly", errs)


def _check_downward_api(src: Obj, path: str, errs: Errors) -> None:
    _file_mode(src, "defaultMode", f"{path}.defaultMode", errs)
    for item_path, item in _maps(src.get("items"), f"{path}.items", errs):
        target = _required_str(item, "path", f"{item_path}.path", errs)
        _local_descending_path(target, f"{item_path}.path", errs)
        if target.startswith(".."):
            errs.append(field_invalid(f"{item_path}.path", target, "must not start with '..'"))
        _file_mode(item, "mode", f"{item_path}.mode", errs)
        field_ref = _map(item.get("fieldRef"), f"{item_path}.fieldRef", errs)
        resource_ref = _map(item.get("resourceFieldRef"), f"{item_path}.resourceFieldRef", errs)
        if field_ref is not None and resource_ref is not None:
            errs.append(
                field_invalid(item_path, "resource", "fieldRef and resourceFieldRef can not be specified simultaneously")
            )
        elif field_ref is None and resource_ref is None:
            errs.append(field_required(item_path, "one of fieldRef and resourceFieldRef is required"))
        if field_ref is not None:
            _required_str(field_ref, "fieldPath", f"{item_path}.fieldRef.fieldPath", errs)


def _check_projected(src: Obj, path: str, errs: Errors) -> None:
    _file_mode(src, "defaultMode", f"{path}.defaultMode", errs)
    kinds = ("secret", "configMap", "downwardAPI", "serviceAccountToken", "clusterTrustBundle")
    for item_path, source in _maps(src.get("sources"), f"{path}.sources", errs):
        present = [k for k in kinds if source.get(k) is not None]
        if len(present) > 1:
            errs.append(field_forbidden(f"{item_path}.{present[1]}", "may not specify more than 1 volume type per source"))
        for kind in present[:1]:
            inner = _map(source.get(kind), f"{item_path}.{kind}", errs)
            if inner is None:
                continue
            if kind in ("secret", "configMap"):
                _str(inner.get("name"), f"{item_path}.{kind}.name", errs)
                _key_to_paths(inner.get("items"), f"{item_path}.{kind}.items", errs)
            elif kind == "downwardAPI":
                _check_downward_api(inner, f"{item_path}.{kind}", errs)
            elif kind == "serviceAccountToken":
                _required_str(inner, "path", f"{item_path}.{kind}.path", errs)
                seconds = _int(inner.get("expirationSeconds"), f"{item_path}.{kind}.expirationSeconds", errs)
                if seconds is not None and seconds < 600:
                    errs.append(
                        field_invalid(
                            f"{item_path}.{kind}.expirationSeconds",
                            seconds,
                            "may not specify a duration less than 10 minutes",
                        )
                    )


def _check_nfs(src: Obj, path: str, errs: Errors) -> None:
    _required_str(src, "server", f"{path}.server", errs)
    target = _required_str(src, "path", f"{path}.path", errs)
    if target and not target.startswith("/"):
        errs.append(field_invalid(f"{path}.path", target, "must be an absolute path"))


def _check_csi(src: Obj, path: str, errs: Errors) -> None:
    driver = _required_str(src, "driver", f"{path}.driver", errs)
    if driver:
        _names(driver.lower(), f"{path}.driver", is_dns1123_subdomain, errs)


def _check_image_volume(src: Obj, path: str, errs: Errors) -> None:
    _required_str(src, "reference", f"{path}.reference", errs)
    policy = _str(src.get("pullPolicy"), f"{path}.pullPolicy", errs)
    if policy and policy not in PULL_POLICIES:
        errs.append(field_not_supported(f"{path}.pullPolicy", policy, PULL_POLICIES))


_VOLUME_SOURCE_CHECKS: dict[str, Callable[[Obj, str, Errors], None]] = {
    "emptyDir": _check_empty_dir,
    "hostPath": _check_host_path,
    "secret": _check_secret_volume,
    "configMap": _check_config_map_volume,
    "persistentVolumeClaim": _check_pvc,
    "downwardAPI": _check_downward_api,
    "projected": _check_projected,
    "nfs": _check_nfs,
    "csi": _check_csi,
    "image": _check_image_volume,
}


def _container(
    container: Obj,
    path: str,
    volumes: set[str],
    names: set[str],
    errs: Errors,
    *,
    init: bool,
    host_network: bool,
) -> None:
    name_path = f"{path}.name"
    name = _required_str(container, "name", name_path, errs)
    if name:
        _names(name, name_path, is_dns1123_label, errs)
        if name in names:
            errs.append(field_duplicate(name_path, name))
        names.add(name)
    _required_str(container, "image", f"{path}.image", errs)
    _enum(container, "imagePullPolicy", f"{path}.imagePullPolicy", PULL_POLICIES, errs)
    policy_raw = container.get("terminationMessagePolicy")
    policy = _str(policy_raw, f"{path}.terminationMessagePolicy", errs)
    policy_msg = "must be 'File' or 'FallbackToLogsOnError'"
    if policy_raw is None or policy_raw == "":
        errs.append(field_required(f"{path}.terminationMessagePolicy", policy_msg))
    elif policy and policy not in ("File", "FallbackToLogsOnError"):
        errs.append(field_invalid(f"{path}.terminationMessagePolicy", policy, policy_msg))
    _str(container.get("terminationMessagePath"), f"{path}.terminationMessagePath", errs)
    _str(container.get("workingDir"), f"{path}.workingDir", errs)
    _strings(container.get("command"), f"{path}.command", errs)
    _strings(container.get("args"), f"{path}.args", errs)
    for key in ("stdin", "stdinOnce", "tty"):
        _bool(container.get(key), f"{path}.{key}", errs)

    restart = container.get("restartPolicy")
    if restart is not None:
        if not init:
            errs.append(field_forbidden(f"{path}.restartPolicy", "may not be set for non-init containers"))
        elif restart != "Always":
            errs.append(field_not_supported(f"{path}.restartPolicy", restart, ["Always"]))
    sidecar = init and restart == "Always"

    _container_ports(container.get("ports"), f"{path}.ports", errs, host_network=host_network)
    _env(container.get("env"), f"{path}.env", errs)
    _env_from(container.get("envFrom"), f"{path}.envFrom", errs)
    _resources(container.get("resources"), f"{path}.resources", errs)
    _volume_mounts(container.get("volumeMounts"), f"{path}.volumeMounts", volumes, errs)
    for probe_name in ("livenessProbe", "readinessProbe", "startupProbe"):
        probe_path = f"{path}.{probe_name}"
        probe = _map(container.get(probe_name), probe_path, errs)
        if probe is None:
            continue
        if init and not sidecar:
            errs.append(
                field_forbidden(probe_path, "may not be set for init containers without restartPolicy=Always")
            )
            continue
        if init and probe_name == "readinessProbe":
            errs.append(field_forbidden(probe_path, "may not be set for init containers"))
            continue
        _probe(probe, probe_path, errs)
        if probe_name != "readinessProbe":
            threshold = _int(probe.get("successThreshold"), f"{probe_path}.successThreshold", errs)
            if threshold is not None and threshold != 1:
                errs.append(field_invalid(f"{probe_path}.successThreshold", threshold, "must be 1"))
    lifecycle = _map(container.get("lifecycle"), f"{path}.lifecycle", errs)
    if lifecycle is not None:
        if init and not sidecar:
            errs.append(field_forbidden(f"{path}.lifecycle", "may not be set for init containers without restartPolicy=Always"))
        else:
            for hook in ("postStart", "preStop"):
                handler = _map(lifecycle.get(hook), f"{path}.lifecycle.{hook}", errs)
                if handler is not None:
                    _handler(handler, f"{path}.lifecycle.{hook}", _LIFECYCLE_HANDLERS, errs)
    _container_security_context(container.get("securityContext"), f"{path}.securityContext", errs)


def _container_ports(value: Any, path: str, errs: Errors, *, host_network: bool) -> None:
    names: set[str] = set()
    for item_path, port in _maps(value, path, errs):
        name = _str(port.get("name"), f"{item_path}.name", errs)
        if name:
            messages = is_valid_port_name(name)
            if messages:
                errs.extend(field_invalid(f"{item_path}.name", name, m) for m in messages)
            elif name in names:
                errs.append(field_duplicate(f"{item_path}.name", name))
            else:
                names.add(name)
        container_port = _int(port.get("containerPort"), f"{item_path}.containerPort", errs)
        if port.get("containerPort") is None or container_port == 0:
            errs.append(field_required(f"{item_path}.containerPort"))
        elif container_port is not None:
            errs.extend(
                field_invalid(f"{item_path}.containerPort", container_port, m)
                for m in is_valid_port_num(container_port)
            )
        host_port = _int(port.get("hostPort"), f"{item_path}.hostPort", errs)
        if host_port:
            errs.extend(field_invalid(f"{item_path}.hostPort", host_port, m) for m in is_valid_port_num(host_port))
            if host_network and container_port and host_port != container_port:
                errs.append(
                    field_invalid(
                        f"{item_path}.containerPort", container_port, "must match `hostPort` when `hostNetwork` is true"
                    )
                )
        _enum(port, "protocol", f"{item_path}.protocol", PROTOCOLS, errs)
        host_ip = _str(port.get("hostIP"), f"{item_path}.hostIP", errs)
        if host_ip:
            _ip(host_ip, f"{item_path}.hostIP", errs)


def _env(value: Any, path: str, errs: Errors) -> None:
    for item_path, var in _maps(value, path, errs):
        name = _required_str(var, "name", f"{item_path}.name", errs)
        if name:
            _names(name, f"{item_path}.name", is_relaxed_env_var_name, errs)
        text = _str(var.get("value"), f"{item_path}.value", errs)
        source = _map(var.get("valueFrom"), f"{item_path}.valueFrom", errs)
        if source is None:
            continue
        source_path = f"{item_path}.valueFrom"
        kinds = ("fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef")
        present = [k for k in kinds if source.get(k) is not None]
        if not present:
            errs.append(
                field_invalid(
                    source_path,
                    "",
                    "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
                )
            )
        elif len(present) > 1:
            errs.append(field_invalid(source_path, "", "may not have more than one field specified at a time"))
        if text:
            errs.append(field_invalid(source_path, "", "may not be specified when `value` is not empty"))
        for kind in present[:1]:
            ref_path = f"{source_path}.{kind}"
            ref = _map(source.get(kind), ref_path, errs)
            if ref is None:
                continue
            if kind == "fieldRef":
                _required_str(ref, "fieldPath", f"{ref_path}.fieldPath", errs)
            elif kind == "resourceFieldRef":
                _required_str(ref, "resource", f"{ref_path}.resource", errs)
                _quantity(ref.get("divisor"), f"{ref_path}.divisor", errs)
            else:
                _required_str(ref, "name", f"{ref_path}.name", errs)
                key = _required_str(ref, "key", f"{ref_path}.key", errs)
                if key:
                    _names(key, f"{ref_path}.key", is_config_map_key, errs)


def _env_from(value: Any, path: str, errs: Errors) -> None:
    for item_path, source in _maps(value, path, errs):
        prefix = _str(source.get("prefix"), f"{item_path}.prefix", errs)
        if prefix:
            _names(prefix, f"{item_path}.prefix", is_relaxed_env_var_name, errs)
        present = [k for k in ("configMapRef", "secretRef") if source.get(k) is not None]
        if not present:
            errs.append(field_invalid(item_path, "", "must specify one of: `configMapRef` or `secretRef`"))
        elif len(present) > 1:
            errs.append(field_invalid(item_path, "", "may not have more than one field specified at a time"))
        for kind in present[:1]:
            ref = _map(source.get(kind), f"{item_path}.{kind}", errs)
            if ref is not None:
                name = _required_str(ref, "name", f"{item_path}.{kind}.name", errs)
                if name:
                    _names(name, f"{item_path}.{kind}.name", is_dns1123_subdomain, errs)


def _resource_name(name: str, path: str, errs: Errors) -> None:
    errs.extend(field_invalid(path, name, m) for m in is_qualified_name(name))
    if "/" not in name:
        if name not in _STANDARD_RESOURCES and not name.startswith("hugepages-"):
            errs.append(field_invalid(path, name, "must be a standard resource type or fully qualified"))
        if name not in _STANDARD_CONTAINER_RESOURCES and not name.startswith("hugepages-"):
            errs.append(field_invalid(path, name, "must be a standard resource for containers"))


def _resource_list(value: Any, path: str, errs: Errors) -> dict[str, Decimal]:
    parsed: dict[str, Decimal] = {}
    for name, raw in (_map(value, path, errs) or {}).items():
        key_path = f"{path}[{name}]"
        _resource_name(name, key_path, errs)
        amount = _quantity(raw, key_path, errs)
        if amount is None:
            if raw is None:
                errs.append(field_required(key_path))
            continue
        if amount < 0:
            errs.append(field_invalid(key_path, str(raw), NONNEGATIVE))
            continue
        integer_only = "/" in name and not name.startswith("kubernetes.io/")
        if integer_only and amount != amount.to_integral_value():
            errs.append(field_invalid(key_path, str(raw), "must be an integer"))
        parsed[name] = amount
    return parsed


def _resources(value: Any, path: str, errs: Errors) -> None:
    resources = _map(value, path, errs)
    if resources is None:
        return
    limits = _resource_list(resources.get("limits"), f"{path}.limits", errs)
    requests = _resource_list(resources.get("requests"), f"{path}.requests", errs)
    raw_limits = resources.get("limits") if isinstance(resources.get("limits"), dict) else {}
    raw_requests = resources.get("requests") if isinstance(resources.get("requests"), dict) else {}
    for name, amount in requests.items():
        if name not in limits:
            if name.startswith("hugepages-"):
                errs.append(field_forbidden(f"{path}.limits", "HugePages require cpu or memory"))
            continue
        limit_text = str(raw_limits[name])
        if name.startswith("hugepages-") and amount != limits[name]:
            errs.append(
                field_invalid(f"{path}.requests[{name}]", str(raw_requests[name]), f"must be equal to {name} limit of {limit_text}")
            )
        elif amount > limits[name]:
            errs.append(
                field_invalid(
                    f"{path}.requests[{name}]",
                    str(raw_requests[name]),
                    f"must be less than or equal to {name} limit of {limit_text}",
                )
            )
    for item_path, claim in _maps(resources.get("claims"), f"{path}.claims", errs):
        _required_str(claim, "name", f"{item_path}.name", errs)


def _volume_mounts(value: Any, path: str, volumes: set[str], errs: Errors) -> None:
    mount_points: set[str] = set()
    for item_path, mount in _maps(value, path, errs):
        name = _required_str(mount, "name", f"{item_path}.name", errs)
        if name not in volumes:
            errs.append(_not_found(f"{item_path}.name", name))
        mount_path = _required_str(mount, "mountPath", f"{item_path}.mountPath", errs)
        if mount_path and mount_path in mount_points:
            errs.append(field_invalid(f"{item_path}.mountPath", mount_path, "must be unique"))
        mount_points.add(mount_path)
        _bool(mount.get("readOnly"), f"{item_path}.readOnly", errs)
        # Upstream reports these on the list's path, not the item's.
        sub_path = _str(mount.get("subPath"), f"{item_path}.subPath", errs)
        if sub_path:
            _local_descending_path(sub_path, f"{path}.subPath", errs)
        sub_path_expr = _str(mount.get("subPathExpr"), f"{item_path}.subPathExpr", errs)
        if sub_path_expr:
            if sub_path:
                errs.append(
                    field_invalid(f"{item_path}.subPathExpr", sub_path_expr, "subPathExpr and subPath are mutually exclusive")
                )
            _local_descending_path(sub_path_expr, f"{path}.subPathExpr", errs)
        propagation = mount.get("mountPropagation")
        if propagation is not None:
            supported = ("Bidirectional", "HostToContainer", "None")
            if propagation not in supported:
                errs.append(field_not_supported(f"{item_path}.mountPropagation", propagation, supported))


def _handler(handler: Obj, path: str, kinds: tuple[str, ...], errs: Errors) -> None:
    """A probe or lifecycle handler: exactly one of `kinds`, each well-formed."""
    present = [k for k in kinds if handler.get(k) is not None]
    if not present:
        errs.append(field_required(path, "must specify a handler type"))
        return
    for extra in present[1:]:
        errs.append(field_forbidden(f"{path}.{extra}", "may not specify more than 1 handler type"))
    kind = present[0]
    inner_path = f"{path}.{kind}"
    inner = _map(handler.get(kind), inner_path, errs)
    if inner is None:
        return
    if kind == "exec":
        command = inner.get("command")
        _strings(command, f"{inner_path}.command", errs)
        if not command:
            errs.append(field_required(f"{inner_path}.command"))
    elif kind == "httpGet":
        _required_str(inner, "path", f"{inner_path}.path", errs)
        _port_num_or_name(inner.get("port"), f"{inner_path}.port", errs)
        scheme = _str(inner.get("scheme"), f"{inner_path}.scheme", errs)
        if scheme not in ("HTTP", "HTTPS"):
            errs.append(field_not_supported(f"{inner_path}.scheme", scheme, ["HTTP", "HTTPS"]))
        for item_path, header in _maps(inner.get("httpHeaders"), f"{inner_path}.httpHeaders", errs):
            header_name = _required_str(header, "name", f"{item_path}.name", errs)
            if header_name and not re.fullmatch(r"[-A-Za-z0-9]+", header_name, re.ASCII):
                errs.append(
                    field_invalid(
                        f"{item_path}.name",
                        header_name,
                        "a valid HTTP header must consist of alphanumeric characters or '-' "
                        "(e.g. 'X-Header-Name', regex used for validation is '[-A-Za-z0-9]+')",
                    )
                )
            _str(header.get("value"), f"{item_path}.value", errs)
    elif kind == "tcpSocket":
        _port_num_or_name(inner.get("port"), f"{inner_path}.port", errs)
    elif kind == "grpc":
        port = _int(inner.get("port"), f"{inner_path}.port", errs)
        if port is None and inner.get("port") is None:
            errs.append(field_required(f"{inner_path}.port"))
        elif port is not None:
            errs.extend(field_invalid(f"{inner_path}.port", port, m) for m in is_valid_port_num(port))
        _str(inner.get("service"), f"{inner_path}.service", errs)
    elif kind == "sleep":
        seconds = _int(inner.get("seconds"), f"{inner_path}.seconds", errs)
        if seconds is not None and seconds < 0:
            errs.append(field_invalid(f"{inner_path}.seconds", seconds, NONNEGATIVE))


def _probe(probe: Obj, path: str, errs: Errors) -> None:
    _handler(probe, path, _PROBE_HANDLERS, errs)
    for key in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold"):
        _nonnegative(probe, key, f"{path}.{key}", errs)
    grace = _int(probe.get("terminationGracePeriodSeconds"), f"{path}.terminationGracePeriodSeconds", errs)
    if grace is not None and grace <= 0:
        errs.append(field_invalid(f"{path}.terminationGracePeriodSeconds", grace, POSITIVE))


def _tolerations(value: Any, path: str, errs: Errors) -> None:
    for item_path, toleration in _maps(value, path, errs):
        key = _str(toleration.get("key"), f"{item_path}.key", errs)
        if key:
            _names(key, f"{item_path}.key", is_qualified_name, errs)
        operator = _str(toleration.get("operator"), f"{item_path}.operator", errs)
        value_text = _str(toleration.get("value"), f"{item_path}.value", errs)
        if not key and operator != "Exists":
            errs.append(
                field_invalid(
                    f"{item_path}.operator",
                    operator,
                    'operator must be Exists when `key` is empty, which means "match all values and all keys"',
                )
            )
        seconds = _int(toleration.get("tolerationSeconds"), f"{item_path}.tolerationSeconds", errs)
        effect = _str(toleration.get("effect"), f"{item_path}.effect", errs)
        if seconds is not None and effect != "NoExecute":
            errs.append(
                field_invalid(f"{item_path}.effect", effect, "effect must be 'NoExecute' when `tolerationSeconds` is set")
            )
        if operator in ("", "Equal"):
            _names(value_text, f"{item_path}.value", is_valid_label_value, errs)
        elif operator == "Exists":
            if value_text:
                errs.append(
                    field_invalid(f"{item_path}.operator", value_text, "value must be empty when `operator` is 'Exists'")
                )
        else:
            errs.append(field_not_supported(f"{item_path}.operator", operator, ["Equal", "Exists"]))
        if effect and effect not in TAINT_EFFECTS:
            errs.append(field_not_supported(f"{item_path}.effect", effect, TAINT_EFFECTS))


def _node_selector_requirements(value: Any, path: str, errs: Errors, *, fields: bool) -> None:
    operators = ("In", "NotIn") if fields else ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")
    for item_path, req in _maps(value, path, errs):
        key = _str(req.get("key"), f"{item_path}.key", errs)
        operator = _str(req.get("operator"), f"{item_path}.operator", errs)
        values = _strings(req.get("values"), f"{item_path}.values", errs)
        if operator in ("In", "NotIn"):
            if not values:
                errs.append(
                    field_required(f"{item_path}.values", "must be specified when `operator` is 'In' or 'NotIn'")
                )
            elif fields and len(values) != 1:
                errs.append(field_required(f"{item_path}.values", "must be only one value when `operator` is 'In' or 'NotIn' for node field selector"))
        elif operator in operators and operator in ("Exists", "DoesNotExist"):
            if values:
                errs.append(
                    field_forbidden(
                        f"{item_path}.values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
                    )
                )
        elif operator in operators and operator in ("Gt", "Lt"):
            if len(values) != 1:
                errs.append(
                    field_required(
                        f"{item_path}.values", "must be specified single value when `operator` is 'Lt' or 'Gt'"
                    )
                )
        else:
            errs.append(field_invalid(f"{item_path}.operator", operator, "not a valid selector operator"))
        if fields:
            if key != "metadata.name":
                errs.append(field_invalid(f"{item_path}.key", key, "not a valid field selector key"))
        else:
            _names(key, f"{item_path}.key", is_qualified_name, errs)


def _node_selector_term(term: Obj, path: str, errs: Errors) -> None:
    _node_selector_requirements(term.get("matchExpressions"), f"{path}.matchExpressions", errs, fields=False)
    _node_selector_requirements(term.get("matchFields"), f"{path}.matchFields", errs, fields=True)


def _affinity(value: Any, path: str, errs: Errors) -> None:
    affinity = _map(value, path, errs)
    if affinity is None:
        return
    node = _map(affinity.get("nodeAffinity"), f"{path}.nodeAffinity", errs)
    if node is not None:
        req_path = f"{path}.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
        required = _map(node.get("requiredDuringSchedulingIgnoredDuringExecution"), req_path, errs)
        if required is not None:
            terms = required.get("nodeSelectorTerms")
            if not terms:
                errs.append(field_required(f"{req_path}.nodeSelectorTerms", "must have at least one node selector term"))
            for item_path, term in _maps(terms, f"{req_path}.nodeSelectorTerms", errs):
                _node_selector_term(term, item_path, errs)
        pref_path = f"{path}.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution"
        for item_path, pref in _maps(node.get("preferredDuringSchedulingIgnoredDuringExecution"), pref_path, errs):
            weight = _int(pref.get("weight"), f"{item_path}.weight", errs)
            if weight is not None and not 1 <= weight <= 100:
                errs.append(field_invalid(f"{item_path}.weight", weight, "must be in the range 1-100"))
            term = _map(pref.get("preference"), f"{item_path}.preference", errs)
            if term is not None:
                _node_selector_term(term, f"{item_path}.preference", errs)
    for kind in ("podAffinity", "podAntiAffinity"):
        pod = _map(affinity.get(kind), f"{path}.{kind}", errs)
        if pod is None:
            continue
        req_path = f"{path}.{kind}.requiredDuringSchedulingIgnoredDuringExecution"
        for item_path, term in _maps(pod.get("requiredDuringSchedulingIgnoredDuringExecution"), req_path, errs):
            _pod_affinity_term(term, item_path, errs)
        pref_path = f"{path}.{kind}.preferredDuringSchedulingIgnoredDuringExecution"
        for item_path, pref in _maps(pod.get("preferredDuringSchedulingIgnoredDuringExecution"), pref_path, errs):
            weight = _int(pref.get("weight"), f"{item_path}.weight", errs)
            if weight is not None and not 1 <= weight <= 100:
                errs.append(field_invalid(f"{item_path}.weight", weight, "must be in the range 1-100"))
            term = _map(pref.get("podAffinityTerm"), f"{item_path}.podAffinityTerm", errs)
            if term is not None:
                _pod_affinity_term(term, f"{item_path}.podAffinityTerm", errs)


def _pod_affinity_term(term: Obj, path: str, errs: Errors) -> None:
    selector = _map(term.get("labelSelector"), f"{path}.labelSelector", errs)
    if selector is not None:
        _label_selector(selector, f"{path}.labelSelector", errs)
    for item_path, namespace in _strings(term.get("namespaces"), f"{path}.namespaces", errs):
        _names(namespace, item_path, is_dns1123_label, errs)
    topology_key = _required_str(
        term, "topologyKey", f"{path}.topologyKey", errs, "can not be empty"
    )
    if topology_key:
        _names(topology_key, f"{path}.topologyKey", is_qualified_name, errs)


def _pod_security_context(value: Any, path: str, errs: Errors) -> None:
    context = _map(value, path, errs)
    if context is None:
        return
    for key in ("runAsUser", "runAsGroup", "fsGroup"):
        _nonnegative(context, key, f"{path}.{key}", errs, int32=False)
    _bool(context.get("runAsNonRoot"), f"{path}.runAsNonRoot", errs)
    for item_path, group in enumerate(_list(context.get("supplementalGroups"), f"{path}.supplementalGroups", errs) or []):
        checked = _int(group, f"{path}.supplementalGroups[{item_path}]", errs)
        if checked is not None and checked < 0:
            errs.append(field_invalid(f"{path}.supplementalGroups[{item_path}]", checked, NONNEGATIVE))
    for item_path, sysctl in _maps(context.get("sysctls"), f"{path}.sysctls", errs):
        _required_str(sysctl, "name", f"{item_path}.name", errs)
        _str(sysctl.get("value"), f"{item_path}.value", errs)


def _container_security_context(value: Any, path: str, errs: Errors) -> None:
    context = _map(value, path, errs)
    if context is None:
        return
    for key in ("runAsUser", "runAsGroup"):
        _nonnegative(context, key, f"{path}.{key}", errs, int32=False)
    for key in ("privileged", "runAsNonRoot", "readOnlyRootFilesystem", "allowPrivilegeEscalation"):
        _bool(context.get(key), f"{path}.{key}", errs)
    if context.get("privileged") is True and context.get("allowPrivilegeEscalation") is False:
        errs.append(
            field_invalid(path, "", "cannot set `allowPrivilegeEscalation` to false and `privileged` to true")
        )
    capabilities = _map(context.get("capabilities"), f"{path}.capabilities", errs)
    if capabilities is not None:
        for key in ("add", "drop"):
            _strings(capabilities.get(key), f"{path}.capabilities.{key}", errs)


def _pod_template(template: Any, path: str, errs: Errors) -> tuple[Obj, Obj]:
    """ValidatePodTemplateSpec; (template metadata, template spec), {} where absent."""
    found = _map(template, path, errs)
    if found is None:
        if template is None:
            errs.append(field_required(path))
        return {}, {}
    meta = _map(found.get("metadata"), f"{path}.metadata", errs) or {}
    # Upstream's quirk: template labels and annotations are reported without ".metadata".
    errs.extend(validate_labels(meta.get("labels"), f"{path}.labels"))
    errs.extend(validate_annotations(meta.get("annotations"), f"{path}.annotations"))
    spec = _map(found.get("spec"), f"{path}.spec", errs)
    if spec is None:
        spec = {}
        if found.get("spec") is None:
            errs.append(field_required(f"{path}.spec.containers"))
            return meta, spec
    _pod_spec(spec, f"{path}.spec", errs, template=True)
    return meta, spec


def _validate_pod(pod: Obj, errs: Errors, creating: bool) -> None:
    spec = _map(pod.get("spec"), "spec", errs)
    if spec is None:
        if pod.get("spec") is None:
            errs.append(field_required("spec.containers"))
        return
    _pod_spec(spec, "spec", errs, template=False)
    for key in ("containers", "initContainers"):
        for item_path, container in _maps(spec.get(key), f"spec.{key}", []):
            image = container.get("image")
            if isinstance(image, str) and image != image.strip():
                errs.append(field_invalid(f"{item_path}.image", image, "must not have leading or trailing whitespace"))
    if creating and spec.get("ephemeralContainers"):
        errs.append(field_forbidden("spec.ephemeralContainers", "cannot be set on create"))
    status = pod.get("status")
    if status is not None:
        _map(status, "status", errs)


# ---- workloads -----------------------------------------------------------------------------


def _workload_selector(spec: Obj, errs: Errors, *, kind: str, required: bool = True) -> LabelSelector | None:
    raw = spec.get("selector")
    selector = _map(raw, "spec.selector", errs)
    if selector is None:
        if raw is None and required:
            errs.append(field_required("spec.selector"))
        return None
    parsed = _label_selector(selector, "spec.selector", errs)
    if _selector_is_empty(selector):
        errs.append(_invalid_rendered("spec.selector", _go_selector(selector), f"empty selector is invalid for {kind}"))
        return None
    return parsed


def _template_matches(selector: LabelSelector | None, meta: Obj, errs: Errors) -> None:
    labels = meta.get("labels")
    if selector is None or selector.empty():
        return
    if labels is not None and not isinstance(labels, dict):
        return
    plain = {k: v for k, v in (labels or {}).items() if isinstance(v, str)}
    if not selector.matches(plain):
        errs.append(
            _invalid_rendered(
                "spec.template.metadata.labels",
                _go_string_map(labels),
                "`selector` does not match template `labels`",
            )
        )


def _replica_set_template(spec: Obj, selector: LabelSelector | None, errs: Errors, *, kind: str) -> None:
    meta, pod_spec = _pod_template(spec.get("template"), "spec.template", errs)
    _template_matches(selector, meta, errs)
    policy = pod_spec.get("restartPolicy")
    if isinstance(policy, str) and policy and policy != "Always":
        errs.append(field_not_supported("spec.template.spec.restartPolicy", policy, ["Always"]))
    deadline = pod_spec.get("activeDeadlineSeconds")
    if deadline is not None:
        path = "spec.template.spec.activeDeadlineSeconds"
        if kind == "DaemonSet":
            errs.append(field_invalid(path, deadline, "activeDeadlineSeconds must be nil for daemons"))
        else:
            errs.append(field_forbidden(path, "activeDeadlineSeconds in ReplicaSet is not Supported"))


def _int_or_percent(value: Any, path: str, errs: Errors) -> int | None:
    """ValidatePositiveIntOrPercent; the value as an int (a percentage's number), or None."""
    if value is None:
        return None
    if _is_int(value):
        if value < 0:
            errs.append(_invalid_rendered(path, str(value), NONNEGATIVE))
        return value
    if isinstance(value, str):
        if not _PERCENT_RE.fullmatch(value):
            errs.append(
                _invalid_rendered(
                    path,
                    _go_intstr(value),
                    _regex_error(
                        "a valid percent string must be a numeric string followed by an ending '%'",
                        _PERCENT_FMT,
                        "1%",
                        "93%",
                    ),
                )
            )
            return int(value) if value.isdigit() else None
        return int(value[:-1])
    errs.append(_invalid_rendered(path, go_value(value), "must be an integer or percentage (e.g '5%')"))
    return None


def _not_more_than_100_percent(value: Any, path: str, errs: Errors) -> None:
    if isinstance(value, str) and _PERCENT_RE.fullmatch(value) and int(value[:-1]) > 100:
        errs.append(_invalid_rendered(path, _go_intstr(value), "must not be greater than 100%"))


def _validate_deployment(obj: Obj, errs: Errors, creating: bool) -> None:
    spec = _map(obj.get("spec"), "spec", errs)
    if spec is None:
        if obj.get("spec") is None:
            errs.append(field_required("spec.selector"))
        return
    _nonnegative(spec, "replicas", "spec.replicas", errs)
    selector = _workload_selector(spec, errs, kind="deployment")
    _replica_set_template(spec, selector, errs, kind="ReplicaSet")
    strategy = _map(spec.get("strategy"), "spec.strategy", errs)
    if strategy is not None:
        kind = _str(strategy.get("type"), "spec.strategy.type", errs)
        rolling = strategy.get("rollingUpdate")
        if kind == "Recreate":
            if rolling is not None:
                errs.append(
                    field_forbidden("spec.strategy.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'")
                )
        elif kind == "RollingUpdate":
            rolling_map = _map(rolling, "spec.strategy.rollingUpdate", errs)
            if rolling_map is None and rolling is None:
                errs.append(field_required("spec.strategy.rollingUpdate", "this should be defaulted and never be nil"))
            elif rolling_map is not None:
                path = "spec.strategy.rollingUpdate"
                unavailable_raw = rolling_map.get("maxUnavailable")
                unavailable = _int_or_percent(unavailable_raw, f"{path}.maxUnavailable", errs)
                surge = _int_or_percent(rolling_map.get("maxSurge"), f"{path}.maxSurge", errs)
                if (unavailable or 0) == 0 and (surge or 0) == 0:
                    errs.append(
                        _invalid_rendered(
                            f"{path}.maxUnavailable",
                            _go_intstr(unavailable_raw if unavailable_raw is not None else 0),
                            "may not be 0 when `maxSurge` is 0",
                        )
                    )
                _not_more_than_100_percent(unavailable_raw, f"{path}.maxUnavailable", errs)
        else:
            errs.append(field_not_supported("spec.strategy.type", kind, ["Recreate", "RollingUpdate"]))
    min_ready = _nonnegative(spec, "minReadySeconds", "spec.minReadySeconds", errs)
    _nonnegative(spec, "revisionHistoryLimit", "spec.revisionHistoryLimit", errs)
    deadline = _nonnegative(spec, "progressDeadlineSeconds", "spec.progressDeadlineSeconds", errs)
    if deadline is not None and deadline <= (min_ready or 0):
        errs.append(field_invalid("spec.progressDeadlineSeconds", deadline, "must be greater than minReadySeconds"))
    _bool(spec.get("paused"), "spec.paused", errs)


def _validate_replica_set(obj: Obj, errs: Errors, creating: bool) -> None:
    spec = _map(obj.get("spec"), "spec", errs)
    if spec is None:
        if obj.get("spec") is None:
            errs.append(field_required("spec.selector"))
        return
    _nonnegative(spec, "replicas", "spec.replicas", errs)
    _nonnegative(spec, "minReadySeconds", "spec.minReadySeconds", errs)
    selector = _workload_selector(spec, errs, kind="deployment")
    _replica_set_template(spec, selector, errs, kind="ReplicaSet")


def _validate_daemon_set(obj: Obj, errs: Errors, creating: bool) -> None:
    spec = _map(obj.get("spec"), "spec", errs)
    if spec is None:
        if obj.get("spec") is None:
            errs.append(field_required("spec.selector"))
        return
    selector = _workload_selector(spec, errs, kind="daemonset")
    _replica_set_template(spec, selector, errs, kind="DaemonSet")
    _nonnegative(spec, "minReadySeconds", "spec.minReadySeconds", errs)
    _nonnegative(spec, "revisionHistoryLimit", "spec.revisionHistoryLimit", errs)
    strategy = _map(spec.get("updateStrategy"), "spec.updateStrategy", errs)
    if strategy is None:
        return
    kind = _str(strategy.get("type"), "spec.updateStrategy.type", errs)
    if kind == "RollingUpdate":
        path = "spec.updateStrategy.rollingUpdate"
        rolling = _map(strategy.get("rollingUpdate"), path, errs)
        if rolling is None:
            if strategy.get("rollingUpdate") is None:
                errs.append(field_required(path))
            return
        unavailable_raw, surge_raw = rolling.get("maxUnavailable"), rolling.get("maxSurge")
        unavailable = _int_or_percent(unavailable_raw, f"{path}.maxUnavailable", errs)
        surge = _int_or_percent(surge_raw, f"{path}.maxSurge", errs)
        _not_more_than_100_percent(unavailable_raw, f"{path}.maxUnavailable", errs)
        _not_more_than_100_percent(surge_raw, f"{path}.maxSurge", errs)
        if unavailable and surge:
            errs.append(
                _invalid_rendered(f"{path}.maxSurge", _go_intstr(surge_raw), "may not be set when maxUnavailable is non-zero")
            )
        elif not unavailable and not surge:
            errs.append(field_required(f"{path}.maxUnavailable", "cannot be 0 when maxSurge is 0"))
    elif kind != "OnDelete":
        errs.append(field_not_supported("spec.updateStrategy.type", kind, ["OnDelete", "RollingUpdate"]))


def _validate_job(obj: Obj, errs: Errors, creating: bool) -> None:
    spec = _map(obj.get("spec"), "spec", errs)
    if spec is None:
        if obj.get("spec") is None:
            errs.append(field_required("spec.template"))
        return
    for key in ("parallelism", "completions", "backoffLimit", "ttlSecondsAfterFinished"):
        _nonnegative(spec, key, f"spec.{key}", errs)
    _nonnegative(spec, "activeDeadlineSeconds", "spec.activeDeadlineSeconds", errs, int32=False)
    for key in ("manualSelector", "suspend"):
        _bool(spec.get(key), f"spec.{key}", errs)
    mode = _str(spec.get("completionMode"), "spec.completionMode", errs)
    if mode and mode not in ("NonIndexed", "Indexed"):
        errs.append(field_not_supported("spec.completionMode", mode, ["NonIndexed", "Indexed"]))
    if mode == "Indexed" and spec.get("completions") is None:
        errs.append(field_required("spec.completions", "when completion mode is Indexed"))
    replacement = _str(spec.get("podReplacementPolicy"), "spec.podReplacementPolicy", errs)
    if replacement and replacement not in ("TerminatingOrFailed", "Failed"):
        errs.append(field_not_supported("spec.podReplacementPolicy", replacement, ["TerminatingOrFailed", "Failed"]))
    # Without manualSelector the selector is generated from the Job's uid, which a Job
    # being created may not have yet when it reaches us.
    manual = spec.get("manualSelector") is True
    raw = spec.get("selector")
    selector = None
    selector_map = _map(raw, "spec.selector", errs)
    if selector_map is None:
        if raw is None and manual:
            errs.append(field_required("spec.selector"))
    else:
        selector = _label_selector(selector_map, "spec.selector", errs)
    meta, pod_spec = _pod_template(spec.get("template"), "spec.template", errs)
    _template_matches(selector, meta, errs)
    policy = pod_spec.get("restartPolicy")
    if isinstance(policy, str) and policy not in ("OnFailure", "Never"):
        errs.append(field_not_supported("spec.template.spec.restartPolicy", policy, ["OnFailure", "Never"]))
    elif spec.get("podFailurePolicy") is not None and policy != "Never":
        errs.append(
            field_invalid(
                "spec.template.spec.restartPolicy", policy, 'only "Never" is supported when podFailurePolicy is specified'
            )
        )
    _map(spec.get("podFailurePolicy"), "spec.podFailurePolicy", errs)


def _validate_controller_revision(obj: Obj, errs: Errors, creating: bool) -> None:
    if obj.get("data") is None:
        errs.append(field_required("data", "data is mandatory"))
    _nonnegative(obj, "revision", "revision", errs)


# ---- core ----------------------------------------------------------------------------------

SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
SESSION_AFFINITIES = ("ClientIP", "None")
TRAFFIC_POLICIES = ("Cluster", "Local")
IP_FAMILY_POLICIES = ("SingleStack", "PreferDualStack", "RequireDualStack")


def _go_service_port(port: Obj) -> str:
    protocol = port.get("protocol") if isinstance(port.get("protocol"), str) else ""
    number = port.get("port") if _is_int(port.get("port")) else 0
    return (
        f'core.ServicePort{{Name:"", Protocol:{go_quote(protocol)}, AppProtocol:(*string)(nil), '
        f'Port:{number}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:""}}, NodePort:0}}'
    )


def _validate_service(obj: Obj, errs: Errors, creating: bool) -> None:
    spec = _map(obj.get("spec"), "spec", errs)
    if spec is None:
        if obj.get("spec") is None:
            errs.append(field_required("spec.ports"))
        return
    service_type = _enum(spec, "type", "spec.type", SERVICE_TYPES, errs)
    cluster_ip = _str(spec.get("clusterIP"), "spec.clusterIP", errs)
    cluster_ips = _strings(spec.get("clusterIPs"), "spec.clusterIPs", errs)
    headless = cluster_ip == "None"
    external_name = service_type == "ExternalName"

    if external_name:
        if cluster_ip or cluster_ips:
            errs.append(field_forbidden("spec.clusterIPs", "may not be set for ExternalName services"))
        name = _required_str(spec, "externalName", "spec.externalName", errs)
        if name:
            _names(name.removesuffix("."), "spec.externalName", is_dns1123_subdomain, errs)
    else:
        _str(spec.get("externalName"), "spec.externalName", errs)
        if cluster_ip and cluster_ip != "None":
            if _parse_ip(cluster_ip) is None:
                errs.append(field_invalid("spec.clusterIPs[0]", cluster_ip, IP_MSG))
        if cluster_ips and cluster_ip and cluster_ips[0][1] != cluster_ip:
            errs.append(field_invalid("spec.clusterIPs", [c for _, c in cluster_ips], "element [0] must match clusterIP"))
        for item_path, ip in cluster_ips[1:]:
            if ip == "None" or _parse_ip(ip) is None:
                errs.append(field_invalid(item_path, ip, IP_MSG))
        if headless and service_type != "ClusterIP":
            errs.append(
                field_invalid("spec.clusterIPs[0]", "None", "may not be set to 'None' for LoadBalancer services")
                if service_type == "LoadBalancer"
                else field_invalid("spec.clusterIPs[0]", "None", "may not be set to 'None' for NodePort services")
            )

    ports = spec.get("ports")
    if not ports and not headless and not external_name:
        if ports is None or ports == []:
            errs.append(field_required("spec.ports"))
    port_items = _maps(ports, "spec.ports", errs)
    names: set[str] = set()
    require_name = len(port_items) > 1
    seen_ports: set[tuple[str, int]] = set()
    seen_node_ports: set[tuple[str, int]] = set()
    for item_path, port in port_items:
        name = _str(port.get("name"), f"{item_path}.name", errs)
        if require_name and not name:
            errs.append(field_required(f"{item_path}.name"))
        elif name:
            _names(name, f"{item_path}.name", is_dns1123_label, errs)
            if name in names:
                errs.append(field_duplicate(f"{item_path}.name", name))
            names.add(name)
        number = _int(port.get("port"), f"{item_path}.port", errs)
        if number is not None or port.get("port") is None:
            errs.extend(field_invalid(f"{item_path}.port", number or 0, m) for m in is_valid_port_num(number or 0))
        protocol = _enum(port, "protocol", f"{item_path}.protocol", PROTOCOLS, errs)
        _port_num_or_name(port.get("targetPort"), f"{item_path}.targetPort", errs)
        app_protocol = _str(port.get("appProtocol"), f"{item_path}.appProtocol", errs)
        if app_protocol:
            _names(app_protocol, f"{item_path}.appProtocol", is_qualified_name, errs)
        key = (protocol, number or 0)
        if key in seen_ports:
            errs.append(FieldError(item_path, f"Duplicate value: {_go_service_port(port)}", DUPLICATE))
        seen_ports.add(key)
        node_port = _int(port.get("nodePort"), f"{item_path}.nodePort", errs)
        if node_port:
            if service_type == "ClusterIP":
                errs.append(field_forbidden(f"{item_path}.nodePort", "may not be used when `type` is 'ClusterIP'"))
            elif service_type == "ExternalName":
                errs.append(field_forbidden(f"{item_path}.nodePort", "may not be used when `type` is 'ExternalName'"))
            else:
                low, high = NODE_PORT_RANGE
                if not low <= node_port <= high:
                    errs.append(
                        field_invalid(
                            f"{item_path}.nodePort",
                            node_port,
                            f"provided port is not in the valid range. The range of valid ports is {low}-{high}",
                        )
                    )
                if (protocol, node_port) in seen_node_ports:
                    errs.append(field_duplicate(f"{item_path}.nodePort", node_port))
                seen_node_ports.add((protocol, node_port))

    errs.extend(validate_labels(spec.get("selector"), "spec.selector"))
    affinity = _enum(spec, "sessionAffinity", "spec.sessionAffinity", SESSION_AFFINITIES, errs)
    affinity_config = _map(spec.get("sessionAffinityConfig"), "spec.sessionAffinityConfig", errs)
    if affinity == "ClientIP":
        client_ip = _map((affinity_config or {}).get("clientIP"), "spec.sessionAffinityConfig.clientIP", errs)
        path = "spec.sessionAffinityConfig.clientIP.timeoutSeconds"
        timeout = _int((client_ip or {}).get("timeoutSeconds"), path, errs)
        if timeout is None or not 0 < timeout <= 86400:
            errs.append(field_invalid(path, timeout, "must be greater than 0 and less than 86400"))
    elif affinity == "None" and affinity_config is not None:
        errs.append(
            _invalid_rendered(
                "spec.sessionAffinityConfig", "core.SessionAffinityConfig{...}", "must not be set when session affinity is None"
            )
        )
    for item_path, ip in _strings(spec.get("externalIPs"), "spec.externalIPs", errs):
        _ip(ip, item_path, errs)
    ranges = _strings(spec.get("loadBalancerSourceRanges"), "spec.loadBalancerSourceRanges", errs)
    if ranges and service_type != "LoadBalancer":
        errs.append(
            field_forbidden("spec.loadBalancerSourceRanges", "may only be used when `type` is 'LoadBalancer'")
        )
    for item_path, cidr in ranges:
        if not _valid_cidr(cidr.strip()):
            errs.append(field_invalid(item_path, cidr, CIDR_MSG))
    lb_ip = _str(spec.get("loadBalancerIP"), "spec.loadBalancerIP", errs)
    if lb_ip and service_type != "LoadBalancer":
        errs.append(field_forbidden("spec.loadBalancerIP", "may only be used when `type` is 'LoadBalancer'"))
    if spec.get("allocateLoadBalancerNodePorts") is not None:
        _bool(spec.get("allocateLoadBalancerNodePorts"), "spec.allocateLoadBalancerNodePorts", errs)
        if service_type != "LoadBalancer":
            errs.append(
                field_forbidden("spec.allocateLoadBalancerNodePorts", "may only be used when `type` is 'LoadBalancer'")
            )
    external_policy = _str(spec.get("externalTrafficPolicy"), "spec.externalTrafficPolicy", errs)
    if external_policy:
        if service_type not in ("NodePort", "LoadBalancer") and not spec.get("externalIPs"):
            errs.append(
                field_invalid(
                    "spec.externalTrafficPolicy", external_policy, "may only be set for externally-accessible services"
                )
            )
        elif external_policy not in TRAFFIC_POLICIES:
            errs.append(field_not_supported("spec.externalTrafficPolicy", external_policy, TRAFFIC_POLICIES))
    internal_policy = _str(spec.get("internalTrafficPolicy"), "spec.internalTrafficPolicy", errs)
    if internal_policy and internal_policy not in TRAFFIC_POLICIES:
        errs.append(field_not_supported("spec.internalTrafficPolicy", internal_policy, TRAFFIC_POLICIES))
    family_policy = _str(spec.get("ipFamilyPolicy"), "spec.ipFamilyPolicy", errs)
    if family_policy and family_policy not in IP_FAMILY_POLICIES:
        errs.append(field_not_supported("spec.ipFamilyPolicy", family_policy, IP_FAMILY_POLICIES))
    families = _strings(spec.get("ipFamilies"), "spec.ipFamilies", errs)
    seen_families: set[str] = set()
    for item_path, family in families:
        if family not in ("IPv4", "IPv6"):
            errs.append(field_not_supported(item_path, family, ["IPv4", "IPv6"]))
        elif family in seen_families:
            errs.append(field_duplicate(item_path, family))
        seen_families.add(family)
    health = _int(spec.get("healthCheckNodePort"), "spec.healthCheckNodePort", errs)
    if health and not (service_type == "LoadBalancer" and external_policy == "Local"):
        errs.append(
            field_invalid(
                "spec.healthCheckNodePort", health, "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"
            )
        )
    _bool(spec.get("publishNotReadyAddresses"), "spec.publishNotReadyAddresses", errs)


def _validate_namespace(obj: Obj, errs: Errors, creating: bool) -> None:
    spec = _map(obj.get("spec"), "spec", errs)
    if spec is not None:
        for _, finalizer in _strings(spec.get("finalizers"), "spec.finalizers", errs):
            messages = is_qualified_name(finalizer)
            errs.extend(field_invalid("spec.finalizers", finalizer, m) for m in messages)
            if not messages and "/" not in finalizer and finalizer != "kubernetes":
                errs.append(
                    field_invalid(
                        "spec.finalizers", finalizer, "name is neither a standard finalizer name nor is it fully qualified"
                    )
                )
    status = _map(obj.get("status"), "status", errs)
    if status is not None:
        phase = _str(status.get("phase"), "status.phase", errs)
        if phase and phase not in ("Active", "Terminating"):
            errs.append(field_not_supported("status.phase", phase, ["Active", "Terminating"]))


def _validate_node(obj: Obj, errs: Errors, creating: bool) -> None:
    spec = _map(obj.get("spec"), "spec", errs)
    if spec is not None:
        cidrs = _strings(spec.get("podCIDRs"), "spec.podCIDRs", errs)
        for item_path, cidr in cidrs:
            if not _valid_cidr(cidr):
                errs.append(field_invalid(item_path, cidr, CIDR_MSG))
        if len(cidrs) > 2:
            errs.append(field_invalid("spec.podCIDRs", [c for _, c in cidrs], "may specify no more than one CIDR for each IP family"))
        cidr = _str(spec.get("podCIDR"), "spec.podCIDR", errs)
        if cidr and (not cidrs or cidrs[0][1] != cidr) and not _valid_cidr(cidr):
            errs.append(field_invalid("spec.podCIDR", cidr, CIDR_MSG))
        _bool(spec.get("unschedulable"), "spec.unschedulable", errs)
        _str(spec.get("providerID"), "spec.providerID", errs)
        seen: set[tuple[str, str]] = set()
        for item_path, taint in _maps(spec.get("taints"), "spec.taints", errs):
            key = _str(taint.get("key"), f"{item_path}.key", errs)
            _names(key, f"{item_path}.key", is_qualified_name, errs)
            value = _str(taint.get("value"), f"{item_path}.value", errs)
            if value:
                _names(value, f"{item_path}.value", is_valid_label_value, errs)
            effect = _enum(taint, "effect", f"{item_path}.effect", TAINT_EFFECTS, errs)
            if (key, effect) in seen:
                errs.append(
                    FieldError(
                        item_path,
                        f"Duplicate value: core.Taint{{Key:{go_quote(key)}, Value:{go_quote(value)}, "
                        f"Effect:{go_quote(effect)}, TimeAdded:<nil>}}: taints must be unique by key and effect pair",
                        DUPLICATE,
                    )
                )
            seen.add((key, effect))
    status = _map(obj.get("status"), "status", errs)
    if status is not None:
        _node_status(status, errs)


def _node_status(status: Obj, errs: Errors) -> None:
    for key in ("capacity", "allocatable"):
        for name, raw in (_map(status.get(key), f"status.{key}", errs) or {}).items():
            amount = _quantity(raw, f"status.{key}[{name}]", errs)
            if amount is not None and amount < 0:
                errs.append(field_invalid(f"status.{key}[{name}]", str(raw), NONNEGATIVE))
    for item_path, address in _maps(status.get("addresses"), "status.addresses", errs):
        _required_str(address, "type", f"{item_path}.type", errs)
        _str(address.get("address"), f"{item_path}.address", errs)
    _conditions(status.get("conditions"), "status.conditions", errs, statuses=CONDITION_STATUSES)


def _validate_endpoints(obj: Obj, errs: Errors, creating: bool) -> None:
    for subset_path, subset in _maps(obj.get("subsets"), "subsets", errs):
        addresses = subset.get("addresses")
        not_ready = subset.get("notReadyAddresses")
        for key, value in (("addresses", addresses), ("notReadyAddresses", not_ready)):
            for item_path, address in _maps(value, f"{subset_path}.{key}", errs):
                _endpoint_address(address, item_path, errs)
        ports = _maps(subset.get("ports"), f"{subset_path}.ports", errs)
        require_name = len(ports) > 1
        names: set[str] = set()
        for item_path, port in ports:
            name = _str(port.get("name"), f"{item_path}.name", errs)
            if require_name and not name:
                errs.append(field_required(f"{item_path}.name"))
            elif name:
                _names(name, f"{item_path}.name", is_dns1123_label, errs)
                if name in names:
                    errs.append(field_duplicate(f"{item_path}.name", name))
                names.add(name)
            number = _int(port.get("port"), f"{item_path}.port", errs)
            if number is not None or port.get("port") is None:
                errs.extend(field_invalid(f"{item_path}.port", number or 0, m) for m in is_valid_port_num(number or 0))
            _enum(port, "protocol", f"{item_path}.protocol", PROTOCOLS, errs)
            app_protocol = _str(port.get("appProtocol"), f"{item_path}.appProtocol", errs)
            if app_protocol:
                _names(app_protocol, f"{item_path}.appProtocol", is_qualified_name, errs)


def _endpoint_address(address: Obj, path: str, errs: Errors) -> None:
    ip_text = _str(address.get("ip"), f"{path}.ip", errs)
    ip = _parse_ip(ip_text)
    if ip is None:
        errs.append(field_invalid(f"{path}.ip", ip_text, IP_MSG))
    hostname = _str(address.get("hostname"), f"{path}.hostname", errs)
    if hostname:
        _names(hostname, f"{path}.hostname", is_dns1123_label, errs)
    node_name = _str(address.get("nodeName"), f"{path}.nodeName", errs)
    if node_name:
        _names(node_name, f"{path}.nodeName", is_dns1123_subdomain, errs)
    _map(address.get("targetRef"), f"{path}.targetRef", errs)
    if ip is not None:
        _non_special_ip(ip, ip_text, f"{path}.ip", errs)


def _non_special_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, ip_text: str, path: str, errs: Errors) -> None:
    """Upstream's ValidateNonSpecialIP: an endpoint address no pod could be reached at."""
    if ip.is_unspecified:
        errs.append(field_invalid(path, ip_text, f"may not be unspecified ({ip_text})"))
    if ip.is_loopback:
        errs.append(field_invalid(path, ip_text, "may not be in the loopback range (127.0.0.0/8, ::1/128)"))
    link_local = ipaddress.ip_network("169.254.0.0/16") if ip.version == 4 else ipaddress.ip_network("fe80::/10")
    if ip in link_local:
        errs.append(field_invalid(path, ip_text, "may not be in the link-local range (169.254.0.0/16, fe80::/10)"))
    multicast = ipaddress.ip_network("224.0.0.0/24") if ip.version == 4 else ipaddress.ip_network("ff02::/16")
    if ip in multicast:
        errs.append(
            field_invalid(path, ip_text, "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)")
        )


# ---- discovery.k8s.io ------------------------------------------------------------------------

ADDRESS_TYPES = ("FQDN", "IPv4", "IPv6")
MAX_SLICE_ENDPOINTS = 1000
MAX_ENDPOINT_ADDRESSES = 100
MAX_SLICE_PORTS = 20000
MAX_TOPOLOGY_LABELS = 16
MAX_ZONE_HINTS = 8


def _too_many(path: str, count: int, limit: int) -> FieldError:
    return FieldError(path, f"Too many: {count}: must have at most {limit} items", "FieldValueTooMany")


def _validate_endpoint_slice(obj: Obj, errs: Errors, creating: bool) -> None:
    """Upstream's ValidateEndpointSlice (pkg/apis/discovery/validation)."""
    address_type = _enum(obj, "addressType", "addressType", ADDRESS_TYPES, errs)
    endpoints = _maps(obj.get("endpoints"), "endpoints", errs)
    if len(endpoints) > MAX_SLICE_ENDPOINTS:
        errs.append(_too_many("endpoints", len(endpoints), MAX_SLICE_ENDPOINTS))
    else:
        for item_path, endpoint in endpoints:
            _slice_endpoint(endpoint, item_path, address_type, errs)
    ports = _maps(obj.get("ports"), "ports", errs)
    if len(ports) > MAX_SLICE_PORTS:
        errs.append(_too_many("ports", len(ports), MAX_SLICE_PORTS))
        return
    names: set[str] = set()
    for item_path, port in ports:
        name = _str(port.get("name"), f"{item_path}.name", errs)
        if name:
            _names(name, f"{item_path}.name", is_dns1123_label, errs)
        if name in names:
            errs.append(field_duplicate(f"{item_path}.name", name))
        names.add(name)
        _int(port.get("port"), f"{item_path}.port", errs)
        _enum(port, "protocol", f"{item_path}.protocol", PROTOCOLS, errs)
        app_protocol = port.get("appProtocol")
        if app_protocol is not None:
            _names(_str(app_protocol, f"{item_path}.appProtocol", errs), f"{item_path}.appProtocol", is_qualified_name, errs)


def _slice_endpoint(endpoint: Obj, path: str, address_type: str, errs: Errors) -> None:
    addresses = _strings(endpoint.get("addresses"), f"{path}.addresses", errs)
    if not addresses:
        errs.append(field_required(f"{path}.addresses", "must contain at least 1 address"))
    elif len(addresses) > MAX_ENDPOINT_ADDRESSES:
        errs.append(_too_many(f"{path}.addresses", len(addresses), MAX_ENDPOINT_ADDRESSES))
    for item_path, address in addresses:
        if address_type in ("IPv4", "IPv6"):
            ip = _parse_ip(address)
            if ip is None or ip.version != int(address_type[-1]):
                errs.append(field_invalid(item_path, address, f"must be a valid {address_type} address"))
            if ip is None:
                errs.append(field_invalid(item_path, address, "must be a valid IP address"))
            else:
                _non_special_ip(ip, address, item_path, errs)
        elif address_type == "FQDN":
            _fqdn(address, item_path, errs)
    _map(endpoint.get("conditions"), f"{path}.conditions", errs)
    node_name = _str(endpoint.get("nodeName"), f"{path}.nodeName", errs)
    if node_name:
        _names(node_name, f"{path}.nodeName", is_dns1123_subdomain, errs)
    topology = endpoint.get("deprecatedTopology")
    if isinstance(topology, dict) and len(topology) > MAX_TOPOLOGY_LABELS:
        errs.append(_too_many(f"{path}.deprecatedTopology", len(topology), MAX_TOPOLOGY_LABELS))
    errs.extend(validate_labels(topology, f"{path}.deprecatedTopology"))
    _str(endpoint.get("zone"), f"{path}.zone", errs)
    hostname = endpoint.get("hostname")
    if hostname is not None:
        _names(_str(hostname, f"{path}.hostname", errs), f"{path}.hostname", is_dns1123_label, errs)
    hints = _map(endpoint.get("hints"), f"{path}.hints", errs)
    if hints is not None:
        zones = _maps(hints.get("forZones"), f"{path}.hints.forZones", errs)
        if len(zones) > MAX_ZONE_HINTS:
            errs.append(_too_many(f"{path}.hints.forZones", len(zones), MAX_ZONE_HINTS))
            return
        seen: set[str] = set()
        for item_path, for_zone in zones:
            name = _str(for_zone.get("name"), f"{item_path}.name", errs)
            if name in seen:
                errs.append(field_duplicate(f"{item_path}.name", name))
            seen.add(name)
            _names(name, f"{item_path}.name", is_valid_label_value, errs)


def _fqdn(name: str, path: str, errs: Errors) -> None:
    """Upstream's IsFullyQualifiedDomainName: a DNS subdomain of two labels or more."""
    if not name:
        errs.append(field_required(path))
        return
    name = name.removesuffix(".")
    problems = is_dns1123_subdomain(name)
    if problems:
        errs.append(field_invalid(path, name, ",".join(problems)))
        return
    if len(name.split(".")) < 2:
        errs.append(field_invalid(path, name, "should be a domain with at least two segments separated by dots"))
        return
    for label in name.split("."):
        problems = is_dns1123_label(label)
        if problems:
            errs.append(field_invalid(path, label, ",".join(problems)))
            return


def _data_keys(obj: Obj, errs: Errors, *, binary_key: str) -> tuple[dict, dict]:
    data = _map(obj.get("data"), "data", errs) or {}
    binary = _map(obj.get(binary_key), binary_key, errs) or {}
    for key in data:
        _names(key, f"data[{key}]", is_config_map_key, errs)
    for key in binary:
        _names(key, f"{binary_key}[{key}]", is_config_map_key, errs)
        if key in data and binary_key == "binaryData":
            errs.append(field_invalid(f"data[{key}]", key, "duplicate of key present in binaryData"))
    return data, binary


def _validate_config_map(obj: Obj, errs: Errors, creating: bool) -> None:
    data, binary = _data_keys(obj, errs, binary_key="binaryData")
    size = 0
    for key, value in data.items():
        if isinstance(value, str):
            size += len(value.encode())
        else:
            errs.append(_wrong_type(f"data[{key}]", value, "a string"))
    for key, value in binary.items():
        if _decode_base64(value) is None:
            errs.append(field_invalid(f"binaryData[{key}]", "<binary data>", "must be a base64-encoded string"))
        else:
            size += len(_decode_base64(value) or b"")
    if size > MAX_SECRET_SIZE:
        errs.append(field_too_long("", MAX_SECRET_SIZE))
    _bool(obj.get("immutable"), "immutable", errs)


def _decode_base64(value: Any) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


_SECRET_REQUIRED_KEYS = {
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
}


def _validate_secret(obj: Obj, errs: Errors, creating: bool) -> None:
    data = _map(obj.get("data"), "data", errs) or {}
    size = 0
    decoded: dict[str, bytes] = {}
    for key, value in data.items():
        _names(key, f"data[{key}]", is_config_map_key, errs)
        raw = _decode_base64(value)
        if raw is None:
            # Never echo a secret's value back.
            errs.append(field_invalid(f"data[{key}]", "<secret contents redacted>", "must be a base64-encoded string"))
            continue
        decoded[key] = raw
        size += len(key) + len(raw)
    string_data = obj.get("stringData")
    if string_data is not None:
        for key, value in (_map(string_data, "stringData", errs) or {}).items():
            _names(key, f"stringData[{key}]", is_config_map_key, errs)
            if not isinstance(value, str):
                errs.append(field_invalid(f"stringData[{key}]", "<secret contents redacted>", "must be a string"))
    if size > MAX_SECRET_SIZE:
        errs.append(field_too_long("data", MAX_SECRET_SIZE))
    secret_type = _str(obj.get("type"), "type", errs)
    for key in _SECRET_REQUIRED_KEYS.get(secret_type, ()):
        if key not in data:
            errs.append(field_required(f"data[{key}]"))
    if secret_type == "kubernetes.io/service-account-token":
        meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
        annotations = meta.get("annotations") if isinstance(meta.get("annotations"), dict) else {}
        if not annotations.get("kubernetes.io/service-account.name"):
            errs.append(field_required("metadata.annotations[kubernetes.io/service-account.name]"))
    elif secret_type == "kubernetes.io/basic-auth":
        if "username" not in data and "password" not in data:
            errs.append(field_required("data[username]"))
            errs.append(field_required("data[password]"))
    for key in (".dockercfg", ".dockerconfigjson"):
        if secret_type.endswith(key.lstrip(".")) and key in decoded:
            try:
                json.loads(decoded[key])
            except (ValueError, UnicodeDecodeError) as exc:
                errs.append(field_invalid(f"data[{key}]", "<secret contents redacted>", str(exc)))
    _bool(obj.get("immutable"), "immutable", errs)


def _validate_service_account(obj: Obj, errs: Errors, creating: bool) -> None:
    for key in ("secrets", "imagePullSecrets"):
        for item_path, ref in _maps(obj.get(key), key, errs):
            _str(ref.get("name"), f"{item_path}.name", errs)
    _bool(obj.get("automountServiceAccountToken"), "automountServiceAccountToken", errs)


def _validate_event(obj: Obj, errs: Errors, creating: bool) -> None:
    raw = obj.get("involvedObject")
    involved = _map(raw, "involvedObject", errs)
    if involved is None:
        if raw is None:
            errs.append(field_required("involvedObject"))
        involved = {}
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    namespace = meta.get("namespace") if isinstance(meta.get("namespace"), str) else ""
    involved_ns = _str(involved.get("namespace"), "involvedObject.namespace", errs)
    for key in ("kind", "name", "uid", "apiVersion"):
        _str(involved.get(key), f"involvedObject.{key}", errs)
    if not involved_ns:
        if namespace not in ("", "default"):
            errs.append(field_invalid("involvedObject.namespace", involved_ns, "does not match event.namespace"))
    elif namespace != involved_ns:
        errs.append(field_invalid("involvedObject.namespace", involved_ns, "does not match event.namespace"))
    for key in ("reason", "message", "type", "action", "reportingComponent", "reportingInstance"):
        _str(obj.get(key), key, errs)
    _int(obj.get("count"), "count", errs)
    _map(obj.get("source"), "source", errs)


def _validate_binding(obj: Obj, errs: Errors, creating: bool) -> None:
    target = _map(obj.get("target"), "target", errs) or {}
    _required_str(target, "name", "target.name", errs)
    kind = _str(target.get("kind"), "target.kind", errs)
    if kind and kind != "Node":
        errs.append(field_not_supported("target.kind", kind, ["Node", "<empty>"]))


def _validate_lease(obj: Obj, errs: Errors, creating: bool) -> None:
    spec = _map(obj.get("spec"), "spec", errs)
    if spec is None:
        return
    duration = _int(spec.get("leaseDurationSeconds"), "spec.leaseDurationSeconds", errs)
    if duration is not None and duration <= 0:
        errs.append(field_invalid("spec.leaseDurationSeconds", duration, POSITIVE))
    _nonnegative(spec, "leaseTransitions", "spec.leaseTransitions", errs)
    for key in ("holderIdentity", "acquireTime", "renewTime", "strategy", "preferredHolder"):
        _str(spec.get(key), f"spec.{key}", errs)


# ---- networking, autoscaling ---------------------------------------------------------------

PATH_TYPES = ("Exact", "ImplementationSpecific", "Prefix")


def _validate_ingress(obj: Obj, errs: Errors, creating: bool) -> None:
    spec = _map(obj.get("spec"), "spec", errs)
    if spec is None:
        if obj.get("spec") is None:
            errs.append(
                _invalid_rendered("spec", "[]networking.IngressRule(nil)", "either `defaultBackend` or `rules` must be specified")
            )
        return
    rules = spec.get("rules")
    default_backend = spec.get("defaultBackend")
    if not rules and default_backend is None:
        errs.append(
            _invalid_rendered("spec", "[]networking.IngressRule(nil)", "either `defaultBackend` or `rules` must be specified")
        )
    backend = _map(default_backend, "spec.defaultBackend", errs)
    if backend is not None:
        _ingress_backend(backend, "spec.defaultBackend", errs)
    for item_path, rule in _maps(rules, "spec.rules", errs):
        host = _str(rule.get("host"), f"{item_path}.host", errs)
        if host:
            if _parse_ip(host) is not None:
                errs.append(field_invalid(f"{item_path}.host", host, "must be a DNS name, not an IP address"))
            check = is_wildcard_dns1123_subdomain if "*" in host else is_dns1123_subdomain
            _names(host, f"{item_path}.host", check, errs)
        http = _map(rule.get("http"), f"{item_path}.http", errs)
        if http is None:
            continue
        paths = http.get("paths")
        if not paths:
            errs.append(field_required(f"{item_path}.http.paths"))
        for path_path, path in _maps(paths, f"{item_path}.http.paths", errs):
            _ingress_path(path, path_path, errs)
    for item_path, tls in _maps(spec.get("tls"), "spec.tls", errs):
        for host_path, host in _strings(tls.get("hosts"), f"{item_path}.hosts", errs):
            check = is_wildcard_dns1123_subdomain if "*" in host else is_dns1123_subdomain
            _names(host, host_path, check, errs)
        secret_name = _str(tls.get("secretName"), f"{item_path}.secretName", errs)
        if secret_name:
            _names(secret_name, f"{item_path}.secretName", is_dns1123_subdomain, errs)
    class_name = _str(spec.get("ingressClassName"), "spec.ingressClassName", errs)
    if class_name:
        _names(class_name, "spec.ingressClassName", is_dns1123_subdomain, errs)


def _ingress_path(path: Obj, path_path: str, errs: Errors) -> None:
    raw_type = path.get("pathType")
    text = _str(path.get("path"), f"{path_path}.path", errs)
    if raw_type is None:
        errs.append(field_required(f"{path_path}.pathType", "pathType must be specified"))
        return
    path_type = _str(raw_type, f"{path_path}.pathType", errs)
    if path_type in ("Exact", "Prefix"):
        if not text.startswith("/"):
            errs.append(field_invalid(f"{path_path}.path", text, "must be an absolute path"))
        if text:
            for sequence in ("//", "/./", "/../", "%2f", "%2F"):
                if sequence in text:
                    errs.append(field_invalid(f"{path_path}.path", text, f"must not contain '{sequence}'"))
            for suffix in ("/..", "/."):
                if text.endswith(suffix):
                    errs.append(field_invalid(f"{path_path}.path", text, f"cannot end with '{suffix}'"))
    elif path_type == "ImplementationSpecific":
        if text and not text.startswith("/"):
            errs.append(field_invalid(f"{path_path}.path", text, "must be an absolute path"))
    else:
        errs.append(field_not_supported(f"{path_path}.pathType", path_type, PATH_TYPES))
    backend = _map(path.get("backend"), f"{path_path}.backend", errs)
    _ingress_backend(backend or {}, f"{path_path}.backend", errs)


def _ingress_backend(backend: Obj, path: str, errs: Errors) -> None:
    resource = _map(backend.get("resource"), f"{path}.resource", errs)
    service = _map(backend.get("service"), f"{path}.service", errs)
    if resource is not None and service is not None:
        errs.append(field_invalid(path, "", "cannot set both resource and service backends"))
    elif resource is not None:
        group = resource.get("apiGroup")
        if group is not None:
            group_text = _str(group, f"{path}.resource.apiGroup", errs)
            _names(group_text, f"{path}.resource.apiGroup", is_dns1123_subdomain, errs)
        for key in ("kind", "name"):
            value = _required_str(resource, key, f"{path}.resource.{key}", errs, f"{key} is required")
            if value:
                _names(value, f"{path}.resource.{key}", is_valid_path_segment_name, errs)
    elif service is not None:
        name = _required_str(service, "name", f"{path}.service.name", errs)
        if name:
            _names(name, f"{path}.service.name", is_dns1035_label, errs)
        port = _map(service.get("port"), f"{path}.service.port", errs) or {}
        port_name = _str(port.get("name"), f"{path}.service.port.name", errs)
        number = _int(port.get("number"), f"{path}.service.port.number", errs)
        if port_name and number:
            errs.append(field_invalid(path, "", "cannot set both port name & port number"))
        elif port_name:
            _names(port_name, f"{path}.service.port.name", is_valid_port_name, errs)
        elif number:
            errs.extend(field_invalid(f"{path}.service.port.number", number, m) for m in is_valid_port_num(number))
        else:
            errs.append(field_required(path, "port name or number is required"))
    else:
        errs.append(field_invalid(path, "", "resource or service backend is required"))


def _validate_ingress_class(obj: Obj, errs: Errors, creating: bool) -> None:
    spec = _map(obj.get("spec"), "spec", errs) or {}
    controller = _str(spec.get("controller"), "spec.controller", errs)
    if len(controller) > 250:
        errs.append(field_too_long("spec.controller", 250))
    if not controller:
        errs.append(field_required("spec.controller"))
    else:
        host, _, rest = controller.partition("/")
        if not host or not rest:
            errs.append(field_invalid("spec.controller", controller, 'must be a domain-prefixed path (such as "acme.io/foo")'))
        else:
            _names(host, "spec.controller", is_dns1123_subdomain, errs)
            if not _HTTP_PATH_RE.fullmatch(rest):
                errs.append(
                    field_invalid(
                        "spec.controller", rest, f"must be a valid path (regex used for validation is '{_HTTP_PATH_FMT}')"
                    )
                )
    params = _map(spec.get("parameters"), "spec.parameters", errs)
    if params is None:
        return
    path = "spec.parameters"
    group = params.get("apiGroup")
    if group is not None:
        _names(_str(group, f"{path}.apiGroup", errs), f"{path}.apiGroup", is_dns1123_subdomain, errs)
    for key in ("kind", "name"):
        value = _required_str(params, key, f"{path}.{key}", errs, f"{key} is required")
        if value:
            _names(value, f"{path}.{key}", is_valid_path_segment_name, errs)
    scope = _str(params.get("scope"), f"{path}.scope", errs)
    namespace = params.get("namespace")
    if scope == "Namespace":
        if not namespace:
            errs.append(field_required(f"{path}.namespace", "`parameters.scope` is set to 'Namespace'"))
        else:
            _names(_str(namespace, f"{path}.namespace", errs), f"{path}.namespace", is_dns1123_label, errs)
    elif scope == "Cluster":
        if namespace is not None:
            errs.append(field_forbidden(f"{path}.namespace", "`parameters.scope` is set to 'Cluster'"))
    else:
        errs.append(field_not_supported(f"{path}.scope", scope, ["Cluster", "Namespace"]))


METRIC_SOURCE_TYPES = ("Object", "Pods", "Resource", "External", "ContainerResource")
_METRIC_FIELDS = {
    "Object": "object",
    "Pods": "pods",
    "Resource": "resource",
    "External": "external",
    "ContainerResource": "containerResource",
}


def _cross_version_ref(value: Any, path: str, errs: Errors) -> bool:
    """CrossVersionObjectReference: kind and name required; whether it was valid."""
    before = len(errs)
    ref = _map(value, path, errs) or {}
    for key in ("kind", "name"):
        text = _required_str(ref, key, f"{path}.{key}", errs)
        if text:
            _names(text, f"{path}.{key}", is_valid_path_segment_name, errs)
    _str(ref.get("apiVersion"), f"{path}.apiVersion", errs)
    return len(errs) == before


def _metric_target(value: Any, path: str, errs: Errors) -> Obj:
    target = _map(value, path, errs) or {}
    kind_raw = target.get("type")
    kind = _str(kind_raw, f"{path}.type", errs)
    if not kind:
        errs.append(field_required(f"{path}.type", "must specify a metric target type"))
    if kind not in ("Utilization", "Value", "AverageValue"):
        errs.append(field_invalid(f"{path}.type", kind, "must be either Utilization, Value, or AverageValue"))
    for key in ("value", "averageValue"):
        amount = _quantity(target.get(key), f"{path}.{key}", errs)
        if amount is not None and amount <= 0:
            errs.append(field_invalid(f"{path}.{key}", str(target.get(key)), "must be positive"))
    utilization = _int(target.get("averageUtilization"), f"{path}.averageUtilization", errs)
    if utilization is not None and utilization < 1:
        errs.append(field_invalid(f"{path}.averageUtilization", utilization, POSITIVE))
    return target


def _metric_identifier(value: Any, path: str, errs: Errors) -> None:
    metric = _map(value, path, errs) or {}
    name = _required_str(metric, "name", f"{path}.name", errs, "must specify a metric name")
    if name:
        _names(name, f"{path}.name", is_valid_path_segment_name, errs)
    selector = _map(metric.get("selector"), f"{path}.selector", errs)
    if selector is not None:
        _label_selector(selector, f"{path}.selector", errs)


def _metric_source(kind: str, source: Obj, path: str, errs: Errors) -> None:
    if kind in ("Resource", "ContainerResource"):
        _required_str(source, "name", f"{path}.name", errs, "must specify a resource name")
        if kind == "ContainerResource":
            _required_str(source, "container", f"{path}.container", errs, "must specify a container")
        target = _metric_target(source.get("target"), f"{path}.target", errs)
        utilization, average = target.get("averageUtilization"), target.get("averageValue")
        if utilization is None and average is None:
            errs.append(
                field_required(f"{path}.target.averageUtilization", "must set either a target raw value or a target utilization")
            )
        if utilization is not None and average is not None:
            errs.append(
                field_forbidden(f"{path}.target.averageValue", "may not set both a target raw value and a target utilization")
            )
        return
    _metric_identifier(source.get("metric"), f"{path}.metric", errs)
    target = _metric_target(source.get("target"), f"{path}.target", errs)
    if kind == "Pods":
        if target.get("averageValue") is None:
            errs.append(field_required(f"{path}.target.averageValue", "must specify a positive target averageValue"))
    elif kind == "Object":
        _cross_version_ref(source.get("describedObject"), f"{path}.describedObject", errs)
        if target.get("value") is None and target.get("averageValue") is None:
            errs.append(field_required(f"{path}.target.averageValue", "must set either a target value or averageValue"))
    elif kind == "External":
        value, average = target.get("value"), target.get("averageValue")
        if value is None and average is None:
            errs.append(
                field_required(f"{path}.target.averageValue", "must set either a target value for metric or a per-pod target")
            )
        if value is not None and average is not None:
            errs.append(
                field_forbidden(f"{path}.target.value", "may not set both a target value for metric and a per-pod target")
            )


def _scaling_rules(value: Any, path: str, errs: Errors) -> None:
    rules = _map(value, path, errs)
    if rules is None:
        return
    window = _int(rules.get("stabilizationWindowSeconds"), f"{path}.stabilizationWindowSeconds", errs)
    if window is not None and window < 0:
        errs.append(field_invalid(f"{path}.stabilizationWindowSeconds", window, "must be greater than or equal to zero"))
    elif window is not None and window > 3600:
        errs.append(field_invalid(f"{path}.stabilizationWindowSeconds", window, "must be less than or equal to 3600"))
    select = _str(rules.get("selectPolicy"), f"{path}.selectPolicy", errs)
    if select and select not in ("Max", "Min", "Disabled"):
        errs.append(field_not_supported(f"{path}.selectPolicy", select, ["Max", "Min", "Disabled"]))
    policies = rules.get("policies")
    if not policies:
        errs.append(field_required(f"{path}.policies", "must specify at least one Policy"))
    for item_path, policy in _maps(policies, f"{path}.policies", errs):
        kind = _str(policy.get("type"), f"{item_path}.type", errs)
        if kind not in ("Pods", "Percent"):
            errs.append(field_not_supported(f"{item_path}.type", kind, ["Pods", "Percent"]))
        amount = _int(policy.get("value"), f"{item_path}.value", errs)
        if amount is None or amount <= 0:
            errs.append(field_invalid(f"{item_path}.value", amount, "must be greater than zero"))
        period = _int(policy.get("periodSeconds"), f"{item_path}.periodSeconds", errs)
        if period is None or period <= 0:
            errs.append(field_invalid(f"{item_path}.periodSeconds", period, "must be greater than zero"))
        elif period > 1800:
            errs.append(field_invalid(f"{item_path}.periodSeconds", period, "must be less than or equal to 1800"))


def _validate_hpa(obj: Obj, errs: Errors, creating: bool) -> None:
    spec = _map(obj.get("spec"), "spec", errs)
    if spec is None:
        if obj.get("spec") is None:
            errs.append(field_required("spec.scaleTargetRef.kind"))
            errs.append(field_required("spec.scaleTargetRef.name"))
        return
    min_replicas = _int(spec.get("minReplicas"), "spec.minReplicas", errs)
    if min_replicas is not None and min_replicas < 1:
        errs.append(field_invalid("spec.minReplicas", min_replicas, "must be greater than or equal to 1"))
    max_replicas = _int(spec.get("maxReplicas"), "spec.maxReplicas", errs)
    if max_replicas is None or max_replicas < 1:
        errs.append(field_invalid("spec.maxReplicas", max_replicas or 0, POSITIVE))
    if min_replicas is not None and max_replicas is not None and max_replicas < min_replicas:
        errs.append(field_invalid("spec.maxReplicas", max_replicas, "must be greater than or equal to `minReplicas`"))
    if not _cross_version_ref(spec.get("scaleTargetRef"), "spec.scaleTargetRef", errs):
        return
    before = len(errs)
    for item_path, metric in _maps(spec.get("metrics"), "spec.metrics", errs):
        kind_raw = metric.get("type")
        kind = _str(kind_raw, f"{item_path}.type", errs)
        if not kind:
            errs.append(field_required(f"{item_path}.type", "must specify a metric source type"))
        elif kind not in METRIC_SOURCE_TYPES:
            errs.append(field_not_supported(f"{item_path}.type", kind, METRIC_SOURCE_TYPES))
        present = [f for f in _METRIC_FIELDS.values() if metric.get(f) is not None]
        expected = _METRIC_FIELDS.get(kind)
        if expected is not None:
            source = _map(metric.get(expected), f"{item_path}.{expected}", errs)
            if source is None and metric.get(expected) is None:
                errs.append(field_required(f"{item_path}.{expected}", "must populate information for the given metric source"))
            elif source is not None:
                _metric_source(kind, source, f"{item_path}.{expected}", errs)
        for other in present:
            if other != expected:
                errs.append(field_forbidden(f"{item_path}.{other}", "must populate the given metric source only"))
    if len(errs) > before:
        return
    behavior = _map(spec.get("behavior"), "spec.behavior", errs)
    if behavior is not None:
        _scaling_rules(behavior.get("scaleUp"), "spec.behavior.scaleUp", errs)
        _scaling_rules(behavior.get("scaleDown"), "spec.behavior.scaleDown", errs)


_VALIDATORS: dict[str, Callable[[Obj, Errors, bool], None]] = {
    "namespaces": _validate_namespace,
    "pods": _validate_pod,
    "nodes": _validate_node,
    "services": _validate_service,
    "endpoints": _validate_endpoints,
    "endpointslices.discovery.k8s.io": _validate_endpoint_slice,
    "configmaps": _validate_config_map,
    "secrets": _validate_secret,
    "events": _validate_event,
    "serviceaccounts": _validate_service_account,
    "bindings": _validate_binding,
    "leases.coordination.k8s.io": _validate_lease,
    "deployments.apps": _validate_deployment,
    "replicasets.apps": _validate_replica_set,
    "daemonsets.apps": _validate_daemon_set,
    "controllerrevisions.apps": _validate_controller_revision,
    "jobs.batch": _validate_job,
    "ingresses.networking.k8s.io": _validate_ingress,
    "ingressclasses.networking.k8s.io": _validate_ingress_class,
    "horizontalpodautoscalers.autoscaling": _validate_hpa,
}


# ---- updates -------------------------------------------------------------------------------


def _spec(obj: Obj) -> Obj:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def _immutable(new: Any, old: Any, path: str, errs: Errors, rendered: str | None = None) -> None:
    if new != old:
        if rendered is None:
            errs.append(field_invalid(path, new, IMMUTABLE))
        else:
            errs.append(_invalid_rendered(path, rendered, IMMUTABLE))


def _update_selector(new: Obj, old: Obj, errs: Errors) -> None:
    new_selector, old_selector = _spec(new).get("selector"), _spec(old).get("selector")
    if _normalized_selector(new_selector) != _normalized_selector(old_selector):
        errs.append(_invalid_rendered("spec.selector", _go_selector(new_selector), IMMUTABLE))


def _update_job(new: Obj, old: Obj, errs: Errors) -> None:
    new_spec, old_spec = _spec(new), _spec(old)
    new_selector, old_selector = new_spec.get("selector"), old_spec.get("selector")
    generated = {JOB_CONTROLLER_UID_LABEL: _uid(new)}
    # A Job stored before its selector was generated gets one on its first update.
    if not (old_selector is None and isinstance(new_selector, dict) and new_selector.get("matchLabels") == generated):
        _update_selector(new, old, errs)
    new_template = _comparable_job_template(new_spec.get("template"), old_spec.get("template"))
    old_template = old_spec.get("template")
    suspended_never_started = new_spec.get("suspend") is True and not _status_field(old, "startTime")
    if suspended_never_started:
        new_template = _without_scheduling_directives(new_template)
        old_template = _without_scheduling_directives(old_template)
    if new_template != old_template:
        errs.append(_invalid_rendered("spec.template", "core.PodTemplateSpec{...}", IMMUTABLE))
    if new_spec.get("completionMode", "NonIndexed") != old_spec.get("completionMode", "NonIndexed"):
        errs.append(field_invalid("spec.completionMode", new_spec.get("completionMode"), IMMUTABLE))
    if new_spec.get("completionMode") != "Indexed" and new_spec.get("completions") != old_spec.get("completions"):
        errs.append(field_invalid("spec.completions", new_spec.get("completions"), IMMUTABLE))
    if new_spec.get("podFailurePolicy") != old_spec.get("podFailurePolicy"):
        errs.append(_invalid_rendered("spec.podFailurePolicy", "&batch.PodFailurePolicy{...}", IMMUTABLE))


def _uid(obj: Obj) -> Any:
    meta = obj.get("metadata")
    return meta.get("uid") if isinstance(meta, dict) else None


def _status_field(obj: Obj, key: str) -> Any:
    status = obj.get("status")
    return status.get(key) if isinstance(status, dict) else None


def _comparable_job_template(new: Any, old: Any) -> Any:
    """new, minus the selector labels the defaulter adds when a Job's selector is generated
    late (the old template did not have them)."""
    if not isinstance(new, dict) or not isinstance(old, dict):
        return new
    new_meta, old_meta = new.get("metadata"), old.get("metadata")
    if not isinstance(new_meta, dict) or not isinstance(new_meta.get("labels"), dict):
        return new
    old_meta = old_meta if isinstance(old_meta, dict) else {}
    old_labels = old_meta.get("labels") if isinstance(old_meta.get("labels"), dict) else {}
    generated = {"batch.kubernetes.io/controller-uid", "batch.kubernetes.io/job-name", "controller-uid", "job-name"}
    extra = {k for k in new_meta["labels"] if k in generated and k not in old_labels}
    if not extra:
        return new
    meta = dict(new_meta)
    trimmed = {k: v for k, v in new_meta["labels"].items() if k not in extra}
    if trimmed or "labels" in old_meta:
        meta["labels"] = trimmed
    else:
        meta.pop("labels")
    result = dict(new)
    if meta or "metadata" in old:
        result["metadata"] = meta
    else:
        result.pop("metadata")
    return result


def _without_scheduling_directives(template: Any) -> Any:
    if not isinstance(template, dict):
        return template
    result = dict(template)
    meta = result.get("metadata")
    if isinstance(meta, dict):
        result["metadata"] = {k: v for k, v in meta.items() if k not in ("labels", "annotations")}
    spec = result.get("spec")
    if isinstance(spec, dict):
        result["spec"] = {
            k: v for k, v in spec.items() if k not in ("nodeSelector", "affinity", "tolerations", "schedulingGates")
        }
    return result


def _update_pod(new: Obj, old: Obj, errs: Errors) -> None:
    new_spec, old_spec = _spec(new), _spec(old)
    munged = dict(new_spec)
    for key in ("containers", "initContainers"):
        new_list, old_list = new_spec.get(key), old_spec.get(key)
        if key == "containers" and isinstance(new_list, list) and isinstance(old_list, list):
            if len(new_list) != len(old_list):
                errs.append(field_forbidden("spec.containers", "pod updates may not add or remove containers"))
                return
        if isinstance(new_list, list) and isinstance(old_list, list) and len(new_list) == len(old_list):
            merged = []
            for new_c, old_c in zip(new_list, old_list, strict=True):
                if isinstance(new_c, dict) and isinstance(old_c, dict):
                    new_c = dict(new_c)
                    if "image" in old_c:
                        new_c["image"] = old_c["image"]
                    else:
                        new_c.pop("image", None)
                merged.append(new_c)
            munged[key] = merged

    new_deadline, old_deadline = new_spec.get("activeDeadlineSeconds"), old_spec.get("activeDeadlineSeconds")
    if _is_int(new_deadline):
        if not 0 <= new_deadline <= MAX_INT32:
            errs.append(
                field_invalid("spec.activeDeadlineSeconds", new_deadline, f"must be between 0 and {MAX_INT32}, inclusive")
            )
            return
        if _is_int(old_deadline) and old_deadline < new_deadline:
            errs.append(field_invalid("spec.activeDeadlineSeconds", new_deadline, "must be less than or equal to previous value"))
            return
    elif new_deadline is None and old_deadline is not None:
        errs.append(
            field_invalid("spec.activeDeadlineSeconds", None, "must not update from a positive integer to nil value")
        )
    _set_or_drop(munged, "activeDeadlineSeconds", old_spec)

    new_tolerations, old_tolerations = new_spec.get("tolerations"), old_spec.get("tolerations")
    if _tolerations_only_added(new_tolerations, old_tolerations, errs):
        _set_or_drop(munged, "tolerations", old_spec)

    new_grace, old_grace = new_spec.get("terminationGracePeriodSeconds"), old_spec.get("terminationGracePeriodSeconds")
    if _is_int(old_grace) and old_grace < 0 and new_grace == 1:
        _set_or_drop(munged, "terminationGracePeriodSeconds", old_spec)

    if munged != old_spec:
        changed = sorted(k for k in set(munged) | set(old_spec) if munged.get(k) != old_spec.get(k))
        detail = POD_UPDATE_FORBIDDEN + "\n  changed: " + ", ".join(f"spec.{k}" for k in changed)
        errs.append(field_forbidden("spec", detail))


def _set_or_drop(munged: Obj, key: str, old_spec: Obj) -> None:
    if key in old_spec:
        munged[key] = old_spec[key]
    else:
        munged.pop(key, None)


def _tolerations_only_added(new: Any, old: Any, errs: Errors) -> bool:
    """ValidateTolerationsInPodUpdate: every old toleration is kept (tolerationSeconds may shrink)."""
    if old is None:
        return True
    if not isinstance(old, list) or not isinstance(new, list):
        return new == old
    remaining = [t for t in new if isinstance(t, dict)]
    for toleration in old:
        if not isinstance(toleration, dict):
            continue
        match = None
        for candidate in remaining:
            if {k: v for k, v in candidate.items() if k != "tolerationSeconds"} == {
                k: v for k, v in toleration.items() if k != "tolerationSeconds"
            }:
                match = candidate
                break
        if match is None:
            errs.append(field_forbidden("spec.tolerations", "existing toleration can not be modified except its tolerationSeconds"))
            return False
        old_seconds, new_seconds = toleration.get("tolerationSeconds"), match.get("tolerationSeconds")
        if _is_int(old_seconds) and (not _is_int(new_seconds) or new_seconds > old_seconds):
            errs.append(
                field_forbidden(
                    "spec.tolerations",
                    "existing toleration can not be modified except its tolerationSeconds",
                )
            )
            return False
        remaining.remove(match)
    return True


def _update_service(new: Obj, old: Obj, errs: Errors) -> None:
    new_spec, old_spec = _spec(new), _spec(old)
    if "ExternalName" in (new_spec.get("type"), old_spec.get("type")):
        return
    new_ip, old_ip = new_spec.get("clusterIP"), old_spec.get("clusterIP")
    # An empty clusterIP on update means "keep the allocated one" (the server fills it in).
    if new_ip in (None, "") or old_ip in (None, ""):
        return
    if new_ip != old_ip:
        ips = new_spec.get("clusterIPs")
        shown = ips if isinstance(ips, list) and ips else [new_ip]
        errs.append(_invalid_rendered("spec.clusterIPs[0]", _go_string_list([str(i) for i in shown]), "may not change once set"))


def _drop_type_dependent_fields(new: Obj, old: Obj) -> Obj:
    """new without what its old type needed and its new type forbids, as upstream's
    dropTypeDependentFields does before validating: a client that switches a NodePort
    Service to ClusterIP with `kubectl apply` still carries the allocated nodePorts."""
    new_spec, old_spec = _spec(new), _spec(old)
    new_type, old_type = new_spec.get("type"), old_spec.get("type")
    if new_type == old_type or not isinstance(new.get("spec"), dict):
        return new
    result = copy.deepcopy(new)
    spec = result["spec"]

    def drop_if_unchanged(key: str) -> None:
        if key in spec and spec[key] == old_spec.get(key):
            del spec[key]

    if new_type not in ("NodePort", "LoadBalancer"):
        old_ports = [p for p in _list_or_empty(old_spec.get("ports")) if isinstance(p, dict)]
        allocated = {(p.get("port"), p.get("protocol")): p.get("nodePort") for p in old_ports}
        for port in _list_or_empty(spec.get("ports")):
            if isinstance(port, dict) and port.get("nodePort") is not None:
                if port["nodePort"] == allocated.get((port.get("port"), port.get("protocol"))):
                    del port["nodePort"]
    if new_type != "LoadBalancer":
        drop_if_unchanged("allocateLoadBalancerNodePorts")
        drop_if_unchanged("healthCheckNodePort")
        drop_if_unchanged("loadBalancerClass")
    if new_type not in ("NodePort", "LoadBalancer") and not (new_type == "ClusterIP" and spec.get("externalIPs")):
        drop_if_unchanged("externalTrafficPolicy")
    if new_type == "ExternalName":
        for key in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy", "internalTrafficPolicy"):
            drop_if_unchanged(key)
    return result


def _list_or_empty(value: Any) -> list:
    return value if isinstance(value, list) else []


def _update_immutable_data(new: Obj, old: Obj, errs: Errors, *, keys: tuple[str, ...]) -> None:
    if old.get("immutable") is not True:
        return
    if new.get("immutable") is not True:
        errs.append(field_forbidden("immutable", "field is immutable when `immutable` is set"))
    for key in keys:
        if (new.get(key) or {}) != (old.get(key) or {}):
            errs.append(field_forbidden(key, "field is immutable when `immutable` is set"))


def _update_config_map(new: Obj, old: Obj, errs: Errors) -> None:
    _update_immutable_data(new, old, errs, keys=("data", "binaryData"))


def _update_secret(new: Obj, old: Obj, errs: Errors) -> None:
    if new.get("type") != old.get("type"):
        errs.append(field_invalid("type", new.get("type"), IMMUTABLE))
    _update_immutable_data(new, old, errs, keys=("data",))


def _update_node(new: Obj, old: Obj, errs: Errors) -> None:
    old_cidrs, new_cidrs = _spec(old).get("podCIDRs"), _spec(new).get("podCIDRs")
    if old_cidrs and new_cidrs != old_cidrs:
        errs.append(field_forbidden("spec.podCIDRs", 'node updates may not change podCIDR except from "" to valid'))


def _update_ingress_class(new: Obj, old: Obj, errs: Errors) -> None:
    _immutable(_spec(new).get("controller"), _spec(old).get("controller"), "spec.controller", errs)


def _update_endpoint_slice(new: Obj, old: Obj, errs: Errors) -> None:
    _immutable(new.get("addressType"), old.get("addressType"), "addressType", errs)


def _update_controller_revision(new: Obj, old: Obj, errs: Errors) -> None:
    if new.get("data") != old.get("data"):
        errs.append(_invalid_rendered("data", "runtime.RawExtension{...}", IMMUTABLE))


_UPDATE_VALIDATORS: dict[str, Callable[[Obj, Obj, Errors], None]] = {
    "pods": _update_pod,
    "services": _update_service,
    "configmaps": _update_config_map,
    "secrets": _update_secret,
    "nodes": _update_node,
    "deployments.apps": _update_selector,
    "replicasets.apps": _update_selector,
    "daemonsets.apps": _update_selector,
    "controllerrevisions.apps": _update_controller_revision,
    "jobs.batch": _update_job,
    "ingressclasses.networking.k8s.io": _update_ingress_class,
    "endpointslices.discovery.k8s.io": _update_endpoint_slice,
}


# ---- status --------------------------------------------------------------------------------


def _conditions(value: Any, path: str, errs: Errors, *, statuses: tuple[str, ...] | None = None) -> None:
    for item_path, condition in _maps(value, path, errs):
        _required_str(condition, "type", f"{item_path}.type", errs)
        raw = condition.get("status")
        status = _required_str(condition, "status", f"{item_path}.status", errs)
        if statuses is not None and status and status not in statuses:
            errs.append(field_not_supported(f"{item_path}.status", raw, statuses))
        for key in ("reason", "message", "lastTransitionTime", "lastProbeTime", "lastHeartbeatTime", "lastUpdateTime"):
            _str(condition.get(key), f"{item_path}.{key}", errs)


def _status(info: ResourceInfo, status: Obj, old: Obj, errs: Errors) -> None:
    key = info.key
    if key == "pods":
        phase = _str(status.get("phase"), "status.phase", errs)
        if phase and phase not in POD_PHASES:
            errs.append(field_not_supported("status.phase", phase, POD_PHASES))
        _conditions(status.get("conditions"), "status.conditions", errs, statuses=CONDITION_STATUSES)
        for field in ("podIP", "hostIP"):
            ip = _str(status.get(field), f"status.{field}", errs)
            if ip:
                _ip(ip, f"status.{field}", errs)
        for field in ("podIPs", "hostIPs"):
            for item_path, entry in _maps(status.get(field), f"status.{field}", errs):
                ip = _str(entry.get("ip"), f"{item_path}.ip", errs)
                if ip:
                    _ip(ip, f"{item_path}.ip", errs)
        for field in ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"):
            for item_path, entry in _maps(status.get(field), f"status.{field}", errs):
                _str(entry.get("name"), f"{item_path}.name", errs)
                _nonnegative(entry, "restartCount", f"{item_path}.restartCount", errs)
                _bool(entry.get("ready"), f"{item_path}.ready", errs)
                _map(entry.get("state"), f"{item_path}.state", errs)
        new_qos = status.get("qosClass")
        old_qos = _status_field(old, "qosClass")
        if new_qos and old_qos and new_qos != old_qos:
            errs.append(field_invalid("status.qosClass", new_qos, IMMUTABLE))
    elif key == "nodes":
        _node_status(status, errs)
    elif key == "namespaces":
        phase = _str(status.get("phase"), "status.phase", errs)
        if phase and phase not in ("Active", "Terminating"):
            errs.append(field_not_supported("status.phase", phase, ["Active", "Terminating"]))
        _conditions(status.get("conditions"), "status.conditions", errs)
    elif key in ("deployments.apps", "replicasets.apps", "daemonsets.apps", "jobs.batch", "horizontalpodautoscalers.autoscaling"):
        for field in (
            "replicas", "updatedReplicas", "readyReplicas", "availableReplicas", "unavailableReplicas",
            "fullyLabeledReplicas", "terminatingReplicas", "observedGeneration", "collisionCount",
            "currentNumberScheduled", "numberMisscheduled", "desiredNumberScheduled", "numberReady",
            "updatedNumberScheduled", "numberAvailable", "numberUnavailable", "active", "succeeded",
            "failed", "ready", "terminating", "currentReplicas", "desiredReplicas",
        ):
            _nonnegative(status, field, f"status.{field}", errs)
        _conditions(status.get("conditions"), "status.conditions", errs)
    elif key == "services":
        load_balancer = _map(status.get("loadBalancer"), "status.loadBalancer", errs)
        for item_path, entry in _maps((load_balancer or {}).get("ingress"), "status.loadBalancer.ingress", errs):
            ip = _str(entry.get("ip"), f"{item_path}.ip", errs)
            if ip:
                _ip(ip, f"{item_path}.ip", errs)
            hostname = _str(entry.get("hostname"), f"{item_path}.hostname", errs)
            if hostname:
                _names(hostname, f"{item_path}.hostname", is_dns1123_subdomain, errs)
        _conditions(status.get("conditions"), "status.conditions", errs)
    else:
        _conditions(status.get("conditions"), "status.conditions", errs)
