"""The kubelet's usage readings (cgroups, /proc, Docker stats) and hollow nodes' synthetic ones."""

from __future__ import annotations

from pathlib import Path

from tuik8s.kubelet.stats import (
    StatsProvider,
    cgroup_usage,
    machine_usage,
    own_cgroups,
    working_set,
)
from tuik8s.nodes.hollow_metrics import (
    CPU_ANNOTATION,
    HollowMetricsServer,
    Integrator,
    container_usage,
)


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_cgroup_v1_usage_is_cpuacct_and_memory_minus_inactive_file(tmp_path: Path) -> None:
    groups = own_cgroups("12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n")
    assert groups["cpuacct"] == "/docker/abc" and groups["memory"] == "/docker/abc"
    write(tmp_path / "cpuacct/docker/abc/cpuacct.usage", "2500000000\n")
    write(tmp_path / "memory/docker/abc/memory.usage_in_bytes", "1000000\n")
    write(tmp_path / "memory/docker/abc/memory.stat", "cache 5\ntotal_inactive_file 200000\n")
    assert cgroup_usage(tmp_path, groups) == (2.5, 800000.0)


def test_cgroup_v2_usage(tmp_path: Path) -> None:
    groups = own_cgroups("0::/system.slice/node.scope\n")
    write(tmp_path / "system.slice/node.scope/cpu.stat", "usage_usec 1500000\nuser_usec 1\n")
    write(tmp_path / "system.slice/node.scope/memory.current", "4096\n")
    write(tmp_path / "system.slice/node.scope/memory.stat", "anon 1\ninactive_file 1024\n")
    assert cgroup_usage(tmp_path, groups) == (1.5, 3072.0)


def test_machine_usage_from_proc(tmp_path: Path) -> None:
    write(tmp_path / "stat", "cpu  100 0 50 1000 20 0 0 0 0 0\ncpu0 1 2 3 4\n")
    write(tmp_path / "meminfo", "MemTotal:       1000 kB\nMemFree: 10 kB\nMemAvailable:    400 kB\n")
    assert machine_usage(tmp_path) == (1.5, 600 * 1024)


def test_docker_stats_working_set_and_hosts() -> None:
    assert working_set({"usage": 1000, "stats": {"total_inactive_file": 100}}) == 900.0
    assert working_set({"usage": 1000, "stats": {"inactive_file": 300}}) == 700.0
    assert working_set({}) is None
    assert StatsProvider("unix:///run/docker.sock").engine.addressable
    assert StatsProvider("tcp://10.0.0.1:2375").engine.addressable
    assert not StatsProvider("ssh://me@host").engine.addressable


async def test_no_addressable_engine_means_no_container_figures_not_an_error() -> None:
    provider = StatsProvider("ssh://me@host")
    assert await provider.containers() == []
    assert "resource_scrape_error 0" in await provider.document()


def test_hollow_usage_comes_from_annotations_or_defaults() -> None:
    pod = {"metadata": {"annotations": {CPU_ANNOTATION: "400m"}}}
    assert container_usage(pod, "5m", "16Mi") == (0.4, 16 * 1024 * 1024)
    assert container_usage({"metadata": {"annotations": {CPU_ANNOTATION: "lots"}}}, "5m", "1Ki") == (0.005, 1024)


def test_hollow_cpu_is_a_counter_whose_slope_follows_the_load() -> None:
    clock = [100.0]
    integ = Integrator(lambda: clock[0])
    assert integ.read(("p",), 0.5, since=90.0) == 5.0
    clock[0] = 110.0
    assert integ.read(("p",), 2.0, since=90.0) == 25.0  # the new rate from the last reading on


def test_hollow_metrics_document_per_node() -> None:
    pod = {"metadata": {"name": "web", "namespace": "default", "uid": "u1", "annotations": {CPU_ANNOTATION: "100m"}},
           "spec": {"containers": [{"name": "a"}, {"name": "b"}]}}
    server = HollowMetricsServer(lambda node: [(pod, 0.0)] if node == "n1" else [], lambda node: True)
    text = server.document("n1")
    assert 'container_cpu_usage_seconds_total{container="b",namespace="default",pod="web"}' in text
    assert "node_memory_working_set_bytes" in text
    assert "container_cpu" not in server.document("n2")
