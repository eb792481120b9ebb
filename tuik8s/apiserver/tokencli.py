"""`tuik8s token create|list|revoke`: the bearer tokens of one cluster's data dir.

The command edits `DATA_DIR/tokens.json` directly (under the file's lock); the running
API server checks the file on every request, so a revoked token is refused (401) from the
next request on, with no restart. That is upstream's static token file, made revocable.

    tuik8s token create --user alice                 an admin token (group system:masters)
    tuik8s token create --user bob --read-only       get/list/watch all but Secrets
    tuik8s token create --user ci --group devs       a user in the groups given
    tuik8s token list                                who has a token (the first characters)
    tuik8s token revoke alice | TOKEN | PREFIX       by user, whole token, or listed prefix
    tuik8s token revoke --missing-ok system:node:node1 system:node:node2
                                                     several at once; names with no token are
                                                     fine (what `tuik8s lab down` runs)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from tuik8s.apiserver.authz import MASTERS, READERS
from tuik8s.apiserver.tokens import (
    AUTHENTICATED_GROUP,
    TOKENS_FILE,
    TokenFileError,
    User,
    add_token,
    ensure_token,
    list_tokens,
    revoke_all,
)

SHOWN = 8  # characters of a token `list` shows; enough to name it for `revoke`


class TokenCliError(Exception):
    """A failure to report as one line."""


def add_token_parser(sub: argparse._SubParsersAction, default_data_dir: Callable[[str], Path]) -> None:
    token = sub.add_parser("token", help="create, list and revoke the cluster's bearer tokens")
    verbs = token.add_subparsers(dest="token_command", metavar="VERB")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--cluster", default="default", help="cluster name (default: %(default)s)")
        p.add_argument("--data-dir", help="the cluster's data dir (default: ~/.local/share/tuik8s/CLUSTER)")
        p.set_defaults(func=lambda args: run(args, default_data_dir))

    create = verbs.add_parser("create", help="make a token and print it")
    create.add_argument("--user", required=True, help="the user name the token stands for")
    create.add_argument("--group", action="append", metavar="GROUP",
                        help=f"a group of the user (repeatable; default: {MASTERS}, an admin)")
    create.add_argument("--read-only", action="store_true",
                        help=f"read everything but Secrets (group {READERS})")
    create.add_argument("--reuse", action="store_true",
                        help="print the user's existing token with the same groups instead of a new one")
    common(create)
    common(verbs.add_parser("list", help="show who has a token"))
    rev = verbs.add_parser("revoke", help="remove a token: by user name, whole token or listed prefix")
    rev.add_argument("what", metavar="NAME|TOKEN", nargs="+",
                     help="a user name (all its tokens), a token, or its listed prefix; several at once")
    rev.add_argument("--missing-ok", action="store_true",
                     help="a name or token with nothing to revoke is not an error (for scripts: lab down)")
    common(rev)
    token.set_defaults(func=lambda args: _usage(token))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def run(args: argparse.Namespace, default_data_dir: Callable[[str], Path]) -> int:
    directory = Path(args.data_dir) if args.data_dir else default_data_dir(args.cluster)
    try:
        if args.token_command == "create":
            return _create(directory, args)
        if args.token_command == "list":
            return _list(directory)
        return _revoke(directory, args.what, missing_ok=args.missing_ok)
    except (TokenFileError, TokenCliError) as e:
        print(f"tuik8s: error: {e}", file=sys.stderr)
        return 1


def groups_for(groups: list[str] | None, read_only: bool) -> list[str]:
    if read_only and groups and MASTERS in groups:
        raise TokenCliError(f"--read-only and --group {MASTERS} contradict each other: choose one")
    chosen = list(groups or [])
    if read_only:
        chosen.append(READERS)
    return chosen or [MASTERS]


def _create(directory: Path, args: argparse.Namespace) -> int:
    if not directory.is_dir():
        raise TokenCliError(f"no cluster data in {directory}: start it with `tuik8s server` or pass --data-dir")
    groups = groups_for(args.group, args.read_only)
    make = ensure_token if args.reuse else add_token
    print(make(directory, args.user, groups))
    return 0


def _list(directory: Path) -> int:
    rows = [(user.name, ",".join(g for g in user.groups if g != AUTHENTICATED_GROUP) or "<none>", tok[:SHOWN] + "…")
            for tok, user in list_tokens(directory)]
    if not rows:
        print(f"no tokens in {directory / TOKENS_FILE}")
        return 0
    widths = [max(len(r[i]) for r in [("USER", "GROUPS", "TOKEN"), *rows]) for i in range(3)]
    for row in [("USER", "GROUPS", "TOKEN"), *rows]:
        print("   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


def _revoke(directory: Path, names: list[str], *, missing_ok: bool = False) -> int:
    tokens = list_tokens(directory)
    targets = [t for t in (_target(directory, tokens, what.rstrip("…"), missing_ok) for what in names) if t]
    removed = revoke_all(directory, targets) if targets else 0
    if not removed:
        print("revoked 0 tokens: none matched")
    elif removed == 1:
        print("revoked 1 token; the API server refuses it from the next request on")
    else:
        print(f"revoked {removed} tokens; the API server refuses them from the next request on")
    return 0


def _target(directory: Path, tokens: list[tuple[str, User]], what: str, missing_ok: bool) -> str:
    """What to revoke for one argument: a whole token, a user, or the token a prefix names
    ("" when nothing matches and `missing_ok`)."""
    if what in {tok for tok, _ in tokens} or what in {u.name for _, u in tokens}:
        return what
    matches = [tok for tok, _ in tokens if len(what) >= SHOWN and tok.startswith(what)]
    if len(matches) > 1:
        raise TokenCliError(f"{what} starts {len(matches)} tokens: give more of it, or the whole token")
    if matches:
        return matches[0]
    if missing_ok:
        return ""
    raise TokenCliError(f"no user or token {what!r} in {directory / TOKENS_FILE}: see `tuik8s token list`")
