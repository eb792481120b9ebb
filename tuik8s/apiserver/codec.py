"""Request bodies in, content negotiation out.

Bodies are JSON or YAML (kubectl sends JSON even for apply-patch+yaml); anything that
does not decode is a 400 that says what was wrong, and a body whose aliases would
expand into a huge document (a YAML bomb) is refused before it is walked.
"""

from __future__ import annotations

from typing import Any

import orjson
import yaml

from tuik8s.api import errors, protobuf, schema
from tuik8s.api.patch import APPLY_PATCH, JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH
from tuik8s.api.registry import ResourceInfo
from tuik8s.apiserver.request import ApiRequest

try:
    _YamlLoader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - libyaml missing
    _YamlLoader = yaml.SafeLoader

PATCH_TYPES = (MERGE_PATCH, STRATEGIC_MERGE_PATCH, JSON_PATCH, APPLY_PATCH)
MAX_NODES = 200_000
MAX_DEPTH = 100


def wants_table(req: ApiRequest) -> bool:
    accept = req.header("Accept")
    if "as=Table" not in accept:
        return False
    # the first acceptable media type wins; Table is first when kubectl asks for it
    first = accept.split(",")[0]
    return "as=Table" in first


def _bounded(value: Any) -> None:
    """Refuse documents too big or too deep to be a Kubernetes object."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    count = 0
    seen: set[int] = set()
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise errors.StatusError(413, "RequestEntityTooLarge", "the request body has too many elements")
        if depth > MAX_DEPTH:
            raise errors.bad_request(f"the request body is nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, dict):
            if id(node) in seen:
                # an alias: YAML shares it, but serializing would copy it
                count += len(node)
            seen.add(id(node))
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            if id(node) in seen:
                count += len(node)
            seen.add(id(node))
            stack.extend((v, depth + 1) for v in node)


def decode(data: bytes, content_type: str = "application/json") -> Any:
    if not data.strip():
        raise errors.bad_request("the request body is empty: send the object as JSON or YAML")
    if content_type.startswith(protobuf.CONTENT_TYPE):
        # client-go's typed clients (every `kubectl create <kind>`) send protobuf bodies
        return protobuf.decode_k8s_protobuf(data)
    if "protobuf" in content_type:
        raise errors.unsupported_media_type(content_type)
    if "yaml" not in content_type:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as e:
            if content_type.startswith("application/json") or "json" in content_type:
                raise errors.bad_request(f"the request body is not valid JSON: {e}") from None
    try:
        loaded = yaml.load(data, Loader=_YamlLoader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as e:
        problem = str(e).splitlines()[0] if str(e) else "invalid YAML"
        raise errors.bad_request(f"the request body is not valid YAML: {problem}") from None
    except RecursionError:
        raise errors.bad_request(f"the request body is nested deeper than {MAX_DEPTH} levels") from None
    _bounded(loaded)
    try:
        # round-trip through JSON: YAML timestamps and other tags become plain JSON values
        return orjson.loads(orjson.dumps(loaded, default=str))
    except (orjson.JSONEncodeError, TypeError) as e:
        raise errors.bad_request(f"the request body cannot be represented as JSON: {e}") from None


def decode_body(req: ApiRequest) -> Any:
    return decode(req.body, req.header("Content-Type") or "application/json")


def decode_patch(req: ApiRequest, content_type: str) -> Any:
    if content_type not in PATCH_TYPES:
        raise errors.unsupported_media_type(content_type or "(none)")
    body = decode(req.body, "application/yaml" if content_type == APPLY_PATCH else "application/json")
    if content_type == JSON_PATCH:
        if not isinstance(body, list):
            raise errors.bad_request("a json patch must be a list of operations")
    elif not isinstance(body, dict):
        raise errors.bad_request(f"a {content_type} patch must be a JSON object")
    return body


def decode_delete_options(req: ApiRequest) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    if req.body.strip():
        body = decode(req.body, req.header("Content-Type") or "application/json")
        if not isinstance(body, dict):
            raise errors.bad_request("DeleteOptions must be a JSON object")
        opts = body
    q = req.query
    if q.get("gracePeriodSeconds"):
        try:
            opts["gracePeriodSeconds"] = int(q["gracePeriodSeconds"])
        except ValueError:
            raise errors.bad_request("gracePeriodSeconds must be an integer") from None
    if q.get("propagationPolicy"):
        opts["propagationPolicy"] = q["propagationPolicy"]
    policy = opts.get("propagationPolicy")
    if policy is not None and policy not in ("Orphan", "Background", "Foreground"):
        raise errors.bad_request(f'propagationPolicy: Unsupported value: "{policy}": supported values: "Orphan", "Background", "Foreground"')
    grace = opts.get("gracePeriodSeconds")
    if grace is not None and (not isinstance(grace, int) or isinstance(grace, bool) or grace < 0):
        raise errors.bad_request("gracePeriodSeconds must be a non-negative integer")
    return opts


def check_field_validation(
    req: ApiRequest, info: ResourceInfo, obj: dict[str, Any], *, verb: str = "create", patch: Any = None, patch_type: str = ""
) -> list[str]:
    """Apply ?fieldValidation= to the object a request would write, as kube-apiserver does:
    Strict raises, Warn (the default) returns warnings for the `Warning` header."""
    return schema.field_validation(
        info, obj, req.query.get("fieldValidation"), verb=verb, patch=patch, patch_type=patch_type
    )


def warning_headers(warnings: list[str]) -> dict[str, str]:
    if not warnings:
        return {}
    return {"Warning": ", ".join(schema.warning_header(w) for w in warnings)}
