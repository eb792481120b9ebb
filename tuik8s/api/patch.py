"""PATCH bodies applied the way the Kubernetes API server applies them.

The API server receives four kinds of patch, named by the request's Content-Type:

- JSON merge patch (RFC 7386): `kubectl label`, `kubectl annotate`, `kubectl scale`.
- JSON patch (RFC 6902): `kubectl patch --type json`.
- Strategic merge patch: `kubectl apply` (client side), `kubectl edit`, `kubectl rollout
  restart`, `kubectl patch`. A merge patch that knows, per field, whether a list is merged
  by a key (containers by name) or replaced, and that understands the `$patch`,
  `$setElementOrder/…`, `$retainKeys` and `$deleteFromPrimitiveList/…` directives.
- Server-side apply (`kubectl apply --server-side`): a stand-in built on the strategic merge.

Upstream drives the strategic merge from Go struct tags. We have no structs, so
`MERGE_LISTS` below is that metadata written out: it is keyed by the path of field names
from the object root with list indices removed, matched by the longest suffix, because the
patch function is not told the kind and a PodSpec sits at different depths in a Pod, a
PodTemplate and a Deployment.

Status codes follow apimachinery's `interpretStrategicMergePatchError` and the handler's
json-patch branch: a patch that cannot be decoded or is malformed is 400 BadRequest; a
well-formed JSON patch that does not apply to this object (a failed `test`, a missing path)
is 422 Invalid; an unknown patch type is 415. Where upstream lets an error fall through to
a 500 (an unknown `$patch` value, a missing merge key) we answer 400: the fault is in the
request. Messages are one line, since kubectl prints them after `Error from server`.

Two deliberate differences from upstream's strategic merge: `$patch: merge` is accepted as
the explicit default (upstream rejects it), and a patch value that lands where the live
object has nothing is merged into emptiness rather than copied, so its nulls and directives
never reach the stored object (upstream copies them and lets typed decoding drop them).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Hashable
from typing import Any

import jsonpatch

from tuik8s.api.errors import StatusError, bad_request, unsupported_media_type

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"

PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH, APPLY_PATCH)

# The API server refuses longer JSON patches with 413 (maxJSONPatchOperations).
MAX_JSON_PATCH_OPERATIONS = 10000

_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
_CONTAINER_STATUS_LISTS = (
    "containerStatuses",
    "initContainerStatuses",
    "ephemeralContainerStatuses",
)

# The lists a strategic merge patch merges instead of replacing: every field that the
# Kubernetes 1.32 API types tag `patchStrategy:"merge"` in the kinds we serve (Pod,
# PodTemplate, Deployment, ReplicaSet, DaemonSet, Job, Service, Node, Endpoints, Ingress,
# ConfigMap, Secret, Namespace, HorizontalPodAutoscaler) and in ObjectMeta.
#
# Key: the trailing field names of the list's path (list indices dropped). A PodSpec sits
# under a `spec` key whether it is a Pod's, a template's or a Deployment's template's, so
# ("spec", "containers") covers all of them, while keeping a ServiceAccount's root-level
# `imagePullSecrets` (replaced upstream) out. The longest matching suffix wins.
# Value: the merge key, or None for a list of primitives merged as a set.
#
# Every list not named here is replaced whole, as upstream does: tolerations, Node
# spec.taints, Endpoints subsets, Ingress rules, Namespace spec.finalizers, command/args,
# container resizePolicy and resources.claims (listType=map but no patchStrategy).
# `patchStrategy:"retainKeys"` (Deployment spec.strategy, volumes) needs no entry: it only
# tells a client when to send `$retainKeys`; the server honours `$retainKeys` anywhere.
MERGE_LISTS: dict[tuple[str, ...], str | None] = {
    # ObjectMeta, at the root and in every template.
    ("metadata", "ownerReferences"): "uid",
    ("metadata", "finalizers"): None,
    # PodSpec.
    **{("spec", name): "name" for name in _CONTAINER_LISTS},
    ("spec", "volumes"): "name",
    ("spec", "imagePullSecrets"): "name",
    ("spec", "hostAliases"): "ip",
    ("spec", "topologySpreadConstraints"): "topologyKey",
    ("spec", "schedulingGates"): "name",
    ("spec", "resourceClaims"): "name",
    # Container and EphemeralContainer.
    **{(c, "ports"): "containerPort" for c in _CONTAINER_LISTS},
    **{(c, "env"): "name" for c in _CONTAINER_LISTS},
    **{(c, "volumeMounts"): "mountPath" for c in _CONTAINER_LISTS},
    **{(c, "volumeDevices"): "devicePath" for c in _CONTAINER_LISTS},
    # Pod status and its ContainerStatus entries.
    ("status", "podIPs"): "ip",
    ("status", "hostIPs"): "ip",
    ("status", "resourceClaimStatuses"): "name",
    **{(c, "volumeMounts"): "mountPath" for c in _CONTAINER_STATUS_LISTS},
    **{(c, "allocatedResourcesStatus"): "name" for c in _CONTAINER_STATUS_LISTS},
    # Conditions are merged by type in every status that has them: Pod, Deployment,
    # ReplicaSet, DaemonSet, Job, Service, Node, Namespace, HorizontalPodAutoscaler.
    ("status", "conditions"): "type",
    # Service ports are keyed by port (a container's by containerPort, above).
    ("spec", "ports"): "port",
    # Node.
    ("spec", "podCIDRs"): None,
    ("status", "addresses"): "type",
}

_LONGEST_KEY = max(len(k) for k in MERGE_LISTS)

_PATCH = "$patch"
_RETAIN_KEYS = "$retainKeys"
_SET_ORDER = "$setElementOrder/"
_DELETE_FROM = "$deleteFromPrimitiveList/"

_MISSING: Any = object()


def apply_patch(patch_type: str, original: dict[str, Any], patch: Any) -> dict[str, Any]:
    """Return a new object = original with the already-decoded JSON `patch` applied.

    Never mutates `original` or `patch`, and the result shares no structure with either.
    Raises StatusError: 400 BadRequest for a malformed patch, 422 Invalid for a JSON patch
    that does not apply to this object (a failed `test` included, as upstream), 413 for a
    JSON patch of more than 10000 operations, 415 UnsupportedMediaType for an unknown type.

    APPLY_PATCH (server-side apply) is a stand-in: the applied configuration is merged onto
    the live object as a strategic merge patch. Field ownership is not tracked, so
    `metadata.managedFields` is neither written nor consulted, there are no apply conflicts
    (`force` means nothing), and fields dropped from a later applied configuration are kept
    rather than removed. The caller handles creation when the object is absent.
    """
    media_type = patch_type.split(";", 1)[0].strip().lower()
    if media_type == MERGE_PATCH:
        return _merge_patch(original, patch)
    if media_type == JSON_PATCH:
        return _json_patch(original, patch)
    if media_type == STRATEGIC_MERGE_PATCH:
        if not isinstance(patch, dict):
            raise bad_request(
                f"a strategic merge patch must be a JSON object, not {_json_type(patch)}"
            )
        return _merge_map(copy.deepcopy(original), patch, ())
    if media_type == APPLY_PATCH:
        if not isinstance(patch, dict):
            raise bad_request(
                f"error decoding YAML: the applied configuration must be an object, not {_json_type(patch)}"
            )
        return _merge_map(copy.deepcopy(original), patch, ())
    raise unsupported_media_type(patch_type)


# --- JSON merge patch (RFC 7386) ---------------------------------------------------------


def _merge_patch(original: dict[str, Any], patch: Any) -> dict[str, Any]:
    if not isinstance(patch, dict):
        # RFC 7386 would replace the whole document; an object cannot become a non-object.
        raise bad_request(f"a merge patch must be a JSON object, not {_json_type(patch)}")
    return _merge_patch_into(copy.deepcopy(original), patch)


def _merge_patch_into(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict):
            current = target.get(key)
            target[key] = _merge_patch_into(current if isinstance(current, dict) else {}, value)
        else:
            target[key] = copy.deepcopy(value)
    return target


# --- JSON patch (RFC 6902) ---------------------------------------------------------------

_JSON_PATCH_MEMBERS = {
    "add": ("path", "value"),
    "remove": ("path",),
    "replace": ("path", "value"),
    "move": ("from", "path"),
    "copy": ("from", "path"),
    "test": ("path", "value"),
}


def _json_patch(original: dict[str, Any], patch: Any) -> dict[str, Any]:
    if not isinstance(patch, list):
        raise bad_request(
            f"a json patch must be a JSON array of operations, not {_json_type(patch)}"
        )
    if len(patch) > MAX_JSON_PATCH_OPERATIONS:
        raise StatusError(
            413,
            "RequestEntityTooLarge",
            "Request entity too large: The allowed maximum operations in a JSON patch is "
            f"{MAX_JSON_PATCH_OPERATIONS}, got {len(patch)}",
        )
    for index, operation in enumerate(patch):
        _check_json_patch_operation(index, operation)

    # One operation at a time, so an error can say which one failed.
    document: Any = copy.deepcopy(original)
    for index, operation in enumerate(patch):
        where = f"json patch {operation['op']} operation {index} on {operation['path']!r}"
        try:
            document = jsonpatch.JsonPatch([copy.deepcopy(operation)]).apply(
                document, in_place=True
            )
        except jsonpatch.InvalidJsonPatch as exc:
            raise bad_request(f"{where}: {_one_line(exc)}") from None
        except jsonpatch.JsonPatchTestFailed:
            raise _unprocessable(f"{where}: test failed") from None
        except (
            jsonpatch.JsonPatchException,
            jsonpatch.JsonPointerException,
            LookupError,
            TypeError,
        ) as exc:
            raise _unprocessable(f"{where}: {_one_line(exc)}") from None
    if not isinstance(document, dict):
        raise _unprocessable(f"the patched document is {_json_type(document)}, not an object")
    return document


def _check_json_patch_operation(index: int, operation: Any) -> None:
    if not isinstance(operation, dict):
        raise bad_request(
            f"json patch operation {index} must be an object, not {_json_type(operation)}"
        )
    op = operation.get("op")
    if op not in _JSON_PATCH_MEMBERS:
        raise bad_request(
            f"json patch operation {index} has an unknown op {op!r}: expected one of {', '.join(_JSON_PATCH_MEMBERS)}"
        )
    for member in _JSON_PATCH_MEMBERS[op]:
        if member not in operation:
            raise bad_request(f"json patch {op} operation {index} is missing {member!r}")
        if member != "value" and not _is_json_pointer(operation[member]):
            raise bad_request(
                f"json patch {op} operation {index}: {member!r} is not a JSON pointer: {operation[member]!r}"
            )


def _is_json_pointer(value: Any) -> bool:
    if not isinstance(value, str) or (value and not value.startswith("/")):
        return False
    escaped = value.split("~")[1:]
    return all(part[:1] in ("0", "1") for part in escaped)


# --- Strategic merge patch ---------------------------------------------------------------


def _merge_strategy(path: tuple[str, ...]) -> tuple[bool, str | None]:
    """(is a merge list, its merge key) for the list at `path`."""
    for length in range(min(len(path), _LONGEST_KEY), 0, -1):
        suffix = path[-length:]
        if suffix in MERGE_LISTS:
            return True, MERGE_LISTS[suffix]
    return False, None


def _merge_map(
    original: dict[str, Any], patch: dict[str, Any], path: tuple[str, ...]
) -> dict[str, Any]:
    """Merge `patch` into `original`, which the caller owns and which is updated in place."""
    directive = patch.get(_PATCH, _MISSING)
    if directive is not _MISSING:
        rest = {k: v for k, v in patch.items() if k != _PATCH}
        if directive == "replace":
            return _merge_map({}, rest, path)
        if directive == "delete":
            return {}
        if directive != "merge":
            raise bad_request(
                f"{_where(path)}: unknown $patch directive {directive!r}: expected replace, delete or merge"
            )
        patch = rest

    for key in patch:
        if (
            key.startswith("$")
            and key != _RETAIN_KEYS
            and not (
                (key.startswith(_SET_ORDER) and len(key) > len(_SET_ORDER))
                or (key.startswith(_DELETE_FROM) and len(key) > len(_DELETE_FROM))
            )
        ):
            raise bad_request(f"{_where(path)}: unknown strategic merge patch directive {key!r}")

    if _RETAIN_KEYS in patch:
        _retain_keys(original, patch, path)

    ordered = _set_element_orders(original, patch, path)

    deletions: list[tuple[str, Any]] = []
    for key, value in patch.items():
        if key.startswith(_DELETE_FROM):
            deletions.append((key[len(_DELETE_FROM) :], value))
            continue
        if key.startswith("$") or key in ordered:
            continue
        if value is None:
            original.pop(key, None)
            continue
        child = (*path, key)
        current = original.get(key, _MISSING)
        if isinstance(current, dict) and isinstance(value, dict):
            original[key] = _merge_map(current, value, child)
        elif isinstance(current, list) and isinstance(value, list) and _merge_strategy(child)[0]:
            original[key] = _merge_list(current, value, child)
        else:
            original[key] = _materialize(value, child)

    for field, values in deletions:
        if not isinstance(values, list):
            raise bad_request(f"{_where((*path, field))}: $deleteFromPrimitiveList must be a list")
        current = original.get(field)
        if isinstance(current, list):
            doomed = {_identity(v) for v in values}
            original[field] = [v for v in current if _identity(v) not in doomed]
    return original


def _materialize(value: Any, path: tuple[str, ...]) -> Any:
    """A patch value that lands where the original has nothing to merge with.

    Merging it into an empty value (rather than copying it) drops its nulls and resolves
    its directives, so no `$patch` or `$setElementOrder` key ends up in a stored object.
    """
    if isinstance(value, dict):
        return _merge_map({}, value, path)
    if isinstance(value, list):
        if _merge_strategy(path)[0]:
            return _merge_list([], value, path)
        return [_materialize(item, path) for item in value]
    return value


def _retain_keys(original: dict[str, Any], patch: dict[str, Any], path: tuple[str, ...]) -> None:
    retained = patch[_RETAIN_KEYS]
    if not isinstance(retained, list) or not all(isinstance(k, str) for k in retained):
        raise bad_request(f"{_where(path)}: $retainKeys must be a list of field names")
    for key, value in patch.items():
        if value is None or key.startswith("$"):
            continue
        if key not in retained:
            raise bad_request(
                f"{_where(path)}: field {key!r} is in the patch but not in $retainKeys"
            )
    for key in [k for k in original if k not in retained]:
        del original[key]


def _set_element_orders(
    original: dict[str, Any], patch: dict[str, Any], path: tuple[str, ...]
) -> set[str]:
    """Apply every `$setElementOrder/<list>` in `patch`; return the lists it merged.

    kubectl apply sends the full desired order of a merge list next to the changed
    elements only. The merged list puts the patch's elements in that order and slots each
    element found only in the live list back near its live neighbours (upstream's
    normalizeElementOrder and mergeSortedSlice).
    """
    done: set[str] = set()
    for key, order in patch.items():
        if not key.startswith(_SET_ORDER):
            continue
        field = key[len(_SET_ORDER) :]
        child = (*path, field)
        if not isinstance(order, list):
            raise bad_request(f"{_where(child)}: $setElementOrder must be a list")
        is_merge, merge_key = _merge_strategy(child)
        if not is_merge:
            continue  # a replaced list is already in the patch's order
        patch_list = patch.get(field, _MISSING)
        if patch_list is not _MISSING and not isinstance(patch_list, list):
            raise bad_request(f"{_where(child)}: expected a list next to its $setElementOrder")
        current = original.get(field)
        current = current if isinstance(current, list) else None
        if patch_list is _MISSING and current is None:
            continue
        identify = _identifier(merge_key)
        order_ids = [_order_entry_id(child, merge_key, entry) for entry in order]
        if patch_list is not _MISSING:
            _check_patch_follows_order(child, patch_list, order_ids, identify)
            merged = _merge_list(current or [], patch_list, child)
        else:
            merged = current or []
        original[field] = _ordered(
            merged, order_ids, [identify(v) for v in current or []], identify
        )
        done.add(field)
    return done


def _order_entry_id(path: tuple[str, ...], merge_key: str | None, entry: Any) -> Hashable:
    if merge_key is None:
        return _identity(entry)
    if not isinstance(entry, dict) or merge_key not in entry:
        raise bad_request(
            f"{_where(path)}: $setElementOrder entry {_compact(entry)} does not contain declared merge key {merge_key!r}"
        )
    return _identity(entry[merge_key])


def _check_patch_follows_order(
    path: tuple[str, ...],
    patch_list: list[Any],
    order_ids: list[Hashable],
    identify: Callable[[Any], Hashable],
) -> None:
    wanted = iter(order_ids)
    for item in patch_list:
        if isinstance(item, dict) and _PATCH in item:
            continue
        item_id = identify(item)
        if not any(item_id == order_id for order_id in wanted):
            raise bad_request(
                f"{_where(path)}: the order of the patch list doesn't match its $setElementOrder list"
            )


def _merge_list(original: list[Any], patch: list[Any], path: tuple[str, ...]) -> list[Any]:
    """Merge two lists of a field that upstream tags `patchStrategy:"merge"`."""
    if not original and not patch:
        return []
    _, merge_key = _merge_strategy(path)
    for item in (*original, *patch):
        if isinstance(item, list):
            raise _unprocessable(f"{_where(path)}: lists of lists are not supported")
        if isinstance(item, dict) != (merge_key is not None):
            expected = "objects" if merge_key is not None else "primitive values"
            raise bad_request(
                f"{_where(path)}: list element {_compact(item)} is not like the others: expected {expected}"
            )
    identify = _identifier(merge_key)

    if merge_key is None:
        merged: list[Any] = []
        seen: set[Hashable] = set()
        for item in (*original, *patch):
            if _identity(item) not in seen:
                seen.add(_identity(item))
                merged.append(item)
        return _ordered(
            merged, [_identity(v) for v in patch], [_identity(v) for v in original], identify
        )

    elements: list[dict[str, Any]] = []
    doomed: set[Hashable] = set()
    replace = False
    for item in patch:
        directive = item.get(_PATCH, _MISSING)
        if directive is _MISSING:
            elements.append(item)
        elif directive == "delete":
            if merge_key not in item:
                raise bad_request(
                    f"{_where(path)}: $patch: delete element {_compact(item)} does not contain declared merge key {merge_key!r}"
                )
            doomed.add(_identity(item[merge_key]))
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            rest = {k: v for k, v in item.items() if k != _PATCH}
            if rest:
                elements.append(rest)
        else:
            raise bad_request(
                f"{_where(path)}: unknown $patch directive {directive!r}: expected replace, delete or merge"
            )
    if replace:
        return [_merge_map({}, item, path) for item in elements]

    base = [item for item in original if identify(item) not in doomed]
    server_order = [identify(item) for item in base]
    merged = list(base)
    for item in elements:
        if merge_key not in item:
            raise bad_request(
                f"{_where(path)}: element {_compact(item)} does not contain declared merge key {merge_key!r}"
            )
        item_id = identify(item)
        at = next((i for i, m in enumerate(merged) if identify(m) == item_id), None)
        if at is None:
            merged.append(_merge_map({}, item, path))
        else:
            merged[at] = _merge_map(merged[at], item, path)
    return _ordered(merged, [identify(item) for item in elements], server_order, identify)


def _ordered(
    merged: list[Any],
    patch_order: list[Hashable],
    server_order: list[Hashable],
    identify: Callable[[Any], Hashable],
) -> list[Any]:
    """Order a merged list as upstream does.

    Elements named by the patch come in the patch's order. Elements only on the server
    keep their server order and are interleaved: one goes before a patch element when both
    are on the server and it was ahead there. A new element therefore lands ahead of the
    server-only ones that follow it, as upstream's mergeSortedSlice places it.
    """
    patch_at = _first_positions(patch_order)
    server_at = _first_positions(server_order)
    from_patch = sorted(
        (v for v in merged if identify(v) in patch_at), key=lambda v: patch_at[identify(v)]
    )
    server_only = sorted(
        (v for v in merged if identify(v) not in patch_at),
        key=lambda v: server_at.get(identify(v), len(server_at)),
    )
    result: list[Any] = []
    i = j = 0
    while i < len(server_only) and j < len(from_patch):
        left = server_at.get(identify(server_only[i]))
        right = server_at.get(identify(from_patch[j]))
        if left is not None and right is not None and left < right:
            result.append(server_only[i])
            i += 1
        else:
            result.append(from_patch[j])
            j += 1
    return result + server_only[i:] + from_patch[j:]


def _first_positions(ids: list[Hashable]) -> dict[Hashable, int]:
    positions: dict[Hashable, int] = {}
    for index, item_id in enumerate(ids):
        positions.setdefault(item_id, index)
    return positions


def _identifier(merge_key: str | None) -> Callable[[Any], Hashable]:
    if merge_key is None:
        return _identity
    return lambda item: _identity(
        item.get(merge_key, _MISSING) if isinstance(item, dict) else _MISSING
    )


def _identity(value: Any) -> Hashable:
    """A hashable stand-in for a JSON value, with true != 1 as in Go."""
    if value is _MISSING:
        return ("missing",)
    if isinstance(value, bool) or value is None:
        return ("literal", value)
    if isinstance(value, int | float):
        return ("number", value)
    if isinstance(value, str):
        return ("string", value)
    return ("json", json.dumps(value, sort_keys=True))


# --- helpers -----------------------------------------------------------------------------


def _unprocessable(detail: str) -> StatusError:
    return StatusError(
        422, "Invalid", f"the server rejected our request due to an error in our request: {detail}"
    )


def _where(path: tuple[str, ...]) -> str:
    return ".".join(path) if path else "the patch"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _compact(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 120 else text[:117] + "..."


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split(" in {", 1)[0].split())
    return text if len(text) <= 200 else text[:197] + "..."
