"""The metrics scraper's reading of kubelets, its rates, and the metrics.k8s.io formats."""

from __future__ import annotations

import asyncio

import pytest

from tuik8s.apiserver.autoscalingv1 import to_v1, to_v2
from tuik8s.apiserver.metricsapi import format_cpu, format_memory, go_duration
from tuik8s.apiserver.metricsscraper import (
    MetricsScraper,
    MetricsStorage,
    node_scrape,
    parse_prometheus,
)
from tuik8s.kubelet.stats import ContainerUsage, NodeUsage, render


def kubelet_text(t: float, node_cpu: float, containers: dict[tuple[str, str, str], tuple[float, float, float]]) -> str:
    return render(
        NodeUsage(node_cpu, 512 * 1024 * 1024, t),
        [ContainerUsage(ns, pod, c, cpu, mem, start, t) for (ns, pod, c), (cpu, mem, start) in containers.items()],
    )


def test_the_kubelet_text_reads_back() -> None:
    text = kubelet_text(1000.0, 12.5, {("default", "web", "app"): (3.25, 4096.0, 900.0)})
    assert "# TYPE container_cpu_usage_seconds_total counter" in text
    samples = {(name, tuple(sorted(labels.items()))): (value, ts) for name, labels, value, ts in parse_prometheus(text)}
    labels = (("container", "app"), ("namespace", "default"), ("pod", "web"))
    assert samples[("container_cpu_usage_seconds_total", labels)] == (3.25, 1000.0)
    assert samples[("container_start_time_seconds", labels)][0] == 900.0
    assert samples[("node_cpu_usage_seconds_total", ())] == (12.5, 1000.0)


def test_label_values_with_quotes_and_commas_survive() -> None:
    text = 'm{a="x,\\"y\\"",b="z"} 1 2000\n'
    assert list(parse_prometheus(text)) == [("m", {"a": 'x,"y"', "b": "z"}, 1.0, 2.0)]


def test_usage_is_the_rate_between_two_scrapes() -> None:
    storage = MetricsStorage()
    key = ("default", "web", "app")
    storage.store({"n1": node_scrape(kubelet_text(100.0, 10.0, {key: (1.0, 8192.0, 50.0)}), 100.0)})
    # the container's rate since its start is known at once; the node's needs two readings
    assert "n1" not in storage.nodes
    assert storage.pods[("default", "web")][2][0][1].cpu == pytest.approx(1.0 / 50)
    storage.store({"n1": node_scrape(kubelet_text(110.0, 15.0, {key: (1.5, 8192.0, 50.0)}), 110.0)})
    assert storage.nodes["n1"].cpu == pytest.approx(0.5)
    assert storage.nodes["n1"].window == pytest.approx(10.0)
    _, window, containers = storage.pods[("default", "web")]
    assert (containers[0][0], containers[0][1].cpu, containers[0][1].memory, window) == ("app", pytest.approx(0.05), 8192.0, 10.0)


def test_a_restarted_container_starts_its_rate_again_and_a_failed_node_drops_out() -> None:
    storage = MetricsStorage()
    key = ("default", "web", "app")
    storage.store({"n1": node_scrape(kubelet_text(100.0, 10.0, {key: (5.0, 1.0, 50.0)}), 100.0)})
    storage.store({"n1": node_scrape(kubelet_text(110.0, 11.0, {key: (0.5, 1.0, 105.0)}), 110.0)})
    assert storage.pods[("default", "web")][2][0][1].cpu == pytest.approx(0.1)  # 0.5 s over 5 s since start
    storage.store({})
    assert storage.nodes == {} and storage.pods == {}


def test_a_pod_is_reported_whole_or_not_at_all() -> None:
    storage = MetricsStorage()
    text = kubelet_text(100.0, 1.0, {("d", "p", "a"): (1.0, 1.0, 10.0)}) + \
        'container_cpu_usage_seconds_total{container="b",namespace="d",pod="p"} 1 100000\n'
    storage.store({"n1": node_scrape(text, 100.0)})
    assert ("d", "p") not in storage.pods  # b has no memory figure


def test_the_scraper_skips_nodes_that_are_not_ready_and_survives_failures() -> None:
    ready = {"metadata": {"name": "a"}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    broken = {"metadata": {"name": "b"}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    down = {"metadata": {"name": "c"}, "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}}
    asked: list[str] = []

    async def fetch(node: dict) -> str:
        asked.append(node["metadata"]["name"])
        if node["metadata"]["name"] == "b":
            raise OSError("connection refused")
        return kubelet_text(100.0, 1.0, {})

    scraper = MetricsScraper(lambda: [ready, broken, down], fetch)
    asyncio.run(scraper.scrape_once())
    assert sorted(asked) == ["a", "b"]


@pytest.mark.parametrize(("seconds", "text"), [(15.0, "15s"), (15.0021, "15.002s"), (60.5, "1m0.5s"), (0, "0s"), (3725, "1h2m5s")])
def test_windows_print_as_go_durations(seconds, text) -> None:
    assert go_duration(seconds) == text


def test_usage_quantities_as_metrics_server_writes_them() -> None:
    assert format_cpu(0.25) == "250000000n"
    assert format_memory(8192) == "8Ki"
    assert format_memory(1000) == "1000"


def test_autoscaling_v1_round_trips_what_it_cannot_say() -> None:
    v2 = {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": "default", "annotations": {"team": "blue"}},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 1, "maxReplicas": 5,
            "metrics": [
                {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}},
                {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "100Mi"}}},
            ],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}},
        },
        "status": {
            "currentReplicas": 2, "desiredReplicas": 3,
            "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 70}}}],
            "conditions": [{"type": "AbleToScale", "status": "True"}],
        },
    }
    v1 = to_v1(v2)
    assert v1["spec"]["targetCPUUtilizationPercentage"] == 50
    assert v1["status"] == {"currentReplicas": 2, "desiredReplicas": 3, "currentCPUUtilizationPercentage": 70}
    assert v1["metadata"]["annotations"]["team"] == "blue"
    back = to_v2(v1)
    assert back["spec"] == v2["spec"]
    assert back["status"]["conditions"] == v2["status"]["conditions"]
    assert back["metadata"]["annotations"] == {"team": "blue"}


def test_a_v1_hpa_without_a_target_gets_the_v2_default_later() -> None:
    v1 = {"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "x"},
          "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "x"}, "maxReplicas": 3}}
    assert "metrics" not in to_v2(v1)["spec"]
