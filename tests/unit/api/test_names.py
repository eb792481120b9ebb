"""Names and metadata validated with apimachinery's rules and messages."""

from __future__ import annotations

import pytest

from tuik8s.api.errors import FieldError
from tuik8s.api.names import (
    go_quote,
    is_dns1035_label,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_qualified_name,
    is_valid_label_value,
    validate_annotations,
    validate_labels,
    validate_object_meta,
)

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
    "start and end with an alphanumeric character (e.g. 'my-name' or '123-abc', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name' or 'abc-123', "
    "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
QNAME_PART_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName' or 'my.name' or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'MyValue' or 'my_value' or '12345', "
    "regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)

# -- DNS names -------------------------------------------------------------------------------

GOOD_SUBDOMAINS = [
    "a",
    "ab",
    "abc",
    "a1",
    "a-1",
    "a--1--2--b",
    "0",
    "01",
    "a.a",
    "a.b.c",
    "1.2.3",
    "a0.b1",
    "example.com",
    "a" * 253,
]
BAD_SUBDOMAINS = [
    "",
    "A",
    "ABC",
    "aBc",
    "A1",
    "A-1",
    "1-A",
    "-",
    "a-",
    "-a",
    "1-",
    "-1",
    "_",
    "a_",
    "_a",
    "a_b",
    "a.",
    "a..b",
    ".a",
    "a@b",
    "a,b",
    "a b",
    "a;b",
    "Web_1",
    "é",
]


@pytest.mark.parametrize("value", GOOD_SUBDOMAINS, ids=lambda v: v[:20])
def test_dns1123_subdomain_good(value: str) -> None:
    assert is_dns1123_subdomain(value) == []


@pytest.mark.parametrize("value", BAD_SUBDOMAINS, ids=lambda v: repr(v))
def test_dns1123_subdomain_bad(value: str) -> None:
    assert is_dns1123_subdomain(value) == [SUBDOMAIN_MSG]


def test_dns1123_subdomain_too_long() -> None:
    assert is_dns1123_subdomain("a" * 254) == ["must be no more than 253 characters"]
    assert is_dns1123_subdomain("A" * 254) == ["must be no more than 253 characters", SUBDOMAIN_MSG]


GOOD_LABELS = ["a", "ab", "abc", "a1", "a-1", "a--1--2--b", "0", "01", "a" * 63]
BAD_LABELS = [
    ("", [LABEL_MSG]),
    ("A", [LABEL_MSG]),
    ("a-", [LABEL_MSG]),
    ("-a", [LABEL_MSG]),
    ("a_b", [LABEL_MSG]),
    ("a.b", ["must not contain dots"]),
    ("example.com", ["must not contain dots"]),
    ("a" * 64, ["must be no more than 63 characters"]),
]


@pytest.mark.parametrize("value", GOOD_LABELS, ids=lambda v: v[:20])
def test_dns1123_label_good(value: str) -> None:
    assert is_dns1123_label(value) == []


@pytest.mark.parametrize(("value", "errors"), BAD_LABELS, ids=[repr(v[:20]) for v, _ in BAD_LABELS])
def test_dns1123_label_bad(value: str, errors: list[str]) -> None:
    assert is_dns1123_label(value) == errors


GOOD_DNS1035 = ["a", "ab", "abc", "a1", "a-1", "a--1--2--b", "web", "a" * 63]
BAD_DNS1035 = ["", "0", "01", "0a", "1web", "A", "a-", "-a", "a.b", "a_b", "Web"]


@pytest.mark.parametrize("value", GOOD_DNS1035, ids=lambda v: v[:20])
def test_dns1035_label_good(value: str) -> None:
    assert is_dns1035_label(value) == []


@pytest.mark.parametrize("value", BAD_DNS1035, ids=lambda v: repr(v))
def test_dns1035_label_bad(value: str) -> None:
    assert is_dns1035_label(value) == [DNS1035_MSG]


def test_dns1035_label_too_long() -> None:
    assert is_dns1035_label("a" * 64) == ["must be no more than 63 characters"]


# -- qualified names and label values --------------------------------------------------------

GOOD_QUALIFIED = [
    "simple",
    "now-with-dashes",
    "1-starts-with-num",
    "1234",
    "simple/simple",
    "now-with-dashes/simple",
    "now-with-dashes/now-with-dashes",
    "now.with.dots/simple",
    "now-with.dashes-and.dots/simple",
    "1-num.2-num/3-num",
    "1234/5678",
    "1.2.3.4/5678",
    "Uppercase_Is_OK_123",
    "example.com/Uppercase_Is_OK_123",
    "requests.storage-foo",
    "a" * 63,
    "a" * 253 + "/" + "b" * 63,
    "app.kubernetes.io/name",
]


@pytest.mark.parametrize("value", GOOD_QUALIFIED, ids=lambda v: v[:30])
def test_qualified_name_good(value: str) -> None:
    assert is_qualified_name(value) == []


BAD_QUALIFIED = [
    ("nospecialchars%^=@", ["name part " + QNAME_PART_MSG]),
    ("cantendwithadash-", ["name part " + QNAME_PART_MSG]),
    ("-cantstartwithadash-", ["name part " + QNAME_PART_MSG]),
    ("", ["name part must be non-empty", "name part " + QNAME_PART_MSG]),
    ("example.com/", ["name part must be non-empty", "name part " + QNAME_PART_MSG]),
    ("/simple", ["prefix part must be non-empty"]),
    ("Example.com/abc", ["prefix part " + SUBDOMAIN_MSG]),
    ("example_com/abc", ["prefix part " + SUBDOMAIN_MSG]),
    ("a" * 64, ["name part must be no more than 63 characters"]),
    ("a" * 254 + "/abc", ["prefix part must be no more than 253 characters"]),
    (
        "only/one/slash",
        [
            "a qualified name "
            + QNAME_PART_MSG
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ],
    ),
]


@pytest.mark.parametrize(
    ("value", "errors"), BAD_QUALIFIED, ids=[repr(v[:24]) for v, _ in BAD_QUALIFIED]
)
def test_qualified_name_bad(value: str, errors: list[str]) -> None:
    assert is_qualified_name(value) == errors


GOOD_LABEL_VALUES = [
    "simple",
    "now-with-dashes",
    "1-starts-with-num",
    "end-with-num-1",
    "1234",
    "a" * 63,
    "",
    "my_value",
    "v1.2.3",
]
BAD_LABEL_VALUES = [
    "nospecialchars%^=@",
    "Tama-nui-te-rā.is_the_Māori_sun",
    "\\backslashes\\are\\bad",
    "-starts-with-dash",
    "ends-with-dash-",
    ".starts.with.dot",
    "ends.with.dot.",
    "has space",
    "a/b",
]


@pytest.mark.parametrize("value", GOOD_LABEL_VALUES, ids=lambda v: repr(v[:20]))
def test_label_value_good(value: str) -> None:
    assert is_valid_label_value(value) == []


@pytest.mark.parametrize("value", BAD_LABEL_VALUES, ids=lambda v: repr(v[:20]))
def test_label_value_bad(value: str) -> None:
    assert is_valid_label_value(value) == [LABEL_VALUE_MSG]


def test_label_value_too_long() -> None:
    assert is_valid_label_value("a" * 64) == ["must be no more than 63 characters"]


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("web", '"web"'),
        ('a"b', '"a\\"b"'),
        ("a\\b", '"a\\\\b"'),
        ("a\nb", '"a\\nb"'),
        ("\x00", '"\\x00"'),
        ("rā", '"rā"'),
    ],
    ids=["plain", "quote", "backslash", "newline", "nul", "unicode"],
)
def test_go_quote(value: str, quoted: str) -> None:
    assert go_quote(value) == quoted


# -- labels and annotations ------------------------------------------------------------------


def _shown(errors: list[FieldError]) -> list[tuple[str, str, str]]:
    return [(e.field, e.type, e.message) for e in errors]


def test_validate_labels_good() -> None:
    assert (
        validate_labels(
            {"app": "web", "app.kubernetes.io/name": "blog", "empty": ""}, "metadata.labels"
        )
        == []
    )
    assert validate_labels(None, "metadata.labels") == []
    assert validate_labels({}, "metadata.labels") == []


BAD_LABEL_MAPS = [
    (
        "bad-key",
        {"a_": "x"},
        [
            (
                "metadata.labels",
                "FieldValueInvalid",
                'Invalid value: "a_": name part ' + QNAME_PART_MSG,
            )
        ],
    ),
    (
        "bad-value",
        {"app": "web_"},
        [("metadata.labels", "FieldValueInvalid", f'Invalid value: "web_": {LABEL_VALUE_MSG}')],
    ),
    (
        "non-string-value",
        {"replicas": 3},
        [("metadata.labels[replicas]", "FieldValueInvalid", None)],
    ),
    ("null-value", {"app": None}, [("metadata.labels[app]", "FieldValueInvalid", None)]),
    ("not-a-map", ["app=web"], [("metadata.labels", "FieldValueInvalid", None)]),
    ("string", "app=web", [("metadata.labels", "FieldValueInvalid", None)]),
]


@pytest.mark.parametrize(
    ("labels", "expected"), [b[1:] for b in BAD_LABEL_MAPS], ids=[b[0] for b in BAD_LABEL_MAPS]
)
def test_validate_labels_bad(labels: object, expected: list) -> None:
    errors = _shown(validate_labels(labels, "metadata.labels"))
    assert [(f, t) for f, t, _ in errors] == [(f, t) for f, t, _ in expected]
    for (_, _, message), (_, _, want) in zip(errors, expected, strict=True):
        if want is not None:
            assert message == want
        assert "\n" not in message


def test_validate_annotations() -> None:
    assert (
        validate_annotations(
            {
                "Example.com/Foo": "x" * 1000,
                "kubectl.kubernetes.io/last-applied-configuration": "{}",
            },
            "metadata.annotations",
        )
        == []
    )
    errors = validate_annotations({"a/b/c": "x"}, "metadata.annotations")
    assert _shown(errors)[0][:2] == ("metadata.annotations", "FieldValueInvalid")
    assert errors[0].message.startswith('Invalid value: "a/b/c": a qualified name must consist')


def test_validate_annotations_total_size() -> None:
    at_limit = {"k": "x" * (256 * 1024 - 1)}
    assert validate_annotations(at_limit, "metadata.annotations") == []
    over = {"k": "x" * (256 * 1024)}
    assert _shown(validate_annotations(over, "metadata.annotations")) == [
        ("metadata.annotations", "FieldValueTooLong", "Too long: may not be more than 262144 bytes")
    ]
    # the limit counts bytes, not characters
    multibyte = {"k": "é" * (128 * 1024)}
    assert validate_annotations(multibyte, "metadata.annotations")[0].type == "FieldValueTooLong"


def test_validate_annotations_wrong_shape() -> None:
    assert (
        validate_annotations({"a": 1}, "metadata.annotations")[0].field == "metadata.annotations[a]"
    )
    assert validate_annotations("a=b", "metadata.annotations")[0].type == "FieldValueInvalid"


# -- object metadata -------------------------------------------------------------------------

GOOD_META = [
    ("namespaced", {"name": "web", "namespace": "default"}, True),
    ("cluster-scoped", {"name": "node-1"}, False),
    ("generate-name", {"generateName": "web-", "namespace": "default"}, True),
    ("generate-name-no-dash", {"generateName": "web", "namespace": "default"}, True),
    (
        "everything",
        {
            "name": "web.example",
            "namespace": "prod",
            "generation": 3,
            "labels": {"app": "web"},
            "annotations": {"note": "hi"},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": "web-1",
                    "uid": "u1",
                    "controller": True,
                },
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "name": "c",
                    "uid": "u2",
                    "controller": False,
                },
            ],
            "finalizers": ["kubernetes.io/pv-protection", "foregroundDeletion"],
        },
        True,
    ),
]


@pytest.mark.parametrize(
    ("meta", "namespaced"), [g[1:] for g in GOOD_META], ids=[g[0] for g in GOOD_META]
)
def test_validate_object_meta_good(meta: dict, namespaced: bool) -> None:
    assert validate_object_meta(meta, namespaced=namespaced) == []


BAD_META = [
    (
        "no-name",
        {"namespace": "default"},
        True,
        [
            (
                "metadata.name",
                "FieldValueRequired",
                "Required value: name or generateName is required",
            )
        ],
    ),
    (
        "no-metadata",
        None,
        False,
        [
            (
                "metadata.name",
                "FieldValueRequired",
                "Required value: name or generateName is required",
            )
        ],
    ),
    (
        "bad-name",
        {"name": "Web_1", "namespace": "default"},
        True,
        [("metadata.name", "FieldValueInvalid", f'Invalid value: "Web_1": {SUBDOMAIN_MSG}')],
    ),
    (
        "bad-generate-name",
        {"generateName": "Web-", "namespace": "default"},
        True,
        [("metadata.generateName", "FieldValueInvalid", f'Invalid value: "Web-": {SUBDOMAIN_MSG}')],
    ),
    (
        "no-namespace",
        {"name": "web"},
        True,
        [("metadata.namespace", "FieldValueRequired", "Required value")],
    ),
    (
        "bad-namespace",
        {"name": "web", "namespace": "a.b"},
        True,
        [
            (
                "metadata.namespace",
                "FieldValueInvalid",
                'Invalid value: "a.b": must not contain dots',
            )
        ],
    ),
    (
        "namespace-on-cluster-scoped",
        {"name": "n1", "namespace": "default"},
        False,
        [("metadata.namespace", "FieldValueForbidden", "Forbidden: not allowed on this type")],
    ),
    (
        "name-not-string",
        {"name": 5},
        False,
        [("metadata.name", "FieldValueInvalid", "Invalid value: 5: name must be a string")],
    ),
    (
        "negative-generation",
        {"name": "a", "generation": -1},
        False,
        [
            (
                "metadata.generation",
                "FieldValueInvalid",
                "Invalid value: -1: must be greater than or equal to 0",
            )
        ],
    ),
    (
        "bad-label",
        {"name": "a", "labels": {"app": "web_"}},
        False,
        [("metadata.labels", "FieldValueInvalid", None)],
    ),
    (
        "bad-annotation",
        {"name": "a", "annotations": {"-a": "x"}},
        False,
        [("metadata.annotations", "FieldValueInvalid", None)],
    ),
    (
        "owner-missing-fields",
        {"name": "a", "ownerReferences": [{}]},
        False,
        [
            (
                "metadata.ownerReferences.apiVersion",
                "FieldValueInvalid",
                'Invalid value: "": version must not be empty',
            ),
            (
                "metadata.ownerReferences.kind",
                "FieldValueInvalid",
                'Invalid value: "": kind must not be empty',
            ),
            (
                "metadata.ownerReferences.name",
                "FieldValueInvalid",
                'Invalid value: "": name must not be empty',
            ),
            (
                "metadata.ownerReferences.uid",
                "FieldValueInvalid",
                'Invalid value: "": uid must not be empty',
            ),
        ],
    ),
    (
        "owner-group-without-version",
        {
            "name": "a",
            "ownerReferences": [
                {"apiVersion": "apps/", "kind": "ReplicaSet", "name": "r", "uid": "u"}
            ],
        },
        False,
        [
            (
                "metadata.ownerReferences.apiVersion",
                "FieldValueInvalid",
                'Invalid value: "apps/": version must not be empty',
            )
        ],
    ),
    (
        "owner-event",
        {
            "name": "a",
            "ownerReferences": [{"apiVersion": "v1", "kind": "Event", "name": "e", "uid": "u"}],
        },
        False,
        [("metadata.ownerReferences", "FieldValueInvalid", None)],
    ),
    (
        "two-controllers",
        {
            "name": "a",
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": "r1",
                    "uid": "u1",
                    "controller": True,
                },
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": "r2",
                    "uid": "u2",
                    "controller": True,
                },
            ],
        },
        False,
        [("metadata.ownerReferences", "FieldValueInvalid", None)],
    ),
    (
        "owner-refs-not-list",
        {"name": "a", "ownerReferences": {"kind": "X"}},
        False,
        [("metadata.ownerReferences", "FieldValueInvalid", None)],
    ),
    (
        "bad-finalizer",
        {"name": "a", "finalizers": ["a/b/c"]},
        False,
        [("metadata.finalizers", "FieldValueInvalid", None)],
    ),
    (
        "orphan-and-foreground",
        {"name": "a", "finalizers": ["orphan", "foregroundDeletion"]},
        False,
        [("metadata.finalizers", "FieldValueInvalid", None)],
    ),
    (
        "finalizer-not-string",
        {"name": "a", "finalizers": [1]},
        False,
        [("metadata.finalizers", "FieldValueInvalid", None)],
    ),
    ("metadata-not-object", "web", False, [("metadata", "FieldValueInvalid", None)]),
]


@pytest.mark.parametrize(
    ("meta", "namespaced", "expected"), [b[1:] for b in BAD_META], ids=[b[0] for b in BAD_META]
)
def test_validate_object_meta_bad(meta: object, namespaced: bool, expected: list) -> None:
    errors = _shown(validate_object_meta(meta, namespaced=namespaced))
    assert [(f, t) for f, t, _ in errors] == [(f, t) for f, t, _ in expected]
    for (_, _, message), (_, _, want) in zip(errors, expected, strict=True):
        if want is not None:
            assert message == want
        assert "\n" not in message


def test_validate_object_meta_messages_read_like_upstream() -> None:
    [two_controllers] = validate_object_meta(
        {
            "name": "a",
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": "r1",
                    "uid": "u1",
                    "controller": True,
                },
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": "r2",
                    "uid": "u2",
                    "controller": True,
                },
            ],
        },
        namespaced=False,
    )
    assert two_controllers.message.endswith(
        'Only one reference can have Controller set to true. Found "true" in references for '
        "ReplicaSet/r1 and ReplicaSet/r2"
    )
    [event_owner] = validate_object_meta(
        {
            "name": "a",
            "ownerReferences": [{"apiVersion": "v1", "kind": "Event", "name": "e", "uid": "u"}],
        },
        namespaced=False,
    )
    assert event_owner.message.endswith(": /v1, Kind=Event is disallowed from being an owner")
    [both] = validate_object_meta(
        {"name": "a", "finalizers": ["orphan", "foregroundDeletion"]}, namespaced=False
    )
    assert both.message.endswith(": finalizer orphan and foregroundDeletion cannot be both set")


NAME_CHECKS = [
    ("service-dns1035", is_dns1035_label, "1web", False),
    ("service-ok", is_dns1035_label, "web", True),
    ("namespace-dns1123-label", is_dns1123_label, "a.b", False),
    ("namespace-ok", is_dns1123_label, "kube-system", True),
]


@pytest.mark.parametrize(
    ("check", "name", "ok"), [n[1:] for n in NAME_CHECKS], ids=[n[0] for n in NAME_CHECKS]
)
def test_validate_object_meta_name_check(check, name: str, ok: bool) -> None:
    errors = validate_object_meta({"name": name}, namespaced=False, name_check=check)
    assert (errors == []) is ok
    if not ok:
        assert errors[0].field == "metadata.name"


def test_validate_object_meta_generate_name_is_a_prefix() -> None:
    # A trailing dash is fine in generateName: random characters follow it.
    assert (
        validate_object_meta(
            {"generateName": "web-"}, namespaced=False, name_check=is_dns1035_label
        )
        == []
    )
    errors = validate_object_meta({"generateName": "-"}, namespaced=False)
    assert [e.field for e in errors] == ["metadata.generateName"]


def test_validate_object_meta_custom_path() -> None:
    errors = validate_object_meta({}, namespaced=True, path="spec.template.metadata")
    assert [e.field for e in errors] == [
        "spec.template.metadata.name",
        "spec.template.metadata.namespace",
    ]


def test_field_errors_render_for_a_status() -> None:
    [error] = validate_object_meta({"name": "Web_1"}, namespaced=False)
    assert str(error) == f'metadata.name: Invalid value: "Web_1": {SUBDOMAIN_MSG}'
