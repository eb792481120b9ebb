"""Bearer tokens: who a token is, and that a revoke takes effect without a restart."""

from __future__ import annotations

import json
import stat
import threading
from pathlib import Path

import pytest

from tuik8s.apiserver.tokens import (
    TokenAuthenticator,
    TokenFileError,
    User,
    add_token,
    ensure_admin_token,
    revoke,
)


def test_admin_token_is_made_once_and_kept(tmp_path: Path) -> None:
    token = ensure_admin_token(tmp_path)
    assert len(token) >= 40
    assert ensure_admin_token(tmp_path) == token
    path = tmp_path / "tokens.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {token: {"user": "admin", "groups": ["system:masters"]}}


def test_admin_token_authenticates_as_admin_in_system_masters(tmp_path: Path) -> None:
    token = ensure_admin_token(tmp_path)
    user = TokenAuthenticator(tmp_path).authenticate(token)
    assert user is not None
    assert user.name == "admin"
    assert "system:masters" in user.groups
    assert "system:authenticated" in user.groups


@pytest.mark.parametrize(
    "presented",
    ["", "nope", "x" * 43, " ", "\u00e9t\u00e9"],
    ids=["empty", "short", "same-length", "space", "non-ascii"],
)
def test_unknown_tokens_are_nobody(tmp_path: Path, presented: str) -> None:
    ensure_admin_token(tmp_path)
    assert TokenAuthenticator(tmp_path).authenticate(presented) is None


def test_a_near_miss_is_nobody(tmp_path: Path) -> None:
    token = ensure_admin_token(tmp_path)
    auth = TokenAuthenticator(tmp_path)
    assert auth.authenticate(token[:-1]) is None
    assert auth.authenticate(token + "x") is None


def test_no_token_file_means_no_users(tmp_path: Path) -> None:
    assert TokenAuthenticator(tmp_path / "absent").authenticate("anything") is None


def test_added_tokens_are_distinct_users(tmp_path: Path) -> None:
    node = add_token(tmp_path, "system:node:worker-1", ["system:nodes"])
    viewer = add_token(tmp_path, "viewer", [])
    assert node != viewer
    auth = TokenAuthenticator(tmp_path)
    assert auth.authenticate(node) == User(
        "system:node:worker-1", ("system:nodes", "system:authenticated")
    )
    assert auth.authenticate(viewer) == User("viewer", ("system:authenticated",))


def test_revoke_by_token_takes_effect_without_restart(tmp_path: Path) -> None:
    admin = ensure_admin_token(tmp_path)
    viewer = add_token(tmp_path, "viewer", [])
    auth = TokenAuthenticator(tmp_path)
    assert auth.authenticate(viewer) is not None

    assert revoke(tmp_path, viewer) == 1
    assert auth.authenticate(viewer) is None
    assert auth.authenticate(admin) is not None


def test_revoke_by_user_removes_all_their_tokens(tmp_path: Path) -> None:
    first = add_token(tmp_path, "system:node:w1", ["system:nodes"])
    second = add_token(tmp_path, "system:node:w1", ["system:nodes"])
    other = add_token(tmp_path, "system:node:w2", ["system:nodes"])
    auth = TokenAuthenticator(tmp_path)
    assert auth.authenticate(first) is not None

    assert revoke(tmp_path, "system:node:w1") == 2
    assert auth.authenticate(first) is None
    assert auth.authenticate(second) is None
    assert auth.authenticate(other) is not None
    assert revoke(tmp_path, "nobody") == 0


def test_new_tokens_are_picked_up_without_restart(tmp_path: Path) -> None:
    ensure_admin_token(tmp_path)
    auth = TokenAuthenticator(tmp_path)
    auth.authenticate("warm-up")
    late = add_token(tmp_path, "late", [])
    assert auth.authenticate(late) is not None


def test_a_revoke_is_refused_by_the_very_next_request(tmp_path: Path) -> None:
    token = ensure_admin_token(tmp_path)
    auth = TokenAuthenticator(tmp_path)
    assert auth.authenticate(token) is not None
    revoke(tmp_path, token)
    assert auth.authenticate(token) is None  # no reload interval to wait out


def test_a_broken_hand_edit_keeps_the_last_good_tokens(tmp_path: Path) -> None:
    token = ensure_admin_token(tmp_path)
    auth = TokenAuthenticator(tmp_path)
    assert auth.authenticate(token) is not None
    (tmp_path / "tokens.json").write_text("{not json")
    assert auth.authenticate(token) is not None


def test_a_broken_file_is_a_one_line_error_for_writers(tmp_path: Path) -> None:
    (tmp_path / "tokens.json").write_text("[1, 2]")
    with pytest.raises(TokenFileError) as err:
        add_token(tmp_path, "viewer", [])
    assert "\n" not in str(err.value)
    assert (tmp_path / "tokens.json").read_text() == "[1, 2]"


def test_concurrent_adds_lose_nothing(tmp_path: Path) -> None:
    made: list[str] = []
    lock = threading.Lock()

    def add(i: int) -> None:
        tok = add_token(tmp_path, f"system:node:w{i}", ["system:nodes"])
        with lock:
            made.append(tok)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    auth = TokenAuthenticator(tmp_path)
    assert len(set(made)) == 16
    assert all(auth.authenticate(tok) is not None for tok in made)
