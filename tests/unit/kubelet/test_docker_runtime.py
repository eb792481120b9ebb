"""The Docker runtime's pure parts: command mapping, names, times, inspect JSON to ContainerInfo."""

from __future__ import annotations

from typing import Any

import pytest

from tuik8s.kubelet.runtime import APP, CREATED, EXITED, RUNNING, SANDBOX
from tuik8s.kubelet.runtime.docker import (
    container_info,
    container_name,
    docker_command,
    parse_docker_time,
)


@pytest.mark.parametrize(
    ("command", "args", "expected"),
    [
        (None, None, (None, [])),
        (["sh", "-c", "echo hi"], None, ("sh", ["-c", "echo hi"])),
        (None, ["--port", "80"], (None, ["--port", "80"])),
        (["/app"], ["--port", "80"], ("/app", ["--port", "80"])),
        ([], [], (None, [])),
    ],
    ids=["image-defaults", "command-drops-image-cmd", "args-under-image-entrypoint", "both", "empty-is-unset"],
)
def test_kubernetes_command_and_args_onto_docker(command: Any, args: Any, expected: Any) -> None:
    assert docker_command(command, args) == expected


def test_names_are_dockershims() -> None:
    assert container_name("web", "shop", "u-1", "app", 3) == "k8s_app_web_shop_u-1_3"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0001-01-01T00:00:00Z", None),
        ("", None),
        ("1970-01-01T00:01:40Z", 100.0),
        ("1970-01-01T00:01:40.5Z", 100.5),
        ("1970-01-01T00:01:40.123456789Z", 100.123456789),
        ("garbage", None),
    ],
)
def test_docker_times(text: str, expected: float | None) -> None:
    got = parse_docker_time(text)
    assert got == pytest.approx(expected) if expected is not None else got is None


def inspect(status: str, labels: dict[str, str], **state: Any) -> dict[str, Any]:
    return {
        "Id": "abc123",
        "Created": "1970-01-01T00:01:00Z",
        "Image": "sha256:deadbeef",
        "Config": {"Image": "web:1", "Labels": labels},
        "State": {"Status": status, "StartedAt": "0001-01-01T00:00:00Z", "FinishedAt": "0001-01-01T00:00:00Z",
                  "ExitCode": 0, "OOMKilled": False, "Error": "", **state},
        "NetworkSettings": {"IPAddress": "", "Networks": {"bridge": {"IPAddress": "10.244.1.7"}}},
    }


LABELS = {
    "io.kubernetes.pod.uid": "u-1", "io.kubernetes.pod.namespace": "shop", "io.kubernetes.pod.name": "web",
    "io.kubernetes.container.name": "app", "tuik8s.kind": "app", "tuik8s.attempt": "2",
    "io.kubernetes.sandbox.id": "sb1", "io.kubernetes.container.hash": "h1",
}


def test_container_info_running_and_exited() -> None:
    running = container_info(inspect("running", LABELS, StartedAt="1970-01-01T00:01:05Z"))
    assert running is not None
    assert (running.state, running.attempt, running.kind, running.sandbox_id, running.spec_hash) == (RUNNING, 2, APP, "sb1", "h1")
    assert running.started_at == 65 and running.exit_code is None and running.ip == "10.244.1.7"
    exited = container_info(inspect("exited", LABELS, StartedAt="1970-01-01T00:01:05Z",
                                    FinishedAt="1970-01-01T00:01:09Z", ExitCode=137, OOMKilled=True))
    assert exited is not None
    assert (exited.state, exited.exit_code, exited.oom_killed, exited.finished_at) == (EXITED, 137, True, 69)


def test_a_start_that_failed_is_exited_and_never_started() -> None:
    failed = container_info(inspect("created", LABELS, ExitCode=127, Error='exec: "nope": executable file not found'))
    assert failed is not None
    assert failed.state == EXITED and failed.never_started and failed.exit_code == 127
    created = container_info(inspect("created", LABELS))
    assert created is not None and created.state == CREATED


def test_sandbox_and_foreign_containers() -> None:
    sandbox = container_info(inspect("running", {**LABELS, "tuik8s.kind": "sandbox", "io.kubernetes.container.name": "POD"}))
    assert sandbox is not None and sandbox.kind == SANDBOX
    assert container_info(inspect("running", {"com.example": "x"})) is None
