"""Resource metrics and the HorizontalPodAutoscaler on a real server with hollow nodes.

The hollow nodes' pods use what their `tuik8s.io/hollow-cpu` annotation says, so a test
drives the load with `kubectl annotate` and watches what a user would: `kubectl top`,
`kubectl autoscale`, `kubectl get hpa`, the Deployment's replicas and the Events. The
server runs with short windows (scrapes every 2 s, HPA syncs every 2 s, scale-down
stabilization 8 s) so the whole rise and fall takes well under a minute.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from kubernetes import client, config

from tests.integration.conftest import RunningServer, start_server, stop_server, wait_for
from tests.integration.hollow_fixtures import HollowProcess, start_hollow

STABILIZATION = 8


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    base = tmp_path_factory.mktemp("metrics")
    home = base / "home"
    home.mkdir()
    srv = start_server(base / "data", home, extra=(
        "--no-user-kubeconfig", "--metric-resolution", "2", "--hpa-sync-period", "2",
        "--hpa-downscale-stabilization", str(STABILIZATION),
    ))
    try:
        yield srv
    finally:
        stop_server(srv)


@pytest.fixture(scope="module")
def hollow(server: RunningServer) -> Iterator[HollowProcess]:
    proc = start_hollow(server, 2, "metrics-", "--pod-cpu-usage", "5m", "--pod-memory-usage", "20Mi")
    try:
        yield proc
    finally:
        proc.stop()


def deployment(name: str, cpu_use: str, replicas: int = 1, containers: tuple[str, ...] = ("app",)) -> str:
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}, "annotations": {"tuik8s.io/hollow-cpu": cpu_use}},
                "spec": {"containers": [
                    {"name": c, "image": "busybox", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}
                    for c in containers
                ]},
            },
        },
    })


def top(server: RunningServer, *args: str) -> list[list[str]]:
    result = server.kubectl("top", *args)
    if result.returncode != 0:
        return []
    return [line.split() for line in result.stdout.splitlines()[1:]]


def millicores(text: str) -> int:
    return int(text.removesuffix("m")) if text.endswith("m") else int(text) * 1000


def replicas(server: RunningServer, name: str) -> int:
    return int(server.kubectl_json("get", "deployment", name)["spec"].get("replicas", 0))


def test_discovery_lists_the_metrics_group(server: RunningServer) -> None:
    out = server.kubectl("api-resources", "--api-group=metrics.k8s.io", check=True).stdout
    assert "NodeMetrics" in out and "PodMetrics" in out
    versions = server.kubectl("api-versions", check=True).stdout.split()
    assert {"metrics.k8s.io/v1beta1", "autoscaling/v1", "autoscaling/v2"} <= set(versions)


def test_kubectl_top_nodes_and_pods(server: RunningServer, hollow: HollowProcess) -> None:
    server.kubectl("apply", "-f", "-", input=deployment("topped", "250m", replicas=2, containers=("app", "side")), check=True)
    rows = wait_for(lambda: top(server, "nodes"), timeout=30)
    by_node = {r[0]: r for r in rows}
    assert set(hollow.names) <= set(by_node)
    assert by_node[hollow.names[0]][1].endswith("m") and by_node[hollow.names[0]][2].endswith("%")
    pods = wait_for(lambda: len(top(server, "pods", "-l", "app=topped")) == 2 and top(server, "pods", "-l", "app=topped"),
                    timeout=30)
    # two containers at 250m / 20Mi (kubectl rounds nanocores up to the next millicore)
    assert all(abs(millicores(r[1]) - 500) <= 2 and r[2] == "40Mi" for r in pods), pods
    containers = top(server, "pods", "-l", "app=topped", "--containers")
    assert sorted(r[1] for r in containers) == ["app", "app", "side", "side"]
    assert all(abs(millicores(r[2]) - 250) <= 2 for r in containers), containers
    everywhere = top(server, "pods", "-A")
    assert any(r[0] == "default" for r in everywhere)
    none = server.kubectl("top", "pods", "-l", "app=nothing")
    assert none.returncode == 0 and "No resources found" in none.stderr + none.stdout


def test_metrics_api_errors_and_the_official_client(server: RunningServer, hollow: HollowProcess) -> None:
    missing = server.kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/nope")
    assert 'podmetrics.metrics.k8s.io "default/nope" not found' in missing.stderr
    refused = server.kubectl("create", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes", "-f", "-", input="{}")
    assert "MethodNotAllowed" in refused.stderr or "not allow" in refused.stderr
    api = config.new_client_from_config(config_file=str(server.kubeconfig))
    nodes = wait_for(lambda: client.CustomObjectsApi(api).list_cluster_custom_object("metrics.k8s.io", "v1beta1", "nodes")["items"],
                     timeout=30)
    assert {n["metadata"]["name"] for n in nodes} >= set(hollow.names)
    assert all(n["usage"]["cpu"].endswith("n") and n["window"].endswith("s") for n in nodes)


def test_autoscale_up_under_load_and_down_after_the_window(server: RunningServer, hollow: HollowProcess) -> None:
    server.kubectl("apply", "-f", "-", input=deployment("web", "80m"), check=True)
    made = server.kubectl("autoscale", "deployment", "web", "--cpu-percent=50", "--min=1", "--max=4", check=True)
    assert "horizontalpodautoscaler.autoscaling/web autoscaled" in made.stdout
    wait_for(lambda: replicas(server, "web") == 4, timeout=60, interval=0.5)
    table = server.kubectl("get", "hpa", "web", check=True).stdout
    assert "Deployment/web" in table and "/50%" in table and "cpu: " in table
    events = server.kubectl("get", "events", "--field-selector", "involvedObject.name=web,reason=SuccessfulRescale",
                            "-o", "json", check=True)
    messages = [e["message"] for e in json.loads(events.stdout)["items"]]
    assert "New size: 2; reason: cpu resource utilization (percentage of request) above target" in messages
    hpa = server.kubectl_json("get", "hpa", "web")
    assert hpa["status"]["lastScaleTime"]
    conditions = {c["type"]: c for c in hpa["status"]["conditions"]}
    assert conditions["ScalingActive"]["reason"] == "ValidMetricFound"
    # the v1 view kubectl autoscale wrote is the same object
    v1 = json.loads(server.kubectl("get", "--raw", "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers/web",
                                   check=True).stdout)
    assert v1["spec"]["targetCPUUtilizationPercentage"] == 50 and v1["spec"]["maxReplicas"] == 4

    server.kubectl("annotate", "pods", "-l", "app=web", "tuik8s.io/hollow-cpu=5m", "--overwrite", check=True)
    wait_for(lambda: "ScaleDownStabilized" in json.dumps(server.kubectl_json("get", "hpa", "web")["status"]), timeout=30,
             interval=0.5)
    assert replicas(server, "web") == 4  # held by the stabilization window
    wait_for(lambda: replicas(server, "web") == 1, timeout=STABILIZATION + 30, interval=0.5)
    events = server.kubectl("get", "events", "--field-selector", "involvedObject.name=web,reason=SuccessfulRescale",
                            "-o", "json", check=True)
    assert "New size: 1; reason: All metrics below target" in [e["message"] for e in json.loads(events.stdout)["items"]]


def test_hpa_conditions_say_why_it_cannot_scale(server: RunningServer, hollow: HollowProcess) -> None:
    ghost = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "ghost"},
             "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "ghost"},
                      "minReplicas": 1, "maxReplicas": 3}}
    server.kubectl("apply", "-f", "-", input=json.dumps(ghost), check=True)

    def condition(name: str, ctype: str) -> dict | None:
        conds = server.kubectl_json("get", "hpa", name).get("status", {}).get("conditions") or []
        return next((c for c in conds if c["type"] == ctype), None)

    able = wait_for(lambda: condition("ghost", "AbleToScale"), timeout=20)
    assert (able["status"], able["reason"]) == ("False", "FailedGetScale")

    server.kubectl("apply", "-f", "-", input=deployment("custom", "10m"), check=True)
    custom = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "custom"},
              "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "custom"},
                       "minReplicas": 1, "maxReplicas": 3,
                       "metrics": [{"type": "Pods", "pods": {"metric": {"name": "qps"},
                                                             "target": {"type": "AverageValue", "averageValue": "10"}}}]}}
    server.kubectl("apply", "-f", "-", input=json.dumps(custom), check=True)
    active = wait_for(lambda: condition("custom", "ScalingActive"), timeout=20)
    assert (active["status"], active["reason"]) == ("False", "FailedGetPodsMetric")
    assert "custom metrics API" in active["message"]


def test_v1_patch_and_memory_average_value(server: RunningServer, hollow: HollowProcess) -> None:
    server.kubectl("apply", "-f", "-", input=deployment("mem", "10m"), check=True)
    server.kubectl("autoscale", "deployment", "mem", "--cpu-percent=90", "--min=1", "--max=2", check=True)
    server.kubectl("patch", "hpa.v1.autoscaling", "mem", "-p", '{"spec":{"maxReplicas":3}}', check=True)
    assert server.kubectl_json("get", "hpa", "mem")["spec"]["maxReplicas"] == 3
    memory = {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "10Mi"}}}
    server.kubectl("patch", "hpa", "mem", "--type=merge", "-p", json.dumps({"spec": {"metrics": [memory]}}), check=True)
    # 20Mi each against 10Mi: twice the pods, capped at maxReplicas 3 -> 2 from 1
    wait_for(lambda: replicas(server, "mem") >= 2, timeout=40, interval=0.5)
    status = server.kubectl_json("get", "hpa", "mem")["status"]
    assert status["currentMetrics"][0]["resource"]["name"] == "memory"


def test_the_official_client_reads_and_writes_both_versions(server: RunningServer, hollow: HollowProcess) -> None:
    api = config.new_client_from_config(config_file=str(server.kubeconfig))
    v1 = client.AutoscalingV1Api(api)
    body = client.V1HorizontalPodAutoscaler(
        metadata=client.V1ObjectMeta(name="official"),
        spec=client.V1HorizontalPodAutoscalerSpec(
            scale_target_ref=client.V1CrossVersionObjectReference(api_version="apps/v1", kind="Deployment", name="official"),
            min_replicas=1, max_replicas=3, target_cpu_utilization_percentage=70,
        ),
    )
    created = v1.create_namespaced_horizontal_pod_autoscaler("default", body)
    assert created.spec.target_cpu_utilization_percentage == 70
    # (read back once the controller wrote a status: see the report on status.desiredReplicas)
    wait_for(lambda: server.kubectl_json("get", "hpa", "official").get("status", {}).get("conditions"), timeout=20)
    v2 = client.AutoscalingV2Api(api).read_namespaced_horizontal_pod_autoscaler("official", "default")
    assert v2.spec.metrics[0].resource.target.average_utilization == 70
    names = [h.metadata.name for h in v1.list_namespaced_horizontal_pod_autoscaler("default").items]
    assert "official" in names
    v1.delete_namespaced_horizontal_pod_autoscaler("official", "default")
    gone = server.kubectl("get", "hpa", "official")
    assert "NotFound" in gone.stderr


def test_restarted_hollow_nodes_point_the_scraper_at_their_new_endpoint(server: RunningServer, hollow: HollowProcess) -> None:
    def url(name: str) -> str:
        return server.kubectl_json("get", "node", name)["metadata"]["annotations"]["tuik8s.io/resource-metrics-url"]

    before = url(hollow.names[0])
    hollow.stop()
    again = start_hollow(server, 2, "metrics-", "--pod-cpu-usage", "5m", "--pod-memory-usage", "20Mi")
    try:
        after = wait_for(lambda: url(hollow.names[0]) != before and url(hollow.names[0]), timeout=30)
        assert after.startswith("http://127.0.0.1:") and after.endswith(f"/nodes/{hollow.names[0]}/metrics/resource")
        wait_for(lambda: {r[0] for r in top(server, "nodes")} >= set(hollow.names), timeout=30)
    finally:
        again.stop()
