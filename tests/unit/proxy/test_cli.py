"""`tuik8s proxy`: a user's mistakes end as one line and exit status 1."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuik8s.cli import main


@pytest.mark.parametrize(("args", "says"), [
    ([], "give --kubeconfig FILE, or --server URL --token-file FILE"),
    (["--server", "10.0.0.1:6443", "--token-file", "t"], "give a URL such as https://10.0.0.1:6443"),
    (["--server", "https://10.0.0.1:6443"], "--server needs --token-file"),
    (["--server", "https://10.0.0.1:6443", "--token-file", "/nonexistent/token"], "cannot read the token file"),
    (["--kubeconfig", "/nonexistent/kubeconfig"], "no kubeconfig at /nonexistent/kubeconfig"),
    (["--kubeconfig", "K", "--cluster-cidr", "10.244.0.0/33"], "is not a CIDR"),
], ids=["no-credentials", "server-not-a-url", "no-token", "unreadable-token", "no-kubeconfig", "bad-cidr"])
def test_mistakes_are_one_line(args: list[str], says: str, capsys: pytest.CaptureFixture[str], tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "K").write_text("apiVersion: v1\nkind: Config\n")
    assert main(["proxy", "--node-name", "node1", *args]) == 1
    err = capsys.readouterr().err
    assert says in err and len(err.strip().splitlines()) == 1, err
