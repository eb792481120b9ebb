"""Object name and metadata validation, mirroring apimachinery's.

The messages are upstream's word for word, because users compare what kubectl prints
against documentation and Stack Overflow answers written for real clusters. A message
reads `Invalid value: "Web_1": a lowercase RFC 1123 subdomain must ...`, the way
`field.Error.ErrorBody()` renders it; the field path travels separately in `FieldError`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from tuik8s.api.errors import FieldError

# metav1.CauseType values, the `reason` of each cause in a 422 Status.
REQUIRED = "FieldValueRequired"
INVALID = "FieldValueInvalid"
DUPLICATE = "FieldValueDuplicate"
NOT_SUPPORTED = "FieldValueNotSupported"
FORBIDDEN = "FieldValueForbidden"
TOO_LONG = "FieldValueTooLong"

DNS1123_LABEL_MAX_LENGTH = 63
DNS1123_SUBDOMAIN_MAX_LENGTH = 253
DNS1035_LABEL_MAX_LENGTH = 63
QUALIFIED_NAME_MAX_LENGTH = 63
LABEL_VALUE_MAX_LENGTH = 63
TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024

_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character"
)
_DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_DNS1035_LABEL_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
    "start with an alphabetic character, and end with an alphanumeric character"
)
_QNAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QNAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)
_LABEL_VALUE_FMT = "(" + _QNAME_FMT + ")?"
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, "
    "'-', '_' or '.', and must start and end with an alphanumeric character"
)

# Go's regexp is ASCII-only for these classes; re.ASCII keeps Python's the same.
_DNS1123_LABEL_RE = re.compile(_DNS1123_LABEL_FMT, re.ASCII)
_DNS1123_SUBDOMAIN_RE = re.compile(_DNS1123_SUBDOMAIN_FMT, re.ASCII)
_DNS1035_LABEL_RE = re.compile(_DNS1035_LABEL_FMT, re.ASCII)
_QNAME_RE = re.compile(_QNAME_FMT, re.ASCII)
_LABEL_VALUE_RE = re.compile(_LABEL_VALUE_FMT, re.ASCII)

FINALIZER_ORPHAN_DEPENDENTS = "orphan"
FINALIZER_DELETE_DEPENDENTS = "foregroundDeletion"

# An Event may not own anything: events are garbage themselves (upstream BannedOwners).
_BANNED_OWNERS = {("", "v1", "Event")}


# -- message helpers, as k8s.io/apimachinery/pkg/util/validation words them ---------------


def _max_len_error(length: int) -> str:
    return f"must be no more than {length} characters"


def _empty_error() -> str:
    return "must be non-empty"


def _regex_error(msg: str, fmt: str, *examples: str) -> str:
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    shown = " or ".join(f"'{e}'" for e in examples)
    return f"{msg} (e.g. {shown}, regex used for validation is '{fmt}')"


def go_quote(value: str) -> str:
    """`value` as Go's `%q` prints it, so messages quote names exactly as upstream does."""
    out = ['"']
    for ch in value:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch == " " or ch.isprintable():
            out.append(ch)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


_GO_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}


def go_value(value: Any) -> str:
    """A bad value the way `field.Error` prints it (`%q` for strings, `%v` for scalars)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return "[]string{" + ", ".join(go_quote(v) for v in value) + "}"
    if isinstance(value, Mapping):
        items = ", ".join(f"{go_value(k)}:{go_value(v)}" for k, v in value.items())
        return "map[string]interface {}{" + items + "}"
    if isinstance(value, list | tuple):
        return "[]interface {}{" + ", ".join(go_value(v) for v in value) + "}"
    return go_quote(str(value))


# -- FieldError constructors, as k8s.io/apimachinery/pkg/util/validation/field builds them --


def field_invalid(path: str, value: Any, detail: str) -> FieldError:
    message = f"Invalid value: {go_value(value)}"
    return FieldError(path, f"{message}: {detail}" if detail else message, INVALID)


def field_required(path: str, detail: str = "") -> FieldError:
    message = "Required value"
    return FieldError(path, f"{message}: {detail}" if detail else message, REQUIRED)


def field_forbidden(path: str, detail: str) -> FieldError:
    return FieldError(path, f"Forbidden: {detail}" if detail else "Forbidden", FORBIDDEN)


def field_duplicate(path: str, value: Any) -> FieldError:
    return FieldError(path, f"Duplicate value: {go_value(value)}", DUPLICATE)


def field_not_supported(path: str, value: Any, supported: Iterable[str]) -> FieldError:
    message = f"Unsupported value: {go_value(value)}"
    quoted = ", ".join(go_quote(v) for v in supported)
    if quoted:
        message += f": supported values: {quoted}"
    return FieldError(path, message, NOT_SUPPORTED)


def field_too_long(path: str, max_length: int) -> FieldError:
    if max_length >= 0:
        unit = "byte" if max_length == 1 else "bytes"
        detail = f"may not be more than {max_length} {unit}"
    else:
        detail = "value is too long"
    return FieldError(path, f"Too long: {detail}", TOO_LONG)


# -- string checks ---------------------------------------------------------------------------


def is_dns1123_subdomain(value: str) -> list[str]:
    """Most object names (pods, deployments, configmaps ...): `example.com`."""
    errs = []
    if len(value) > DNS1123_SUBDOMAIN_MAX_LENGTH:
        errs.append(_max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH))
    if not _DNS1123_SUBDOMAIN_RE.fullmatch(value):
        errs.append(_regex_error(_DNS1123_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def is_dns1123_label(value: str) -> list[str]:
    """Namespace and node-local names: `my-name`, no dots."""
    errs = []
    if len(value) > DNS1123_LABEL_MAX_LENGTH:
        errs.append(_max_len_error(DNS1123_LABEL_MAX_LENGTH))
    if not _DNS1123_LABEL_RE.fullmatch(value):
        if _DNS1123_SUBDOMAIN_RE.fullmatch(value):
            # A valid subdomain within the length limit: only the dots are wrong.
            errs.append("must not contain dots")
        else:
            errs.append(_regex_error(_DNS1123_LABEL_MSG, _DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errs


def is_dns1035_label(value: str) -> list[str]:
    """Service names: they become DNS names, so they must start with a letter."""
    errs = []
    if len(value) > DNS1035_LABEL_MAX_LENGTH:
        errs.append(_max_len_error(DNS1035_LABEL_MAX_LENGTH))
    if not _DNS1035_LABEL_RE.fullmatch(value):
        errs.append(_regex_error(_DNS1035_LABEL_MSG, _DNS1035_LABEL_FMT, "my-name", "abc-123"))
    return errs


def is_qualified_name(value: str) -> list[str]:
    """Label and annotation keys, finalizers: `name` or `dns.subdomain/name`."""
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part " + _empty_error())
        else:
            errs.extend("prefix part " + msg for msg in is_dns1123_subdomain(prefix))
    else:
        return [
            "a qualified name "
            + _regex_error(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part " + _empty_error())
    elif len(name) > QUALIFIED_NAME_MAX_LENGTH:
        errs.append("name part " + _max_len_error(QUALIFIED_NAME_MAX_LENGTH))
    if not _QNAME_RE.fullmatch(name):
        errs.append(
            "name part " + _regex_error(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name", "123-abc")
        )
    return errs


def is_valid_label_value(value: str) -> list[str]:
    """Label values: empty, or up to 63 alphanumerics with '-', '_', '.' inside."""
    errs = []
    if len(value) > LABEL_VALUE_MAX_LENGTH:
        errs.append(_max_len_error(LABEL_VALUE_MAX_LENGTH))
    if not _LABEL_VALUE_RE.fullmatch(value):
        errs.append(
            _regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345")
        )
    return errs


# -- metadata --------------------------------------------------------------------------------


def _string_map(value: object, path: str, what: str) -> tuple[dict[str, str], list[FieldError]]:
    """The string entries of a map field, and errors for everything that is not one.

    Upstream rejects these at decoding; we get JSON as-is, so the shape is checked here.
    """
    if value is None:
        return {}, []
    if not isinstance(value, Mapping):
        return {}, [
            field_invalid(path, value, f"{what} must be a map of string keys to string values")
        ]
    good: dict[str, str] = {}
    errs: list[FieldError] = []
    for key, item in value.items():
        if not isinstance(key, str):
            errs.append(field_invalid(path, key, f"{what} keys must be strings"))
        elif not isinstance(item, str):
            errs.append(field_invalid(f"{path}[{key}]", item, f"{what} values must be strings"))
        else:
            good[key] = item
    return good, errs


def validate_labels(labels: object, path: str) -> list[FieldError]:
    """`metadata.labels` (or a selector's matchLabels): qualified keys, label values."""
    good, errs = _string_map(labels, path, "labels")
    for key, value in good.items():
        errs.extend(field_invalid(path, key, msg) for msg in is_qualified_name(key))
        errs.extend(field_invalid(path, value, msg) for msg in is_valid_label_value(value))
    return errs


def validate_annotations(annotations: object, path: str) -> list[FieldError]:
    """`metadata.annotations`: qualified keys (any case), at most 256 KiB in all."""
    good, errs = _string_map(annotations, path, "annotations")
    for key in good:
        # Upstream: the rule is QualifiedName except that case does not matter.
        errs.extend(field_invalid(path, key, msg) for msg in is_qualified_name(key.lower()))
    total = sum(len(k.encode()) + len(v.encode()) for k, v in good.items())
    if total > TOTAL_ANNOTATION_SIZE_LIMIT:
        errs.append(field_too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT))
    return errs


def _mask_trailing_dash(name: str) -> str:
    # Upstream's maskTrailingDash, quirk included: it drops the character before the dash
    # as well, which changes nothing about validity since the mask is alphanumeric.
    if len(name) > 1 and name.endswith("-"):
        return name[:-2] + "a"
    return name


def _split_api_version(api_version: str) -> tuple[str, str] | None:
    """(group, version) like schema.ParseGroupVersion, None when it does not parse."""
    if not api_version:
        return "", ""
    parts = api_version.split("/")
    if len(parts) == 1:
        return "", parts[0]
    if len(parts) == 2:
        return parts[0], parts[1]
    return None


def _validate_owner_references(refs: object, path: str) -> list[FieldError]:
    if refs is None:
        return []
    if not isinstance(refs, list):
        return [field_invalid(path, refs, "ownerReferences must be a list")]
    errs: list[FieldError] = []
    first_controller = ""
    for i, ref in enumerate(refs):
        if not isinstance(ref, Mapping):
            errs.append(field_invalid(f"{path}[{i}]", ref, "an owner reference must be an object"))
            continue
        bad_type = [
            k
            for k in ("apiVersion", "kind", "name", "uid")
            if ref.get(k) is not None and not isinstance(ref.get(k), str)
        ]
        for key in bad_type:
            errs.append(field_invalid(f"{path}.{key}", ref[key], f"{key} must be a string"))
        api_version, kind, name, uid = (
            _str_or_empty(ref.get(k)) for k in ("apiVersion", "kind", "name", "uid")
        )
        # Upstream reports these on the list's path, not the item's.
        group, version = _split_api_version(api_version) or ("", "")
        if not version and "apiVersion" not in bad_type:
            errs.append(
                field_invalid(f"{path}.apiVersion", api_version, "version must not be empty")
            )
        if not kind and "kind" not in bad_type:
            errs.append(field_invalid(f"{path}.kind", kind, "kind must not be empty"))
        if not name and "name" not in bad_type:
            errs.append(field_invalid(f"{path}.name", name, "name must not be empty"))
        if not uid and "uid" not in bad_type:
            errs.append(field_invalid(f"{path}.uid", uid, "uid must not be empty"))
        if (group, version, kind) in _BANNED_OWNERS:
            errs.append(
                field_invalid(
                    path,
                    dict(ref),
                    f"{group}/{version}, Kind={kind} is disallowed from being an owner",
                )
            )
        for key in ("controller", "blockOwnerDeletion"):
            if ref.get(key) is not None and not isinstance(ref.get(key), bool):
                errs.append(field_invalid(f"{path}.{key}", ref[key], f"{key} must be a boolean"))
        if ref.get("controller") is True:
            current = f"{kind}/{name}"
            if first_controller:
                errs.append(
                    field_invalid(
                        path,
                        [
                            f"{r.get('kind') or ''}/{r.get('name') or ''}"
                            for r in refs
                            if isinstance(r, Mapping)
                        ],
                        "Only one reference can have Controller set to true. "
                        f'Found "true" in references for {first_controller} and {current}',
                    )
                )
            else:
                first_controller = current
    return errs


def _str_or_empty(value: object) -> str:
    return value if isinstance(value, str) else ""


def _validate_finalizers(finalizers: object, path: str) -> list[FieldError]:
    if finalizers is None:
        return []
    if not isinstance(finalizers, list):
        return [field_invalid(path, finalizers, "finalizers must be a list of strings")]
    errs: list[FieldError] = []
    for finalizer in finalizers:
        if not isinstance(finalizer, str):
            errs.append(field_invalid(path, finalizer, "finalizers must be strings"))
            continue
        errs.extend(field_invalid(path, finalizer, msg) for msg in is_qualified_name(finalizer))
    if FINALIZER_ORPHAN_DEPENDENTS in finalizers and FINALIZER_DELETE_DEPENDENTS in finalizers:
        errs.append(
            field_invalid(
                path,
                finalizers,
                f"finalizer {FINALIZER_ORPHAN_DEPENDENTS} and {FINALIZER_DELETE_DEPENDENTS} cannot be both set",
            )
        )
    return errs


def validate_object_meta(
    meta: object,
    *,
    namespaced: bool,
    name_check: Callable[[str], list[str]] = is_dns1123_subdomain,
    path: str = "metadata",
) -> list[FieldError]:
    """An object's metadata on create, like apimachinery's ValidateObjectMetaAccessor.

    `name_check` is the kind's name rule (is_dns1123_subdomain for most, is_dns1123_label
    for namespaces, is_dns1035_label for services). generateName is checked as a prefix:
    a trailing '-' is allowed there since random characters follow it.
    """
    if meta is None:
        meta = {}
    if not isinstance(meta, Mapping):
        return [field_invalid(path, meta, "metadata must be an object")]
    errs: list[FieldError] = []

    strings: dict[str, str] = {}
    for key in ("name", "generateName", "namespace"):
        value = meta.get(key)
        if value is None:
            strings[key] = ""
        elif isinstance(value, str):
            strings[key] = value
        else:
            errs.append(field_invalid(f"{path}.{key}", value, f"{key} must be a string"))
            strings[key] = ""
    name, generate_name, namespace = strings["name"], strings["generateName"], strings["namespace"]

    if generate_name:
        errs.extend(
            field_invalid(f"{path}.generateName", generate_name, msg)
            for msg in name_check(_mask_trailing_dash(generate_name))
        )
    if not name:
        if not generate_name and "name" not in _bad(errs, path):
            errs.append(field_required(f"{path}.name", "name or generateName is required"))
    else:
        errs.extend(field_invalid(f"{path}.name", name, msg) for msg in name_check(name))

    if namespaced:
        if not namespace:
            if "namespace" not in _bad(errs, path):
                errs.append(field_required(f"{path}.namespace"))
        else:
            errs.extend(
                field_invalid(f"{path}.namespace", namespace, msg)
                for msg in is_dns1123_label(namespace)
            )
    elif namespace:
        errs.append(field_forbidden(f"{path}.namespace", "not allowed on this type"))

    generation = meta.get("generation")
    if generation is not None:
        if not isinstance(generation, int) or isinstance(generation, bool):
            errs.append(
                field_invalid(f"{path}.generation", generation, "generation must be an integer")
            )
        elif generation < 0:
            errs.append(
                field_invalid(
                    f"{path}.generation", generation, "must be greater than or equal to 0"
                )
            )

    errs.extend(validate_labels(meta.get("labels"), f"{path}.labels"))
    errs.extend(validate_annotations(meta.get("annotations"), f"{path}.annotations"))
    errs.extend(_validate_owner_references(meta.get("ownerReferences"), f"{path}.ownerReferences"))
    errs.extend(_validate_finalizers(meta.get("finalizers"), f"{path}.finalizers"))
    return errs


def _bad(errs: list[FieldError], path: str) -> set[str]:
    """The metadata keys already reported as the wrong type, so they are not also 'required'."""
    prefix = f"{path}."
    return {e.field[len(prefix) :] for e in errs if e.field.startswith(prefix)}
