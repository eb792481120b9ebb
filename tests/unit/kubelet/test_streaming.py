"""The kubelet's streaming helpers: Docker's multiplexed stream, the final Status, lookups."""

from __future__ import annotations

import struct

import pytest

from tuik8s.kubelet.streaming import (
    STDERR,
    STDOUT,
    StreamLookupError,
    demux,
    running_container,
    status_of,
)


def frame(stream: int, data: bytes) -> bytes:
    return bytes([stream, 0, 0, 0]) + struct.pack(">I", len(data)) + data


def test_demux_keeps_partial_frames_for_the_next_read():
    whole = frame(1, b"out\n") + frame(2, b"err\n") + frame(1, b"x" * 100)
    buffer = bytearray(whole[:30])
    assert demux(buffer) == [(STDOUT, b"out\n"), (STDERR, b"err\n")]
    buffer += whole[30:]
    assert demux(buffer) == [(STDOUT, b"x" * 100)]
    assert buffer == bytearray()


def test_status_as_upstream_writes_it():
    assert status_of(0, ["true"]) == {"metadata": {}, "status": "Success"}
    failure = status_of(3, ["sh", "-c", "exit 3"])
    assert failure["reason"] == "NonZeroExitCode"
    assert failure["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
    assert failure["message"].endswith("exit code 3")


def pod(state: dict) -> dict:
    return {"status": {"containerStatuses": [{"name": "c", "containerID": "docker://abc", "state": state}]}}


def test_running_container_or_upstreams_errors():
    assert running_container(pod({"running": {}}), "c") == "abc"
    with pytest.raises(StreamLookupError, match='container not found \\("c"\\)'):
        running_container(pod({"waiting": {"reason": "CrashLoopBackOff"}}), "c")
    with pytest.raises(StreamLookupError, match="pod does not exist"):
        running_container(None, "c")
