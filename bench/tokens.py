"""What checking the token file on every request costs the API server's authentication.

`TokenAuthenticator.authenticate` stats DATA_DIR/tokens.json on every call, so a revoked
token is refused by the very next request. The baseline, in the same run on the same file:
the same lookup with the file check skipped (what a hit cost when the file was looked at
once a second). Prints microseconds per call (median of rounds) for both and the ratio.

    .venv/bin/python bench/tokens.py [--rounds 7] [--calls 200000] [--tokens 50]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from tuik8s.apiserver.tokens import TokenAuthenticator, add_token, ensure_admin_token


def per_call_us(auth: TokenAuthenticator, token: str, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        auth.authenticate(token)
    return (time.perf_counter() - start) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--tokens", type=int, default=50, help="tokens in the file (nodes, users)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-tokens-") as tmp:
        data = Path(tmp)
        token = ensure_admin_token(data)
        for i in range(args.tokens - 1):
            add_token(data, f"system:node:node{i}", ["system:nodes"])
        checked = TokenAuthenticator(data)
        cached = TokenAuthenticator(data)
        assert checked.authenticate(token) and cached.authenticate(token)
        cached._reload_if_changed = lambda: None  # type: ignore[method-assign]  # the baseline
        now, base = [], []
        for _ in range(args.rounds):  # alternate, so drift on a shared machine hits both
            base.append(per_call_us(cached, token, args.calls))
            now.append(per_call_us(checked, token, args.calls))
    b, n = statistics.median(base), statistics.median(now)
    print(f"authenticate, file checked every call: {n:.2f} us/call (median of {args.rounds} x {args.calls})")
    print(f"baseline, file check skipped:          {b:.2f} us/call")
    print(f"ratio {n / b:.2f}x; extra {n - b:.2f} us per request")


if __name__ == "__main__":
    main()
