"""Label and field selectors: upstream's grammar, matching rules and error wording."""

from __future__ import annotations

import re

import pytest

from tuik8s.api.selectors import (
    FieldSelector,
    LabelSelector,
    SelectorError,
    node_selector_term_matches,
    nothing,
    parse_field_selector,
    parse_label_selector,
    selector_from_spec,
)

# -- label selector strings ------------------------------------------------------------------

CANONICAL = [
    ("", ""),
    ("app=web", "app=web"),
    ("tier in (b,a),app=web", "app=web,tier in (a,b)"),
    ("x=a,y=b,z=c", "x=a,y=b,z=c"),
    ("x!=y", "x!=y"),
    ("x==y", "x==y"),
    ("x", "x"),
    ("!x", "!x"),
    ("x,!y", "x,!y"),
    ("x>1", "x>1"),
    ("x<10", "x<10"),
    ("x in (foo,,baz),y,z notin ()", "x in (,baz,foo),y,z notin ()"),
    ("x in (a, b)", "x in (a,b)"),
    ("  app = web ,  tier notin (a) ", "app=web,tier notin (a)"),
    ("x=,z=", "x=,z="),
    ("notin=in", "notin=in"),
    ("x in (in,notin)", "x in (in,notin)"),
    ("example.com/app=web", "example.com/app=web"),
    ("x in (a,a)", "x in (a)"),
]


@pytest.mark.parametrize(("text", "canonical"), CANONICAL, ids=[t or "empty" for t, _ in CANONICAL])
def test_parse_label_selector_canonical_string(text: str, canonical: str) -> None:
    selector = parse_label_selector(text)
    assert str(selector) == canonical
    assert parse_label_selector(str(selector)) == selector


MATCHES = [
    ("", {"x": "y"}, True),
    ("", None, True),
    ("x=y", {"x": "y"}, True),
    ("x==y", {"x": "y"}, True),
    ("x=y,z=w", {"x": "y", "z": "w"}, True),
    ("x!=y,z!=w", {"x": "z", "z": "a"}, True),
    ("x!=y", {}, True),
    ("notin=in", {"notin": "in"}, True),
    ("x", {"x": "z"}, True),
    ("x", {"x": ""}, True),
    ("!x", {"y": "z"}, True),
    ("!x", None, True),
    ("x>1", {"x": "2"}, True),
    ("x<1", {"x": "0"}, True),
    ("x<1", {"x": "-5"}, True),
    ("x in (a,b)", {"x": "b"}, True),
    ("x notin (a,b)", {"x": "c"}, True),
    ("x notin (a,b)", {}, True),
    ("x in ()", {"x": ""}, True),
    ("x=", {"x": ""}, True),
    ("x=z", {}, False),
    ("x=z", None, False),
    ("x=y", {"x": "z"}, False),
    ("x=y,z=w", {"x": "w", "z": "w"}, False),
    ("x!=y,z!=w", {"x": "z", "z": "w"}, False),
    ("x", {"y": "z"}, False),
    ("!x", {"x": "z"}, False),
    ("x>1", {"x": "0"}, False),
    ("x>1", {"x": "1"}, False),
    ("x<1", {"x": "2"}, False),
    ("x>1", {"x": "two"}, False),
    ("x>1", {}, False),
    ("x in (a,b)", {"x": "c"}, False),
    ("x in (a,b)", {}, False),
    ("x notin (a,b)", {"x": "a"}, False),
    ("x=", {}, False),
]


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    MATCHES,
    ids=[f"{t or 'empty'}~{labels}" for t, labels, _ in MATCHES],
)
def test_label_selector_matches(text: str, labels: dict | None, expected: bool) -> None:
    assert parse_label_selector(text).matches(labels) is expected


_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'MyValue' or 'my_value' or '12345', "
    "regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
_NAME_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName' or 'my.name' or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)

BAD_LABEL_SELECTORS = [
    ("x=a||y=b", None),
    ("x==a==b", "found '==', expected: ',' or 'end of string'"),
    ("!x=a", "found '=', expected: ',' or 'end of string'"),
    (
        "x<a",
        'unable to parse requirement: values[0]: Invalid value: "a": '
        "for 'Gt', 'Lt' operators, the value must be an integer",
    ),
    ("x>1.5", None),
    # upstream checks Gt/Lt values as label values too, so negatives cannot be written
    ("x<-1", None),
    ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
    ("a in", "unable to parse requirement: found '' expected: '('"),
    ("a in (b", "unable to parse requirement: found '', expected: ',' or ')'"),
    ("a in (b c)", "unable to parse requirement: found 'c', expected: ',' or ')'"),
    ("a in (=)", "unable to parse requirement: found '=', expected: ',', ')' or identifier"),
    ("a,", "found '', expected: identifier after ','"),
    (",a", "found ',', expected: !, identifier, or 'end of string'"),
    ("=a", "found '=', expected: !, identifier, or 'end of string'"),
    ("!", "unable to parse requirement: found '', expected: identifier"),
    ("a=web_", f'unable to parse requirement: values[0][a]: Invalid value: "web_": {_VALUE_MSG}'),
    ("a_=b", f'unable to parse requirement: <nil>: Invalid value: "a_": {_NAME_MSG}'),
    ("Example.com/a=b", None),
    ("a=" + "b" * 64, None),
]


@pytest.mark.parametrize(
    ("text", "message"), BAD_LABEL_SELECTORS, ids=[t for t, _ in BAD_LABEL_SELECTORS]
)
def test_parse_label_selector_errors(text: str, message: str | None) -> None:
    with pytest.raises(SelectorError) as caught:
        parse_label_selector(text)
    if message is not None:
        assert str(caught.value) == message
    assert "\n" not in str(caught.value)


def test_selector_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse_label_selector("a in (")


def test_empty_and_nothing() -> None:
    assert parse_label_selector("").empty()
    assert not parse_label_selector("a").empty()
    none = nothing()
    assert not none.empty()
    assert not none.matches({})
    assert not none.matches({"a": "b"})
    assert str(none) == ""
    assert none != LabelSelector()


def test_requires_exact_match() -> None:
    selector = parse_label_selector("app=web,tier in (fe),env in (a,b),x!=y")
    assert selector.requires_exact_match("app") == "web"
    assert selector.requires_exact_match("tier") == "fe"
    assert selector.requires_exact_match("env") is None
    assert selector.requires_exact_match("x") is None
    assert selector.requires_exact_match("missing") is None


# -- metav1.LabelSelector --------------------------------------------------------------------

SPECS = [
    ("none-selects-nothing", None, {"app": "web"}, False),
    ("none-selects-nothing-even-unlabelled", None, {}, False),
    ("empty-selects-everything", {}, {"app": "web"}, True),
    ("empty-parts-select-everything", {"matchLabels": {}, "matchExpressions": []}, {}, True),
    ("null-parts-select-everything", {"matchLabels": None, "matchExpressions": None}, {}, True),
    ("match-labels", {"matchLabels": {"app": "web"}}, {"app": "web", "x": "y"}, True),
    ("match-labels-miss", {"matchLabels": {"app": "web"}}, {"app": "db"}, False),
    (
        "in",
        {"matchExpressions": [{"key": "t", "operator": "In", "values": ["a", "b"]}]},
        {"t": "b"},
        True,
    ),
    ("in-miss", {"matchExpressions": [{"key": "t", "operator": "In", "values": ["a"]}]}, {}, False),
    ("notin", {"matchExpressions": [{"key": "t", "operator": "NotIn", "values": ["a"]}]}, {}, True),
    ("exists", {"matchExpressions": [{"key": "t", "operator": "Exists"}]}, {"t": ""}, True),
    (
        "does-not-exist",
        {"matchExpressions": [{"key": "t", "operator": "DoesNotExist"}]},
        {"t": "x"},
        False,
    ),
    (
        "labels-and-expressions",
        {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "t", "operator": "Exists"}]},
        {"app": "web"},
        False,
    ),
]


@pytest.mark.parametrize(
    ("spec", "labels", "expected"), [s[1:] for s in SPECS], ids=[s[0] for s in SPECS]
)
def test_selector_from_spec(spec: dict | None, labels: dict, expected: bool) -> None:
    assert selector_from_spec(spec).matches(labels) is expected


def test_selector_from_spec_string() -> None:
    spec = {
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["b", "a"]},
            {"key": "canary", "operator": "DoesNotExist"},
        ],
    }
    assert str(selector_from_spec(spec)) == "app=web,!canary,tier in (a,b)"


BAD_SPECS = [
    (
        "gt-not-allowed",
        {"matchExpressions": [{"key": "t", "operator": "Gt", "values": ["1"]}]},
        '"Gt" is not a valid label selector operator',
    ),
    (
        "unknown-operator",
        {"matchExpressions": [{"key": "t", "operator": "Foo"}]},
        '"Foo" is not a valid label selector operator',
    ),
    (
        "in-without-values",
        {"matchExpressions": [{"key": "t", "operator": "In", "values": []}]},
        "values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty",
    ),
    (
        "exists-with-values",
        {"matchExpressions": [{"key": "t", "operator": "Exists", "values": ["a"]}]},
        'values: Invalid value: []string{"a"}: values set must be empty for exists and does not exist',
    ),
    ("bad-key", {"matchLabels": {"a_": "b"}}, f'key: Invalid value: "a_": {_NAME_MSG}'),
    ("bad-value", {"matchLabels": {"a": "b_"}}, f'values[0][a]: Invalid value: "b_": {_VALUE_MSG}'),
    ("not-a-map", {"matchLabels": ["a"]}, None),
    ("non-string-value", {"matchLabels": {"a": 1}}, None),
    ("expression-not-object", {"matchExpressions": ["a"]}, None),
    (
        "values-not-strings",
        {"matchExpressions": [{"key": "a", "operator": "In", "values": [1]}]},
        None,
    ),
    ("spec-not-object", "app=web", None),
]


@pytest.mark.parametrize(
    ("spec", "message"), [s[1:] for s in BAD_SPECS], ids=[s[0] for s in BAD_SPECS]
)
def test_selector_from_spec_errors(spec: object, message: str | None) -> None:
    with pytest.raises(SelectorError) as caught:
        selector_from_spec(spec)  # type: ignore[arg-type]
    if message is not None:
        assert str(caught.value) == message


def test_selector_from_spec_several_errors_in_one_line() -> None:
    with pytest.raises(SelectorError) as caught:
        selector_from_spec({"matchLabels": {"a_": "b_"}})
    message = str(caught.value)
    assert message.startswith('[key: Invalid value: "a_"')
    assert ', values[0][a_]: Invalid value: "b_"' in message
    assert message.endswith("]")


# -- field selectors -------------------------------------------------------------------------

FIELDS = [
    ("", []),
    ("hi=there", [("hi", "=", "there")]),
    ("hi==there", [("hi", "=", "there")]),
    ("hi!=there", [("hi", "!=", "there")]),
    ("hi=", [("hi", "=", "")]),
    ("b=2,a=1", [("a", "=", "1"), ("b", "=", "2")]),
    ("hi=there,,", [("hi", "=", "there")]),
    (
        "status.phase=Running,spec.nodeName!=",
        [("spec.nodeName", "!=", ""), ("status.phase", "=", "Running")],
    ),
    (r"x=a\,b", [("x", "=", "a,b")]),
    (r"x=a\=b", [("x", "=", "a=b")]),
    (r"x=a\\b", [("x", "=", "a\\b")]),
    (r"x=\\\,", [("x", "=", "\\,")]),
    ("x!=\\=a", [("x", "!=", "=a")]),
]


@pytest.mark.parametrize(("text", "requirements"), FIELDS, ids=[t or "empty" for t, _ in FIELDS])
def test_parse_field_selector(text: str, requirements: list) -> None:
    selector = parse_field_selector(text)
    assert selector.requirements == requirements
    assert parse_field_selector(str(selector)).requirements == requirements


BAD_FIELDS = [
    ("hi", "invalid selector: 'hi'; can't understand 'hi'"),
    ("x=a,b", "invalid selector: 'x=a,b'; can't understand 'b'"),
    ("x=a=b", "invalid field selector: unescaped character in value: 61"),
    ("x!==a", "invalid field selector: unescaped character in value: 61"),
    ("x=a\\", "invalid field selector: invalid escape sequence: \\"),
    ("x=\\n", "invalid field selector: invalid escape sequence: \\n"),
]


@pytest.mark.parametrize(("text", "message"), BAD_FIELDS, ids=[t for t, _ in BAD_FIELDS])
def test_parse_field_selector_errors(text: str, message: str) -> None:
    with pytest.raises(SelectorError, match=re.escape(message)):
        parse_field_selector(text)


FIELD_MATCHES = [
    ("", {"a": "b"}, True),
    ("spec.nodeName=n1", {"spec.nodeName": "n1"}, True),
    ("spec.nodeName=n1", {"spec.nodeName": "n2"}, False),
    ("spec.nodeName=", {}, True),
    ("spec.nodeName!=", {}, False),
    ("spec.nodeName!=", {"spec.nodeName": "n1"}, True),
    ("spec.nodeName=n1", {}, False),
    ("a=1,b!=2", {"a": "1", "b": "3"}, True),
    ("a=1,b!=2", {"a": "1", "b": "2"}, False),
]


@pytest.mark.parametrize(
    ("text", "fields", "expected"),
    FIELD_MATCHES,
    ids=[f"{t or 'empty'}~{f}" for t, f, _ in FIELD_MATCHES],
)
def test_field_selector_matches(text: str, fields: dict, expected: bool) -> None:
    assert parse_field_selector(text).matches(fields) is expected


def test_field_selector_value_of_and_empty() -> None:
    selector = parse_field_selector("metadata.namespace!=kube-system,spec.nodeName=n1")
    assert selector.value_of("spec.nodeName") == "n1"
    assert selector.value_of("metadata.namespace") is None
    assert selector.value_of("status.phase") is None
    assert not selector.empty()
    assert parse_field_selector("").empty()
    assert FieldSelector().empty()


# -- node selector terms ---------------------------------------------------------------------

NODE = {"kubernetes.io/hostname": "n1", "zone": "a", "cores": "8"}
NODE_FIELDS = {"metadata.name": "n1"}


def _expr(key: str, op: str, *values: str) -> dict:
    return {"key": key, "operator": op, "values": list(values)}


TERMS = [
    ("in", {"matchExpressions": [_expr("zone", "In", "a", "b")]}, True),
    ("in-miss", {"matchExpressions": [_expr("zone", "In", "b")]}, False),
    ("notin", {"matchExpressions": [_expr("zone", "NotIn", "b")]}, True),
    ("notin-absent-key", {"matchExpressions": [_expr("gpu", "NotIn", "x")]}, True),
    ("exists", {"matchExpressions": [{"key": "zone", "operator": "Exists"}]}, True),
    ("does-not-exist", {"matchExpressions": [{"key": "gpu", "operator": "DoesNotExist"}]}, True),
    ("gt", {"matchExpressions": [_expr("cores", "Gt", "4")]}, True),
    ("gt-miss", {"matchExpressions": [_expr("cores", "Gt", "8")]}, False),
    ("lt", {"matchExpressions": [_expr("cores", "Lt", "16")]}, True),
    ("lt-absent", {"matchExpressions": [_expr("ram", "Lt", "16")]}, False),
    ("anded", {"matchExpressions": [_expr("zone", "In", "a"), _expr("cores", "Gt", "10")]}, False),
    ("fields-in", {"matchFields": [_expr("metadata.name", "In", "n1")]}, True),
    ("fields-in-miss", {"matchFields": [_expr("metadata.name", "In", "n2")]}, False),
    ("fields-notin", {"matchFields": [_expr("metadata.name", "NotIn", "n2")]}, True),
    (
        "labels-and-fields",
        {
            "matchExpressions": [_expr("zone", "In", "a")],
            "matchFields": [_expr("metadata.name", "In", "n2")],
        },
        False,
    ),
    ("empty-term", {}, False),
    ("empty-lists", {"matchExpressions": [], "matchFields": []}, False),
    ("bad-operator", {"matchExpressions": [_expr("zone", "Equals", "a")]}, False),
    ("gt-not-integer", {"matchExpressions": [_expr("cores", "Gt", "many")]}, False),
    ("gt-two-values", {"matchExpressions": [_expr("cores", "Gt", "1", "2")]}, False),
    ("in-no-values", {"matchExpressions": [_expr("zone", "In")]}, False),
    ("fields-two-values", {"matchFields": [_expr("metadata.name", "In", "n1", "n2")]}, False),
    ("fields-exists", {"matchFields": [{"key": "metadata.name", "operator": "Exists"}]}, False),
    ("bad-key", {"matchExpressions": [_expr("bad key", "In", "a")]}, False),
    ("not-a-mapping", ["zone"], False),
]


@pytest.mark.parametrize(("term", "expected"), [t[1:] for t in TERMS], ids=[t[0] for t in TERMS])
def test_node_selector_term_matches(term: object, expected: bool) -> None:
    assert node_selector_term_matches(term, NODE, NODE_FIELDS) is expected  # type: ignore[arg-type]


def test_node_selector_term_without_fields_ignores_match_fields() -> None:
    # As upstream: matchFields are only evaluated against a non-empty field set.
    term = {"matchFields": [_expr("metadata.name", "In", "n2")]}
    assert node_selector_term_matches(term, NODE) is True
    assert node_selector_term_matches(term, NODE, NODE_FIELDS) is False
