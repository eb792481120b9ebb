"""Quantities read and printed the way upstream resource.Quantity and kubectl top do."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tuik8s.api.quantity import (
    FORMAT_ERROR,
    NUMERIC_ERROR,
    SUFFIX_ERROR,
    cpu_millis,
    format_cpu,
    format_memory,
    parse_quantity,
    to_bytes,
)

GOOD = [
    ("0", "0"),
    ("1", "1"),
    ("-1", "-1"),
    ("+1", "1"),
    ("500m", "0.5"),
    ("100m", "0.1"),
    ("1.5", "1.5"),
    (".5", "0.5"),
    ("1.", "1"),
    ("00.5", "0.5"),
    ("128Mi", "134217728"),
    ("5Ki", "5120"),
    ("1.5Gi", "1610612736"),
    ("0.1Ki", "102.4"),
    ("-1.5Gi", "-1610612736"),
    ("1Ti", str(2**40)),
    ("1Pi", str(2**50)),
    ("1Ei", str(2**60)),
    ("1k", "1000"),
    ("1M", "1000000"),
    ("1G", "1000000000"),
    ("1T", "1e12"),
    ("1P", "1e15"),
    ("1E", "1e18"),
    ("100u", "0.0001"),
    ("1n", "1e-9"),
    ("1e3", "1000"),
    ("1E3", "1000"),
    ("1e+3", "1000"),
    ("1e-3", "0.001"),
    ("1.5e2", "150"),
    # upstream tolerates these corners of its own grammar
    ("1.G", "1000000000"),
    ("+", "0"),
    ("-", "0"),
    ("000", "0"),
]


@pytest.mark.parametrize(("text", "expected"), GOOD, ids=[t for t, _ in GOOD])
def test_parse_good(text: str, expected: str) -> None:
    assert parse_quantity(text) == Decimal(expected)


NUMBERS = [(2, "2"), (0.5, "0.5"), (1e-07, "1e-7"), (1e16, "1e16"), (Decimal("0.25"), "0.25")]


@pytest.mark.parametrize(("value", "expected"), NUMBERS, ids=[repr(v) for v, _ in NUMBERS])
def test_parse_numbers_as_json_gives_them(value: object, expected: str) -> None:
    assert parse_quantity(value) == Decimal(expected)  # type: ignore[arg-type]


ROUNDING = [
    ("0.1n", "1e-9"),
    ("1.1n", "2e-9"),
    ("1e-20", "1e-9"),
    ("-1e-20", "-1e-9"),
    ("0.0000000001", "1e-9"),
    ("100Ei", str(2**63 - 1)),  # binary quantities are capped at int64, as upstream
]


@pytest.mark.parametrize(("text", "expected"), ROUNDING, ids=[t for t, _ in ROUNDING])
def test_parse_rounds_up_to_nano_and_caps_binary(text: str, expected: str) -> None:
    assert parse_quantity(text) == Decimal(expected)


BAD = [
    ("", FORMAT_ERROR),
    (" 1", FORMAT_ERROR),
    ("1 ", FORMAT_ERROR),
    ("aoeu", FORMAT_ERROR),
    ("1.1.M", FORMAT_ERROR),
    ("1+1.0M", FORMAT_ERROR),
    ("1Zi", FORMAT_ERROR),
    ("1Mb", FORMAT_ERROR),
    ("1,5", FORMAT_ERROR),
    ("inf", FORMAT_ERROR),
    ("1e", SUFFIX_ERROR),
    ("1ee", SUFFIX_ERROR),
    ("1e+", SUFFIX_ERROR),
    ("0.1mi", SUFFIX_ERROR),
    ("0.1am", FORMAT_ERROR),
    (".5i", SUFFIX_ERROR),
    ("1i", SUFFIX_ERROR),
    ("1Mi1", SUFFIX_ERROR),
    ("1KK", SUFFIX_ERROR),
    (".", NUMERIC_ERROR),
    ("-.", NUMERIC_ERROR),
]


@pytest.mark.parametrize(("text", "message"), BAD, ids=[repr(t) for t, _ in BAD])
def test_parse_bad(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_quantity(text)
    assert str(caught.value) == message


@pytest.mark.parametrize("value", [True, None, [], float("nan"), float("inf")], ids=repr)
def test_parse_rejects_non_quantities(value: object) -> None:
    with pytest.raises(ValueError):
        parse_quantity(value)  # type: ignore[arg-type]


def test_format_error_is_upstream_wording() -> None:
    assert FORMAT_ERROR == (
        "quantities must match the regular expression "
        "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )


MILLIS = [
    ("250m", 250),
    ("1", 1000),
    (2, 2000),
    (0.5, 500),
    ("1.5", 1500),
    ("0.1m", 1),
    ("1n", 1),
    ("100u", 1),
    ("5300m", 5300),
    ("5.4", 5400),
    ("0", 0),
    ("1e400", 2**63 - 1),
]


@pytest.mark.parametrize(("value", "expected"), MILLIS, ids=[repr(v) for v, _ in MILLIS])
def test_cpu_millis_rounds_up(value: str | int | float, expected: int) -> None:
    assert cpu_millis(value) == expected


BYTES = [
    ("128Mi", 134217728),
    ("5Gi", 5368709120),
    ("5G", 5000000000),
    ("1.5", 2),
    ("0.1Ki", 103),
    ("1e3", 1000),
    (1024, 1024),
    ("1e999999", 2**63 - 1),
]


@pytest.mark.parametrize(("value", "expected"), BYTES, ids=[repr(v) for v, _ in BYTES])
def test_to_bytes_rounds_up(value: str | int, expected: int) -> None:
    assert to_bytes(value) == expected


def test_cpu_millis_and_to_bytes_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="regular expression"):
        cpu_millis("lots")
    with pytest.raises(ValueError, match="suffix"):
        to_bytes("1e")


@pytest.mark.parametrize(
    ("millis", "expected"),
    [(250, "250m"), (2000, "2"), (0, "0"), (1500, "1500m"), (1, "1m"), (10000, "10")],
    ids=["quarter", "two-cores", "zero", "one-and-a-half", "one-milli", "ten-cores"],
)
def test_format_cpu(millis: int, expected: str) -> None:
    assert format_cpu(millis) == expected


@pytest.mark.parametrize(
    ("nbytes", "expected"),
    [
        (134217728, "128Mi"),
        (134217728 + 1024 * 1023, "128Mi"),
        (5368709120, "5120Mi"),
        (1000, "0Mi"),
        (0, "0Mi"),
        (1048576, "1Mi"),
    ],
    ids=["128Mi", "truncates", "5Gi-in-Mi", "under-1Mi", "zero", "one"],
)
def test_format_memory_like_kubectl_top(nbytes: int, expected: str) -> None:
    assert format_memory(nbytes) == expected


@pytest.mark.parametrize("text", ["100m", "1", "2500m", "64Mi", "1Gi"])
def test_round_trip(text: str) -> None:
    assert parse_quantity(format_cpu(cpu_millis(text))) == parse_quantity(text)
