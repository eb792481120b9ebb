"""Kubernetes resource quantities ("500m", "128Mi", "1e3"), as `resource.Quantity` reads them.

A quantity is an exact decimal: a number, then a binary suffix (Ki..Ei), a decimal suffix
(n, u, m, "", k, M..E) or an exponent (e3, E-2). Parsing follows upstream's
parseQuantityString step by step, including its odd corners ("1.G" and "+" parse; "1e"
does not), and rounds non-zero values up to the nearest nano as upstream does, so the
scheduler and the kubelet agree with a real cluster about what a pod asked for.
"""

from __future__ import annotations

import decimal

FORMAT_ERROR = (
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)
NUMERIC_ERROR = "unable to parse numeric part of quantity"
SUFFIX_ERROR = "unable to parse quantity's suffix"

_BINARY_SUFFIXES = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL_SUFFIXES = {
    "n": -9,
    "u": -6,
    "m": -3,
    "": 0,
    "k": 3,
    "M": 6,
    "G": 9,
    "T": 12,
    "P": 15,
    "E": 18,
}
_SUFFIX_CHARS = frozenset("eEinumkKMGTP")
_DIGITS = frozenset("0123456789")

_INT64_MAX = 2**63 - 1
_INT64_MIN = -(2**63)
_NANO = decimal.Decimal("1e-9")
_MI = 1024 * 1024

# Exact arithmetic: quantities are arbitrary-precision decimals upstream (inf.Dec).
_EXACT = decimal.Context(
    prec=decimal.MAX_PREC,
    Emax=decimal.MAX_EMAX,
    Emin=decimal.MIN_EMIN,
    traps=[decimal.InvalidOperation],
)


def _split(text: str) -> tuple[str, str, str]:
    """(number including sign, denominator digits, suffix), like upstream parseQuantityString."""
    pos, end = 0, len(text)
    if pos < end and text[0] in "+-":
        pos += 1
    while pos < end and text[pos] == "0":
        pos += 1
    if pos >= end:
        # Only a sign and zeros: upstream reads this as zero.
        return "0", "", ""
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    denominator = ""
    if pos < end and text[pos] == ".":
        pos += 1
        start = pos
        while pos < end and text[pos] in _DIGITS:
            pos += 1
        denominator = text[start:pos]
    value = text[:pos]
    suffix_start = pos
    while pos < end and text[pos] in _SUFFIX_CHARS:
        pos += 1
    if pos < end and text[pos] in "+-":
        pos += 1
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    if pos < end:
        raise ValueError(FORMAT_ERROR)
    return value, denominator, text[suffix_start:]


def _interpret(suffix: str) -> tuple[int, int]:
    """(base, exponent) of a suffix: "Mi" is (2, 20), "k" is (10, 3), "e-2" is (10, -2)."""
    if suffix in _DECIMAL_SUFFIXES:
        return 10, _DECIMAL_SUFFIXES[suffix]
    if suffix in _BINARY_SUFFIXES:
        return 2, _BINARY_SUFFIXES[suffix]
    if len(suffix) > 1 and suffix[0] in "eE":
        digits = suffix[1:]
        body = digits[1:] if digits[0] in "+-" else digits
        # int32 like upstream's Scale; beyond that the value is absurd anyway.
        if body and all(c in _DIGITS for c in body) and abs(int(digits)) < 2**31:
            return 10, int(digits)
    raise ValueError(SUFFIX_ERROR)


def parse_quantity(value: str | int | float) -> decimal.Decimal:
    """The exact value of a quantity; raises ValueError with upstream's message.

    Numbers are read the way a JSON number in a manifest reaches upstream's UnmarshalJSON:
    by their text (so 0.5 is "0.5" and 1e3 is "1e3").
    """
    if isinstance(value, bool) or not isinstance(value, str | int | float | decimal.Decimal):
        raise ValueError(FORMAT_ERROR)
    text = value if isinstance(value, str) else str(value)
    if not text:
        raise ValueError(FORMAT_ERROR)
    number, _, suffix = _split(text)
    base, exponent = _interpret(suffix)
    try:
        amount = decimal.Decimal(number)
    except decimal.InvalidOperation:
        raise ValueError(NUMERIC_ERROR) from None
    if not amount.is_finite():
        raise ValueError(NUMERIC_ERROR)
    if base == 10:
        amount = amount.scaleb(exponent, context=_EXACT)
    else:
        amount = _EXACT.multiply(amount, 2**exponent)
    negative = amount.is_signed()
    magnitude = abs(amount)
    # Upstream rounds any non-zero amount finer than 1n up, away from zero: ask for some
    # resources and you get some.
    if magnitude and magnitude.as_tuple().exponent < -9:  # type: ignore[operator]
        magnitude = magnitude.quantize(_NANO, rounding=decimal.ROUND_UP, context=_EXACT)
    if base == 2 and magnitude > _INT64_MAX:
        magnitude = decimal.Decimal(_INT64_MAX)
    return -magnitude if negative and magnitude else magnitude


def _ceil_int64(amount: decimal.Decimal) -> int:
    """ceil(amount) as an int64; beyond that range the value saturates instead of overflowing."""
    if amount > _INT64_MAX:
        return _INT64_MAX
    if amount < _INT64_MIN:
        return _INT64_MIN
    return int(amount.to_integral_value(rounding=decimal.ROUND_CEILING, context=_EXACT))


def cpu_millis(value: str | int | float) -> int:
    """Millicores, rounded up like upstream MilliValue: "250m" is 250, "0.1m" is 1."""
    return _ceil_int64(parse_quantity(value).scaleb(3, context=_EXACT))


def to_bytes(value: str | int | float) -> int:
    """An integer amount (bytes for memory), rounded up: "128Mi" is 134217728."""
    return _ceil_int64(parse_quantity(value))


def format_cpu(millis: int) -> str:
    """Millicores for people: whole cores plainly ("2"), anything else in m ("250m")."""
    if millis % 1000 == 0:
        return str(millis // 1000)
    return f"{millis}m"


def format_memory(nbytes: int) -> str:
    """Bytes as kubectl top prints memory: whole MiB, truncated ("128Mi", "0Mi")."""
    mebibytes = abs(nbytes) // _MI
    return f"{-mebibytes if nbytes < 0 else mebibytes}Mi"
