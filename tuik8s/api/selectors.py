"""Label and field selectors, as the API's `?labelSelector=` / `?fieldSelector=` parse them.

The grammar, the matching rules and the error wording follow apimachinery's
`pkg/labels` and `pkg/fields`, so that `kubectl get -l ...` behaves and fails the way it
does against a real cluster. A selector is a conjunction of requirements; requirements are
kept sorted by key, which gives one canonical string per selector.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from tuik8s.api.names import go_quote, go_value, is_qualified_name, is_valid_label_value


class SelectorError(ValueError):
    """A selector that does not parse; the message is one readable line."""


# selection.Operator values, as upstream spells them.
EQUALS = "="
DOUBLE_EQUALS = "=="
NOT_EQUALS = "!="
IN = "in"
NOT_IN = "notin"
EXISTS = "exists"
DOES_NOT_EXIST = "!"
GREATER_THAN = "gt"
LESS_THAN = "lt"

_BINARY_OPERATORS = (IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS, GREATER_THAN, LESS_THAN)
_VALID_OPERATORS = (*_BINARY_OPERATORS, EXISTS, DOES_NOT_EXIST)

_INT64_RE = re.compile(r"[+-]?[0-9]+", re.ASCII)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _parse_int64(text: str) -> int | None:
    """strconv.ParseInt(text, 10, 64): no spaces, no underscores, in range."""
    if not _INT64_RE.fullmatch(text):
        return None
    value = int(text)
    return value if _INT64_MIN <= value <= _INT64_MAX else None


def _aggregate(messages: Sequence[str]) -> str:
    """utilerrors.Aggregate's Error(): one message as is, several as `[a, b]`, deduplicated."""
    unique = list(dict.fromkeys(messages))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"


@dataclass(frozen=True)
class Requirement:
    """One `key op values` term of a label selector."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        if op in (IN, EQUALS, DOUBLE_EQUALS):
            return self.key in labels and labels[self.key] in self.values
        if op in (NOT_IN, NOT_EQUALS):
            return self.key not in labels or labels[self.key] not in self.values
        if op == EXISTS:
            return self.key in labels
        if op == DOES_NOT_EXIST:
            return self.key not in labels
        if op in (GREATER_THAN, LESS_THAN):
            if self.key not in labels or len(self.values) != 1:
                return False
            have, want = _parse_int64(labels[self.key]), _parse_int64(self.values[0])
            if have is None or want is None:
                return False
            return have > want if op == GREATER_THAN else have < want
        return False

    def __str__(self) -> str:
        op = self.operator
        if op == EXISTS:
            return self.key
        if op == DOES_NOT_EXIST:
            return "!" + self.key
        values = self.values[0] if len(self.values) == 1 else ",".join(sorted(self.values))
        if op in (IN, NOT_IN):
            return f"{self.key} {op} ({values})"
        symbol = {GREATER_THAN: ">", LESS_THAN: "<"}.get(op, op)
        return f"{self.key}{symbol}{values}"


def new_requirement(
    key: str, operator: str, values: Iterable[str], path: str | None = None
) -> Requirement:
    """A checked requirement, like labels.NewRequirement; raises SelectorError.

    `path` prefixes the field names in messages (`matchExpressions[0]`); None gives the
    bare `key` / `values[0]` upstream prints for a selector built outside an object.
    """
    vals = tuple(values)
    errors: list[str] = []

    def child(name: str) -> str:
        return f"{path}.{name}" if path else name

    key_errors = is_qualified_name(key)
    if key_errors:
        errors.append(f"{child('key')}: Invalid value: {go_quote(key)}: {'; '.join(key_errors)}")
    values_path = child("values")
    shown = go_value(list(vals))
    if operator in (IN, NOT_IN):
        if not vals:
            errors.append(
                f"{values_path}: Invalid value: {shown}: for 'in', 'notin' operators, values set can't be empty"
            )
    elif operator in (EQUALS, DOUBLE_EQUALS, NOT_EQUALS):
        if len(vals) != 1:
            errors.append(
                f"{values_path}: Invalid value: {shown}: exact-match compatibility requires one single value"
            )
    elif operator in (EXISTS, DOES_NOT_EXIST):
        if vals:
            errors.append(
                f"{values_path}: Invalid value: {shown}: values set must be empty for exists and does not exist"
            )
    elif operator in (GREATER_THAN, LESS_THAN):
        if len(vals) != 1:
            errors.append(
                f"{values_path}: Invalid value: {shown}: for 'Gt', 'Lt' operators, exactly one value is required"
            )
        for i, value in enumerate(vals):
            if _parse_int64(value) is None:
                errors.append(
                    f"{values_path}[{i}]: Invalid value: {go_quote(value)}: "
                    "for 'Gt', 'Lt' operators, the value must be an integer"
                )
    else:
        supported = ", ".join(go_quote(o) for o in _VALID_OPERATORS)
        errors.append(
            f"{child('operator')}: Unsupported value: {go_quote(operator)}: supported values: {supported}"
        )
    for i, value in enumerate(vals):
        value_errors = is_valid_label_value(value)
        if value_errors:
            errors.append(
                f"{values_path}[{i}][{key}]: Invalid value: {go_quote(value)}: {'; '.join(value_errors)}"
            )
    if errors:
        raise SelectorError(_aggregate(errors))
    return Requirement(key, operator, vals)


class LabelSelector:
    """A parsed label selector: every requirement must hold.

    Two special selectors exist, as upstream: the empty one matches everything, and
    `nothing()` matches no object at all (a nil `metav1.LabelSelector`).
    """

    def __init__(
        self, requirements: Iterable[Requirement] = (), *, match_nothing: bool = False
    ) -> None:
        self.requirements: tuple[Requirement, ...] = tuple(
            sorted(requirements, key=lambda r: r.key)
        )
        self.match_nothing = match_nothing

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.match_nothing:
            return False
        have = labels or {}
        return all(r.matches(have) for r in self.requirements)

    def empty(self) -> bool:
        return not self.match_nothing and not self.requirements

    def requires_exact_match(self, key: str) -> str | None:
        """The one value `key` must have under this selector, if any (for index lookups)."""
        for r in self.requirements:
            if r.key == key:
                if r.operator in (EQUALS, DOUBLE_EQUALS, IN) and len(r.values) == 1:
                    return r.values[0]
                return None
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)

    def __repr__(self) -> str:
        if self.match_nothing:
            return "LabelSelector(<nothing>)"
        return f"LabelSelector({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LabelSelector):
            return NotImplemented
        return (self.match_nothing, self.requirements) == (other.match_nothing, other.requirements)

    def __hash__(self) -> int:
        return hash((self.match_nothing, self.requirements))


def everything() -> LabelSelector:
    return LabelSelector()


def nothing() -> LabelSelector:
    return LabelSelector(match_nothing=True)


# -- the label selector string grammar -------------------------------------------------------

_END, _CLOSE, _COMMA, _NOT, _DEQ, _EQ, _GT, _ID, _IN, _LT, _NEQ, _NOTIN, _OPEN, _ERROR = range(14)
_TOKENS = {
    ")": _CLOSE,
    ",": _COMMA,
    "!": _NOT,
    "==": _DEQ,
    "=": _EQ,
    ">": _GT,
    "in": _IN,
    "<": _LT,
    "!=": _NEQ,
    "notin": _NOTIN,
    "(": _OPEN,
}
_SPECIAL = frozenset("=!(),><")
_WHITESPACE = frozenset(" \t\r\n")
_OPERATOR_TOKENS = {
    _IN: IN,
    _EQ: EQUALS,
    _DEQ: DOUBLE_EQUALS,
    _GT: GREATER_THAN,
    _LT: LESS_THAN,
    _NOTIN: NOT_IN,
    _NEQ: NOT_EQUALS,
}


def _lex(text: str) -> list[tuple[int, str]]:
    items: list[tuple[int, str]] = []
    pos, end = 0, len(text)
    while True:
        while pos < end and text[pos] in _WHITESPACE:
            pos += 1
        if pos >= end:
            items.append((_END, ""))
            return items
        if text[pos] in _SPECIAL:
            # Longest operator wins: "!=" over "!", "==" over "=".
            buffer, last = "", None
            while pos < end and text[pos] in _SPECIAL:
                buffer += text[pos]
                if buffer in _TOKENS:
                    last = (_TOKENS[buffer], buffer)
                elif last is not None:
                    break
                pos += 1
            items.append(last or (_ERROR, f"error expected: keyword found '{buffer}'"))
        else:
            start = pos
            while pos < end and text[pos] not in _SPECIAL and text[pos] not in _WHITESPACE:
                pos += 1
            word = text[start:pos]
            items.append((_TOKENS.get(word, _ID), word))


class _Parser:
    """Upstream's recursive descent over the scanned tokens, with the same messages."""

    def __init__(self, text: str) -> None:
        self.items = _lex(text)
        self.position = 0

    def lookahead(self, values: bool = True) -> tuple[int, str]:
        tok, lit = self.items[self.position]
        # In a values context "in" and "notin" are ordinary words: `x in (in,notin)`.
        if values and tok in (_IN, _NOTIN):
            tok = _ID
        return tok, lit

    def consume(self, values: bool = True) -> tuple[int, str]:
        tok, lit = self.lookahead(values)
        self.position += 1
        return tok, lit

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            tok, lit = self.lookahead()
            if tok in (_ID, _NOT):
                try:
                    requirements.append(self.parse_requirement())
                except SelectorError as exc:
                    raise SelectorError(f"unable to parse requirement: {exc}") from None
                tok, lit = self.consume()
                if tok == _END:
                    return requirements
                if tok == _COMMA:
                    tok2, lit2 = self.lookahead()
                    if tok2 not in (_ID, _NOT):
                        raise SelectorError(f"found '{lit2}', expected: identifier after ','")
                else:
                    raise SelectorError(f"found '{lit}', expected: ',' or 'end of string'")
            elif tok == _END:
                return requirements
            else:
                raise SelectorError(f"found '{lit}', expected: !, identifier, or 'end of string'")

    def parse_requirement(self) -> Requirement:
        operator = ""
        tok, key = self.consume()
        if tok == _NOT:
            operator = DOES_NOT_EXIST
            tok, key = self.consume()
        if tok != _ID:
            raise SelectorError(f"found '{key}', expected: identifier")
        key_errors = is_qualified_name(key)
        if key_errors:
            raise SelectorError(f"<nil>: Invalid value: {go_quote(key)}: {'; '.join(key_errors)}")
        if not operator and self.lookahead()[0] in (_END, _COMMA):
            operator = EXISTS
        if operator:
            # `!key` takes no operator: whatever follows it is the caller's syntax error.
            return new_requirement(key, operator, ())
        tok, lit = self.consume(values=False)
        if tok not in _OPERATOR_TOKENS:
            raise SelectorError(f"found '{lit}', expected: {', '.join(_BINARY_OPERATORS)}")
        operator = _OPERATOR_TOKENS[tok]
        values = self.parse_values() if operator in (IN, NOT_IN) else self.parse_exact_value()
        return new_requirement(key, operator, sorted(values))

    def parse_values(self) -> set[str]:
        tok, lit = self.consume()
        if tok != _OPEN:
            raise SelectorError(f"found '{lit}' expected: '('")
        tok, lit = self.lookahead()
        if tok in (_ID, _COMMA):
            values = self.parse_identifiers()
            if self.consume()[0] != _CLOSE:
                raise SelectorError(f"found '{lit}', expected: ')'")
            return values
        if tok == _CLOSE:
            self.consume()
            return {""}
        raise SelectorError(f"found '{lit}', expected: ',', ')' or identifier")

    def parse_identifiers(self) -> set[str]:
        values: set[str] = set()
        while True:
            tok, lit = self.consume()
            if tok == _ID:
                values.add(lit)
                tok2, lit2 = self.lookahead()
                if tok2 == _COMMA:
                    continue
                if tok2 == _CLOSE:
                    return values
                raise SelectorError(f"found '{lit2}', expected: ',' or ')'")
            if tok == _COMMA:
                # Empty strings are values too: "(,a)", "(a,)", "(a,,b)".
                if not values:
                    values.add("")
                tok2 = self.lookahead()[0]
                if tok2 == _CLOSE:
                    values.add("")
                    return values
                if tok2 == _COMMA:
                    self.consume()
                    values.add("")
                continue
            raise SelectorError(f"found '{lit}', expected: ',', or identifier")

    def parse_exact_value(self) -> set[str]:
        if self.lookahead()[0] in (_END, _COMMA):
            return {""}
        tok, lit = self.consume()
        if tok == _ID:
            return {lit}
        raise SelectorError(f"found '{lit}', expected: identifier")


def parse_label_selector(text: str) -> LabelSelector:
    """Parse the `?labelSelector=` syntax: `a=b,c!=d,e in (f,g),h notin (i),j,!k`.

    The empty string selects everything. Raises SelectorError with upstream's message.
    """
    return LabelSelector(_Parser(text).parse())


_SPEC_OPERATORS = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST}


def selector_from_spec(spec: Mapping | None) -> LabelSelector:
    """A `metav1.LabelSelector` as a selector, like upstream LabelSelectorAsSelector.

    None selects nothing; `{}` (no matchLabels, no matchExpressions) selects everything.
    """
    if spec is None:
        return nothing()
    if not isinstance(spec, Mapping):
        raise SelectorError(f"a label selector must be an object, not {go_value(spec)}")
    match_labels = spec.get("matchLabels") or {}
    expressions = spec.get("matchExpressions") or []
    if not isinstance(match_labels, Mapping):
        raise SelectorError("matchLabels must be a map of string keys to string values")
    if not isinstance(expressions, list):
        raise SelectorError("matchExpressions must be a list")
    if not match_labels and not expressions:
        return everything()
    requirements = []
    for key, value in match_labels.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise SelectorError(
                f"matchLabels must map strings to strings, not {go_value(key)}: {go_value(value)}"
            )
        requirements.append(new_requirement(key, EQUALS, [value]))
    for expr in expressions:
        if not isinstance(expr, Mapping):
            raise SelectorError(f"a match expression must be an object, not {go_value(expr)}")
        op = expr.get("operator")
        if op not in _SPEC_OPERATORS:
            raise SelectorError(
                f"{go_quote(str(op if op is not None else ''))} is not a valid label selector operator"
            )
        requirements.append(
            new_requirement(
                _string_field(expr, "key"), _SPEC_OPERATORS[op], _string_list(expr, "values")
            )
        )
    return LabelSelector(requirements)


def _string_field(expr: Mapping, name: str) -> str:
    value = expr.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise SelectorError(f"{name} must be a string, not {go_value(value)}")
    return value


def _string_list(expr: Mapping, name: str) -> list[str]:
    values = expr.get(name)
    if values is None:
        return []
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise SelectorError(f"{name} must be a list of strings, not {go_value(values)}")
    return list(values)


# -- field selectors -------------------------------------------------------------------------


def escape_field_value(value: str) -> str:
    """fields.EscapeValue: `\\` `,` `=` get a backslash so the value parses back as itself."""
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def _unescape_field_value(value: str) -> str:
    if not any(c in value for c in "\\,="):
        return value
    out: list[str] = []
    in_slash = False
    for ch in value:
        if in_slash:
            if ch not in "\\,=":
                raise SelectorError(f"invalid field selector: invalid escape sequence: \\{ch}")
            out.append(ch)
            in_slash = False
        elif ch == "\\":
            in_slash = True
        elif ch in ",=":
            # Upstream prints the rune with %v, i.e. its code point ("61" for '=').
            raise SelectorError(f"invalid field selector: unescaped character in value: {ord(ch)}")
        else:
            out.append(ch)
    if in_slash:
        raise SelectorError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def _split_field_terms(text: str) -> list[str]:
    """Split on commas that are not escaped; escapes stay in the terms."""
    if not text:
        return []
    terms: list[str] = []
    start, in_slash = 0, False
    for i, ch in enumerate(text):
        if in_slash:
            in_slash = False
        elif ch == "\\":
            in_slash = True
        elif ch == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


def _split_field_term(term: str) -> tuple[str, str, str] | None:
    # The field name has no escaping, so the first operator found is the split point;
    # "==" is tried before "=" so that no "=" is left at the start of the value.
    for i in range(len(term)):
        for op in ("!=", "==", "="):
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op) :]
    return None


class FieldSelector:
    """A parsed field selector: `field=value` and `field!=value` requirements, all must hold.

    A field missing from the object's field set compares as the empty string, as upstream.
    """

    def __init__(self, requirements: Iterable[tuple[str, str, str]] = ()) -> None:
        self.requirements: list[tuple[str, str, str]] = list(requirements)

    def matches(self, fields: Mapping[str, str]) -> bool:
        for field, op, value in self.requirements:
            equal = fields.get(field, "") == value
            if equal != (op == "="):
                return False
        return True

    def empty(self) -> bool:
        return not self.requirements

    def value_of(self, field: str) -> str | None:
        for name, op, value in self.requirements:
            if name == field and op == "=":
                return value
        return None

    def __str__(self) -> str:
        return ",".join(f"{f}{op}{escape_field_value(v)}" for f, op, v in self.requirements)

    def __repr__(self) -> str:
        return f"FieldSelector({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FieldSelector):
            return NotImplemented
        return self.requirements == other.requirements


def parse_field_selector(text: str) -> FieldSelector:
    """Parse `?fieldSelector=`: `a=b,c!=d`, `==` too; `\\,` `\\=` `\\\\` escape values.

    Which fields a resource supports is the caller's business; this only parses.
    """
    requirements = []
    for part in sorted(_split_field_terms(text)):
        if not part:
            continue
        split = _split_field_term(part)
        if split is None:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
        field, op, raw = split
        requirements.append((field, "!=" if op == "!=" else "=", _unescape_field_value(raw)))
    return FieldSelector(requirements)


# -- node selector terms (NodeAffinity, nodeSelectorTerms) ---------------------------------

_NODE_LABEL_OPERATORS = {
    "In": IN,
    "NotIn": NOT_IN,
    "Exists": EXISTS,
    "DoesNotExist": DOES_NOT_EXIST,
    "Gt": GREATER_THAN,
    "Lt": LESS_THAN,
}


def _node_label_selector(expressions: list) -> LabelSelector:
    requirements = []
    for i, expr in enumerate(expressions):
        if not isinstance(expr, Mapping):
            raise SelectorError(f"matchExpressions[{i}] must be an object")
        op = expr.get("operator")
        if op not in _NODE_LABEL_OPERATORS:
            raise SelectorError(
                f"matchExpressions[{i}].operator: Unsupported value: {go_value(op)}"
            )
        requirements.append(
            new_requirement(
                _string_field(expr, "key"),
                _NODE_LABEL_OPERATORS[op],
                _string_list(expr, "values"),
                path=f"matchExpressions[{i}]",
            )
        )
    return LabelSelector(requirements)


def _node_field_selector(expressions: list) -> FieldSelector:
    requirements = []
    for i, expr in enumerate(expressions):
        if not isinstance(expr, Mapping):
            raise SelectorError(f"matchFields[{i}] must be an object")
        op = expr.get("operator")
        values = _string_list(expr, "values")
        if op not in ("In", "NotIn"):
            raise SelectorError(f"matchFields[{i}].operator: Unsupported value: {go_value(op)}")
        if len(values) != 1:
            raise SelectorError(f"matchFields[{i}].values: must have one element")
        requirements.append((_string_field(expr, "key"), "=" if op == "In" else "!=", values[0]))
    return FieldSelector(requirements)


def node_selector_term_matches(
    term: Mapping, labels: Mapping[str, str], fields: Mapping[str, str] | None = None
) -> bool:
    """Whether a v1.NodeSelectorTerm selects a node with these labels and fields.

    As upstream's nodeaffinity helper: an empty or invalid term matches no node, the
    expressions of a term are ANDed (terms themselves are ORed by the caller), and
    matchFields are only evaluated when fields are given -- pass
    `{"metadata.name": node_name}`, the one field upstream supports.
    """
    if not isinstance(term, Mapping):
        return False
    expressions = term.get("matchExpressions") or []
    match_fields = term.get("matchFields") or []
    if not isinstance(expressions, list) or not isinstance(match_fields, list):
        return False
    if not expressions and not match_fields:
        return False
    try:
        label_selector = _node_label_selector(expressions) if expressions else None
        field_selector = _node_field_selector(match_fields) if match_fields else None
    except SelectorError:
        return False
    if label_selector is not None and not label_selector.matches(labels):
        return False
    if field_selector is not None and fields and not field_selector.matches(fields):
        return False
    return True
