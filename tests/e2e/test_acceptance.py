"""The real-nodes acceptance, as a new user would try it on a 3-node lab with kubectl."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import LabServer, sh, start_lab_server, stop_lab_server, wait_for

pytestmark = pytest.mark.lab

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, lab_images: None) -> Iterator[LabServer]:
    server = start_lab_server(tmp_path_factory.mktemp("accept"), "accept")
    try:
        server.lab("up", "--nodes", "3")
        yield server
    finally:
        server.lab("down", check=False)
        stop_lab_server(server)


def pods(lab: LabServer, selector: str) -> list[dict]:
    return json.loads(lab.kubectl("get", "pods", "-l", selector, "-o", "json").stdout)["items"]


def running_ready(p: dict) -> bool:
    conditions = {c["type"]: c["status"] for c in p.get("status", {}).get("conditions", [])}
    return p.get("status", {}).get("phase") == "Running" and conditions.get("Ready") == "True" \
        and not p["metadata"].get("deletionTimestamp")


def docker_id(p: dict, container: str) -> str:
    for cs in p["status"]["containerStatuses"]:
        if cs["name"] == container:
            return cs["containerID"].removeprefix("docker://")
    raise AssertionError(f"no status for {container}")


@pytest.fixture(scope="module")
def apps(lab: LabServer) -> LabServer:
    lab.kubectl("apply", "-f", str(MANIFESTS))
    wait_for(lambda: len([p for p in pods(lab, "app in (blog,shop,voice)") if running_ready(p)]) == 7, timeout=120)
    return lab


def test_the_apps_run_on_several_nodes_and_answer_at_their_ips(apps: LabServer) -> None:
    blog = pods(apps, "app=blog")
    assert len({p["spec"]["nodeName"] for p in pods(apps, "app in (blog,shop,voice)")}) >= 2
    for p in blog:
        body = sh("curl", "-s", "--max-time", "5", f"http://{p['status']['podIP']}:8080/").stdout
        assert f"pod: {p['metadata']['name']}" in body and "app: blog" in body


def test_a_pod_on_another_node_reaches_a_pod_ip(apps: LabServer) -> None:
    blog = pods(apps, "app=blog")
    target = blog[0]
    other = next(p for p in pods(apps, "app in (shop,voice)") if p["spec"]["nodeName"] != target["spec"]["nodeName"])
    container = docker_id(other, other["spec"]["containers"][0]["name"])
    out = apps.in_node(other["spec"]["nodeName"], "docker", "exec", container, "wget", "-qO-",
                       f"http://{target['status']['podIP']}:8080/")
    assert f"pod: {target['metadata']['name']}" in out.stdout


def test_app_and_sidecar_share_localhost(apps: LabServer) -> None:
    p = pods(apps, "app=blog")[0]
    sidecar = docker_id(p, "log-collector")
    out = apps.in_node(p["spec"]["nodeName"], "docker", "exec", sidecar, "wget", "-qO-", "http://127.0.0.1:8080/")
    assert f"pod: {p['metadata']['name']}" in out.stdout


def test_logs_follow_streams(apps: LabServer) -> None:
    p = pods(apps, "app=blog")[0]
    name, ip = p["metadata"]["name"], p["status"]["podIP"]
    follow = subprocess.Popen(
        ["kubectl", "--kubeconfig", str(apps.kubeconfig), "--cache-dir", str(apps.home / "kcache"),
         "logs", "-f", name, "-c", "blog", "--tail", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=apps.env(),
    )
    try:
        time.sleep(2)
        sh("curl", "-s", "--max-time", "5", f"http://{ip}:8080/logs-follow-marker")
        deadline = time.monotonic() + 30
        seen = ""
        while time.monotonic() < deadline and "logs-follow-marker" not in seen and "response:200" not in seen:
            seen += follow.stdout.readline() if follow.stdout else ""
        assert "response:200" in seen or "logs-follow-marker" in seen
    finally:
        follow.kill()
        follow.wait()


def test_a_killed_container_restarts_and_restarts_go_up(apps: LabServer) -> None:
    p = pods(apps, "app=shop")[0]
    name = p["metadata"]["name"]
    apps.in_node(p["spec"]["nodeName"], "docker", "kill", docker_id(p, "shop"))

    def restarted() -> bool:
        cur = json.loads(apps.kubectl("get", "pod", name, "-o", "json").stdout)
        return cur["status"]["containerStatuses"][0]["restartCount"] >= 1 and running_ready(cur)

    wait_for(restarted, timeout=60)
    row = apps.kubectl("get", "pod", name, "--no-headers").stdout.split()
    assert row[3] in {"1", "2"} or row[3].startswith("1")


def test_crash_loop_and_bad_image_show_their_reasons(apps: LabServer) -> None:
    apps.kubectl("run", "crasher", "--image", "tuik8s/busybox:latest", "--image-pull-policy", "IfNotPresent",
                 "--command", "--", "sh", "-c", "exit 3")
    apps.kubectl("run", "noimage", "--image", "tuik8s/does-not-exist:1.0")

    def reason(pod: str) -> str:
        cur = json.loads(apps.kubectl("get", "pod", pod, "-o", "json").stdout)
        states = cur.get("status", {}).get("containerStatuses") or [{}]
        return (states[0].get("state", {}).get("waiting") or {}).get("reason", "")

    wait_for(lambda: reason("crasher") == "CrashLoopBackOff", timeout=90)
    wait_for(lambda: reason("noimage") in ("ErrImagePull", "ImagePullBackOff"), timeout=60)
    wait_for(lambda: reason("noimage") == "ImagePullBackOff", timeout=60)
    described = apps.kubectl("describe", "pod", "noimage").stdout
    assert "tuik8s/does-not-exist:1.0" in described and "Failed" in described
    apps.kubectl("delete", "pod", "crasher", "noimage", "--wait=false")


def test_restarting_a_kubelet_restarts_no_container(apps: LabServer) -> None:
    before = {p["metadata"]["name"]: (docker_id(p, p["spec"]["containers"][0]["name"]),
                                      p["status"]["containerStatuses"][0]["restartCount"])
              for p in pods(apps, "app=voice")}
    node = pods(apps, "app=voice")[0]["spec"]["nodeName"]
    apps.in_node(node, "pkill", "-f", "tuik8s.*kubelet")
    time.sleep(8)  # the entrypoint starts the kubelet again; give it a few sync rounds
    wait_for(lambda: all(running_ready(p) for p in pods(apps, "app=voice")), timeout=60)
    after = {p["metadata"]["name"]: (docker_id(p, p["spec"]["containers"][0]["name"]),
                                     p["status"]["containerStatuses"][0]["restartCount"])
             for p in pods(apps, "app=voice")}
    assert after == before


def test_stopping_a_node_moves_its_pods_to_the_others(apps: LabServer) -> None:
    blog = pods(apps, "app=blog")
    victim = blog[0]["spec"]["nodeName"]
    on_victim = {p["metadata"]["name"] for p in pods(apps, "app in (blog,shop,voice)") if p["spec"]["nodeName"] == victim}
    started = time.monotonic()
    apps.lab("node", "stop", victim)
    try:
        def moved() -> bool:
            current = [p for p in pods(apps, "app in (blog,shop,voice)") if running_ready(p)]
            names = {p["metadata"]["name"] for p in current}
            return len(current) == 7 and not (names & on_victim) and all(p["spec"]["nodeName"] != victim for p in current)

        wait_for(moved, timeout=120)
        took = time.monotonic() - started
        print(f"pods of {victim} Running elsewhere {took:.1f}s after it stopped")
        assert took <= 120
    finally:
        apps.lab("node", "start", victim, check=False)
