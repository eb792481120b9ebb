"""Kubeconfig files: merged like kubectl reads them, written like kind writes them."""

from __future__ import annotations

import base64
import os
import shutil
import stat
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from tuik8s.client.kubeconfig import (
    ClusterAccess,
    KubeconfigError,
    access_for,
    build_kubeconfig,
    contexts,
    current_context,
    kubeconfig_paths,
    load_merged,
    merge_into_user_kubeconfig,
    remove_from_user_kubeconfig,
    write_kubeconfig,
)

CA = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh HOME with no KUBECONFIG, so the real ~/.kube is never touched."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    return home


def foreign_config() -> dict[str, Any]:
    """A kubeconfig someone else wrote, with entries and keys we must not disturb."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {"colors": True},
        "clusters": [
            {
                "name": "prod",
                "cluster": {"server": "https://prod:6443", "insecure-skip-tls-verify": True},
            }
        ],
        "users": [{"name": "prod-admin", "user": {"token": "prod-token"}}],
        "contexts": [
            {
                "name": "prod",
                "context": {"cluster": "prod", "user": "prod-admin", "namespace": "web"},
            }
        ],
        "current-context": "prod",
        "extensions": [{"name": "x", "extension": {"k": "v"}}],
    }


def write_yaml(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))


def read_yaml(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def one_line(err: pytest.ExceptionInfo[KubeconfigError]) -> str:
    text = str(err.value)
    assert text and "\n" not in text
    return text


# --- paths -------------------------------------------------------------------------------------


def test_default_path_is_home_kube_config(home: Path) -> None:
    assert kubeconfig_paths() == [home / ".kube" / "config"]


def test_kubeconfig_env_is_split_on_pathsep(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join(["/a/one", "", "/b/two", "/a/one"]))
    assert kubeconfig_paths() == [Path("/a/one"), Path("/b/two")]


def test_a_given_kubeconfig_is_read_alone(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # as kubectl --kubeconfig: neither $KUBECONFIG nor ~/.kube/config is looked at, or changed
    write_kubeconfig(home / ".kube" / "config", build_kubeconfig("home", "https://10.0.0.1:6443", CA, "home-tok"))
    monkeypatch.setenv("KUBECONFIG", str(home / ".kube" / "config"))
    only = home / "lab" / "kubeconfig"
    write_kubeconfig(only, build_kubeconfig("lab", "https://10.0.0.2:6443", CA, "lab-tok"))
    assert kubeconfig_paths(only) == [only]
    access = access_for(None, only)
    assert (access.context, access.token) == ("lab", "lab-tok")
    with pytest.raises(KubeconfigError, match=f'context "home" not found in {only}'):
        access_for("home", only)
    assert os.environ["KUBECONFIG"] == str(home / ".kube" / "config")
    assert access_for().context == "home"


# --- build, write, read back ------------------------------------------------------------------


def test_built_config_round_trips_to_access(home: Path) -> None:
    config = build_kubeconfig("tuik8s", "https://127.0.0.1:6443", CA, "tok-123", namespace="apps")
    path = home / ".kube" / "config"
    write_kubeconfig(path, config)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert current_context() == "tuik8s"
    assert contexts() == ["tuik8s"]
    assert access_for() == ClusterAccess(
        context="tuik8s",
        server="https://127.0.0.1:6443",
        namespace="apps",
        ca_data=CA,
        insecure=False,
        token="tok-123",
        client_cert=None,
        client_key=None,
    )


def test_official_client_loads_a_built_config(home: Path) -> None:
    kubernetes = pytest.importorskip("kubernetes")
    path = home / ".kube" / "config"
    write_kubeconfig(path, build_kubeconfig("tuik8s", "https://127.0.0.1:6443", CA, "tok-123"))
    cfg = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=str(path), client_configuration=cfg)
    assert cfg.host == "https://127.0.0.1:6443"
    assert cfg.api_key["BearerToken"] == "Bearer tok-123"
    assert Path(cfg.ssl_ca_cert).read_bytes() == CA


def test_file_references_resolve_against_their_kubeconfig(home: Path) -> None:
    kube = home / ".kube"
    (kube / "pki").mkdir(parents=True)
    (kube / "pki" / "ca.crt").write_bytes(CA)
    (kube / "pki" / "client.crt").write_bytes(b"CERT")
    (kube / "pki" / "client.key").write_bytes(b"KEY")
    (kube / "token").write_text("file-token\n")
    write_yaml(
        kube / "config",
        {
            "clusters": [
                {
                    "name": "c",
                    "cluster": {"server": "https://h:6443", "certificate-authority": "pki/ca.crt"},
                }
            ],
            "users": [
                {
                    "name": "certs",
                    "user": {
                        "client-certificate": "pki/client.crt",
                        "client-key": "pki/client.key",
                    },
                },
                {"name": "tf", "user": {"tokenFile": "token"}},
            ],
            "contexts": [
                {"name": "by-cert", "context": {"cluster": "c", "user": "certs"}},
                {"name": "by-file", "context": {"cluster": "c", "user": "tf"}},
            ],
        },
    )
    by_cert = access_for("by-cert")
    assert (by_cert.ca_data, by_cert.client_cert, by_cert.client_key) == (CA, b"CERT", b"KEY")
    assert by_cert.namespace == "default"
    assert access_for("by-file").token == "file-token"


def test_data_fields_are_base64_decoded(home: Path) -> None:
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    write_yaml(
        home / ".kube" / "config",
        {
            "clusters": [
                {
                    "name": "c",
                    "cluster": {"server": "https://h", "certificate-authority-data": b64(CA)},
                }
            ],
            "users": [
                {
                    "name": "u",
                    "user": {"client-certificate-data": b64(b"C"), "client-key-data": b64(b"K")},
                }
            ],
            "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "x",
        },
    )
    access = access_for()
    assert (access.ca_data, access.client_cert, access.client_key, access.token) == (
        CA,
        b"C",
        b"K",
        None,
    )


def test_insecure_cluster(home: Path) -> None:
    write_yaml(home / ".kube" / "config", foreign_config())
    access = access_for("prod")
    assert access.insecure and access.ca_data is None
    assert (access.token, access.namespace) == ("prod-token", "web")


# --- merging -----------------------------------------------------------------------------------


def test_merge_creates_the_file_and_its_directory(home: Path) -> None:
    written = merge_into_user_kubeconfig(
        build_kubeconfig("tuik8s", "https://127.0.0.1:6443", CA, "t")
    )
    assert written == home / ".kube" / "config"
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert access_for().server == "https://127.0.0.1:6443"


def test_merge_keeps_foreign_entries_and_sets_current(home: Path) -> None:
    path = home / ".kube" / "config"
    write_yaml(path, foreign_config())
    merge_into_user_kubeconfig(build_kubeconfig("tuik8s", "https://127.0.0.1:6443", CA, "t"))
    after = read_yaml(path)
    assert after["current-context"] == "tuik8s"
    assert [c["name"] for c in after["clusters"]] == ["prod", "tuik8s"]
    assert [u["name"] for u in after["users"]] == ["prod-admin", "tuik8s"]
    assert [c["name"] for c in after["contexts"]] == ["prod", "tuik8s"]
    before = foreign_config()
    for key in ("preferences", "extensions"):
        assert after[key] == before[key]
    assert after["clusters"][0] == before["clusters"][0]
    assert access_for("prod").token == "prod-token"


def test_merge_again_replaces_in_place(home: Path) -> None:
    path = home / ".kube" / "config"
    write_yaml(path, foreign_config())
    merge_into_user_kubeconfig(build_kubeconfig("tuik8s", "https://127.0.0.1:6443", CA, "old"))
    merge_into_user_kubeconfig(build_kubeconfig("tuik8s", "https://127.0.0.1:7443", CA, "new"))
    after = read_yaml(path)
    assert [c["name"] for c in after["contexts"]] == ["prod", "tuik8s"]
    access = access_for("tuik8s")
    assert (access.server, access.token) == ("https://127.0.0.1:7443", "new")


def test_merge_without_set_current_leaves_current_context(home: Path) -> None:
    write_yaml(home / ".kube" / "config", foreign_config())
    merge_into_user_kubeconfig(build_kubeconfig("tuik8s", "https://h", CA, "t"), set_current=False)
    assert current_context() == "prod"
    assert "tuik8s" in contexts()


def test_two_files_in_kubeconfig_env(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "a" / "config", tmp_path / "b" / "config"
    other = foreign_config()
    other["clusters"].append({"name": "shared", "cluster": {"server": "https://from-second"}})
    write_yaml(second, other)
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([str(first), str(second)]))

    # Before anything is written to the first file, everything comes from the second.
    assert current_context() == "prod"

    written = merge_into_user_kubeconfig(build_kubeconfig("tuik8s", "https://h", CA, "t"))
    assert written == first
    assert read_yaml(second) == other  # untouched
    assert not (home / ".kube").exists()  # the default file is not used when KUBECONFIG is set

    # The first file wins for names it defines and for current-context.
    config = read_yaml(first)
    config["clusters"].append({"name": "shared", "cluster": {"server": "https://from-first"}})
    write_yaml(first, config)
    merged = load_merged()
    assert merged["current-context"] == "tuik8s"
    assert {c["name"]: c["cluster"]["server"] for c in merged["clusters"]}[
        "shared"
    ] == "https://from-first"
    assert contexts() == ["tuik8s", "prod"]
    assert access_for("prod").token == "prod-token"


def test_concurrent_merges_lose_nothing(home: Path) -> None:
    write_yaml(home / ".kube" / "config", foreign_config())
    names = [f"cluster-{i}" for i in range(12)]
    threads = [
        threading.Thread(
            target=merge_into_user_kubeconfig,
            args=(build_kubeconfig(name, f"https://{name}", CA, name),),
        )
        for name in names
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(contexts()) == {"prod", *names}


def test_symlinked_kubeconfig_stays_a_symlink(home: Path, tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "kubeconfig"
    write_yaml(real, foreign_config())
    link = home / ".kube" / "config"
    link.parent.mkdir()
    link.symlink_to(real)
    merge_into_user_kubeconfig(build_kubeconfig("tuik8s", "https://h", CA, "t"))
    assert link.is_symlink()
    assert "tuik8s" in [c["name"] for c in read_yaml(real)["contexts"]]


def test_merge_refuses_to_overwrite_a_broken_file(home: Path) -> None:
    path = home / ".kube" / "config"
    path.parent.mkdir()
    path.write_text("clusters: [unclosed\n")
    with pytest.raises(KubeconfigError) as err:
        merge_into_user_kubeconfig(build_kubeconfig("tuik8s", "https://h", CA, "t"))
    assert "not valid YAML" in one_line(err)
    assert path.read_text() == "clusters: [unclosed\n"


def test_remove_drops_only_our_entries(home: Path) -> None:
    path = home / ".kube" / "config"
    write_yaml(path, foreign_config())
    merge_into_user_kubeconfig(build_kubeconfig("tuik8s", "https://h", CA, "t"))
    remove_from_user_kubeconfig("tuik8s")
    after = read_yaml(path)
    before = foreign_config()
    for key in ("clusters", "users", "contexts", "preferences", "extensions"):
        assert after[key] == before[key]
    assert after["current-context"] == ""
    remove_from_user_kubeconfig("tuik8s")  # again: nothing to do, no error


def test_remove_without_a_file_is_a_no_op(home: Path) -> None:
    remove_from_user_kubeconfig("tuik8s")
    assert not (home / ".kube" / "config").exists()


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
def test_kubectl_reads_and_still_writes_a_merged_file(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "a" / "config", tmp_path / "b" / "config"
    write_yaml(second, foreign_config())
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([str(first), str(second)]))
    merge_into_user_kubeconfig(build_kubeconfig("tuik8s", "https://127.0.0.1:6443", CA, "t"))

    def kubectl(*args: str) -> str:
        done = subprocess.run(["kubectl", *args], capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert kubectl("config", "current-context").strip() == "tuik8s"
    assert set(kubectl("config", "get-contexts", "-o", "name").split()) == {"tuik8s", "prod"}
    # No lock file of ours is left behind to stop kubectl writing its own config.
    kubectl("config", "set-context", "tuik8s", "--namespace=kube-system")
    assert access_for().namespace == "kube-system"
    assert access_for().token == "t"


# --- errors are one line ---------------------------------------------------------------------


def test_missing_context(home: Path) -> None:
    write_yaml(home / ".kube" / "config", foreign_config())
    with pytest.raises(KubeconfigError) as err:
        access_for("x")
    assert one_line(err) == f'context "x" not found in {home / ".kube" / "config"}'


def test_no_config_at_all(home: Path) -> None:
    with pytest.raises(KubeconfigError) as err:
        access_for()
    assert "no current context" in one_line(err)
    assert current_context() is None
    assert contexts() == []


@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        (
            {"contexts": [{"name": "prod", "context": {"cluster": "gone", "user": "prod-admin"}}]},
            'cluster "gone"',
        ),
        (
            {"contexts": [{"name": "prod", "context": {"cluster": "prod", "user": "gone"}}]},
            'user "gone"',
        ),
        ({"clusters": [{"name": "prod", "cluster": {}}]}, "has no server"),
        (
            {"users": [{"name": "prod-admin", "user": {"exec": {"command": "aws"}}}]},
            "exec credential plugin",
        ),
        (
            {"users": [{"name": "prod-admin", "user": {"auth-provider": {"name": "oidc"}}}]},
            "auth-provider",
        ),
        (
            {"users": [{"name": "prod-admin", "user": {"client-certificate-data": "!!!"}}]},
            "not valid base64",
        ),
        (
            {"users": [{"name": "prod-admin", "user": {"tokenFile": "/nonexistent/token"}}]},
            "cannot read",
        ),
        (
            {"users": [{"name": "prod-admin", "user": {"client-certificate-data": "QQ=="}}]},
            "without the other",
        ),
        (
            {
                "clusters": [
                    {
                        "name": "prod",
                        "cluster": {
                            "server": "https://h",
                            "insecure-skip-tls-verify": True,
                            "certificate-authority-data": "QQ==",
                        },
                    }
                ]
            },
            "insecure-skip-tls-verify",
        ),
    ],
    ids=[
        "cluster",
        "user",
        "server",
        "exec",
        "auth-provider",
        "base64",
        "token-file",
        "half-cert",
        "insecure-and-ca",
    ],
)
def test_broken_entries(home: Path, broken: dict[str, Any], expected: str) -> None:
    write_yaml(home / ".kube" / "config", {**foreign_config(), **broken})
    with pytest.raises(KubeconfigError) as err:
        access_for("prod")
    assert expected in one_line(err)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("a: [1\n", "not valid YAML at line"),
        ("- just\n- a list\n", "expected a mapping"),
        ("clusters: {name: x}\n", "clusters must be a list"),
        ("contexts: [{context: {}}]\n", "needs a name"),
    ],
    ids=["yaml", "not-mapping", "not-list", "nameless"],
)
def test_unreadable_files(home: Path, content: str, expected: str) -> None:
    path = home / ".kube" / "config"
    path.parent.mkdir()
    path.write_text(content)
    with pytest.raises(KubeconfigError) as err:
        load_merged()
    assert expected in one_line(err)
    assert str(path) in str(err.value)


def test_kubeconfig_that_is_a_directory(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path))
    with pytest.raises(KubeconfigError) as err:
        access_for()
    assert "is a directory" in one_line(err)


def test_missing_files_in_kubeconfig_env_are_skipped(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    present = tmp_path / "present"
    write_yaml(present, foreign_config())
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([str(tmp_path / "absent"), str(present)]))
    assert access_for().context == "prod"
