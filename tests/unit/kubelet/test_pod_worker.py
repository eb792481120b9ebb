"""The kubelet's pure decisions: restart policy, back-off, $(VAR) expansion, environment, DNS."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tuik8s.kubelet.pod_worker import (
    Backoff,
    ConfigError,
    PodView,
    container_command,
    container_env,
    container_hash,
    dns_settings,
    env_lookup,
    expand,
    go_duration,
    pod_done,
    referenced_objects,
    resource_options,
    service_env,
    should_restart,
    should_restart_init,
    termination_of,
)
from tuik8s.kubelet.runtime import APP, EXITED, RUNNING, SANDBOX, ContainerInfo

Obj = dict[str, Any]


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def pod(**spec: Any) -> Obj:
    return {
        "metadata": {
            "name": "web", "namespace": "shop", "uid": "u-1",
            "labels": {"app": "web", "tier": "front"}, "annotations": {"note": "a\"b"},
        },
        "spec": {"nodeName": "node-1", "serviceAccountName": "robot", **spec},
    }


def info(name: str, *, state: str = EXITED, attempt: int = 0, exit_code: int | None = 0, kind: str = APP, **kw: Any) -> ContainerInfo:
    return ContainerInfo(
        id=f"{name}-{attempt}", pod_uid="u-1", pod_namespace="shop", pod_name="web", container_name=name,
        kind=kind, attempt=attempt, state=state, exit_code=exit_code if state == EXITED else None, **kw,
    )


# --- restart policy ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "code", "restart"),
    [
        ("Always", 0, True), ("Always", 1, True), (None, 0, True),
        ("OnFailure", 0, False), ("OnFailure", 137, True),
        ("Never", 0, False), ("Never", 1, False),
    ],
    ids=lambda v: str(v),
)
def test_restart_policy(policy: str | None, code: int, restart: bool) -> None:
    assert should_restart(policy, code) is restart


def test_init_containers_retry_failures_unless_never_and_sidecars_always_restart() -> None:
    assert should_restart_init("Always", {}, 1)
    assert should_restart_init("OnFailure", {}, 1)
    assert not should_restart_init("Never", {}, 1)
    assert not should_restart_init("Always", {}, 0)
    assert should_restart_init("Never", {"restartPolicy": "Always"}, 0)


# --- back-off ------------------------------------------------------------------------------------


def test_crash_loop_backoff_first_restart_is_immediate_then_doubles_to_the_cap() -> None:
    clock = Clock()
    b = Backoff(10, 300, clock)
    key = "u/app"
    delays = []
    for _ in range(8):
        finished = clock.now
        assert not b.in_backoff_since(key, finished) or delays  # first crash: no back-off yet
        # wait until the back-off since this crash is over, then restart
        clock.now = finished + b.get(key)
        assert not b.in_backoff_since(key, finished)
        delays.append(b.next(key, finished))
        clock.now += 1  # it runs 1 s, then crashes again
    assert delays == [10, 20, 40, 80, 160, 300, 300, 300]


def test_a_crash_right_after_a_restart_is_in_back_off() -> None:
    clock = Clock()
    b = Backoff(10, 300, clock)
    b.next("k", clock.now)  # first restart
    clock.now += 3
    assert b.in_backoff_since("k", clock.now)  # crashed again: wait 10 s from now
    clock.now += 9.9
    assert b.in_backoff_since("k", clock.now - 9.9)
    clock.now += 0.2
    assert not b.in_backoff_since("k", clock.now - 10.1)
    assert b.until("k", 1003) == 1013


def test_backoff_resets_after_running_healthily_for_twice_the_cap() -> None:
    clock = Clock()
    b = Backoff(10, 300, clock)
    for _ in range(4):
        b.next("k", clock.now)
    assert b.get("k") == 80
    clock.now += 601  # ran for more than 10 minutes, then crashed
    assert not b.in_backoff_since("k", clock.now)
    assert b.next("k", clock.now) == 10


def test_lab_backoff_base() -> None:
    clock = Clock()
    b = Backoff(2, 300, clock)
    assert [b.next("k", clock.now) for _ in range(4)] == [2, 4, 8, 16]


def test_image_pull_backoff_since_update() -> None:
    clock = Clock()
    b = Backoff(10, 300, clock)
    assert not b.in_backoff_since_update("img")
    b.next("img", clock.now)
    assert b.in_backoff_since_update("img")
    assert b.update_ends("img") == clock.now + 10
    clock.now += 10.5
    assert not b.in_backoff_since_update("img")
    b.forget("im")
    assert b.get("img") == 0


@pytest.mark.parametrize(
    ("seconds", "text"), [(10, "10s"), (2, "2s"), (80, "1m20s"), (160, "2m40s"), (300, "5m0s"), (0.5, "0.5s")]
)
def test_go_duration(seconds: float, text: str) -> None:
    assert go_duration(seconds) == text


# --- $(VAR) expansion and command/args ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$(A)", "apple"),
        ("x$(A)y$(B)z", "xappleybz"),
        ("$(MISSING)", "$(MISSING)"),
        ("$$(A)", "$(A)"),
        ("$$$(A)", "$apple"),
        ("$(A", "$(A"),
        ("$A", "$A"),
        ("cost: 5$", "cost: 5$"),
        ("$()", "$()"),
        ("$(A)$(A)", "appleapple"),
        ("", ""),
    ],
)
def test_expand_follows_kubernetes_rules(text: str, expected: str) -> None:
    assert expand(text, env_lookup({"A": "apple", "B": "b"})) == expected


@pytest.mark.parametrize(
    ("container", "expected"),
    [
        ({}, (None, None)),
        ({"command": [], "args": []}, (None, None)),
        ({"command": ["sh", "-c"], "args": ["echo $(MSG)"]}, (["sh", "-c"], ["echo hello"])),
        ({"args": ["--name=$(MSG)", "$$(MSG)"]}, (None, ["--name=hello", "$(MSG)"])),
        ({"command": ["/bin/$(NOPE)"]}, (["/bin/$(NOPE)"], None)),
    ],
    ids=["neither", "empty-lists", "both", "args-only", "undefined-var"],
)
def test_container_command(container: Obj, expected: tuple[Any, Any]) -> None:
    assert container_command(container, {"MSG": "hello"}) == expected


# --- environment -----------------------------------------------------------------------------------


CM = {"metadata": {"name": "cfg"}, "data": {"mode": "fast", "level": "3", "bad=key": "x"}}
SECRET = {"metadata": {"name": "db"}, "data": {"password": base64.b64encode(b"s3cret").decode()}}
OBJECTS = {("configmaps", "cfg"): CM, ("secrets", "db"): SECRET, ("configmaps", "gone"): None}


def test_env_field_refs_and_literal_expansion() -> None:
    container = {
        "name": "app",
        "env": [
            {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "NOTE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['note']"}}},
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
            {"name": "URL", "value": "http://$(POD_IP):80/$(NAME)/$(LATER)"},
            {"name": "LATER", "value": "late"},
        ],
    }
    env = dict(container_env(pod(), container, {}, pod_ip="10.244.1.5", host_ip="172.18.0.2"))
    assert env == {
        "NAME": "web", "NS": "shop", "UID": "u-1", "APP": "web", "NOTE": 'a"b', "NODE": "node-1",
        "SA": "robot", "POD_IP": "10.244.1.5", "HOST_IP": "172.18.0.2",
        "URL": "http://10.244.1.5:80/web/$(LATER)", "LATER": "late",
    }


def test_env_from_configmaps_and_secrets_with_prefix_and_overrides() -> None:
    container = {
        "name": "app",
        "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}, {"secretRef": {"name": "db"}}],
        "env": [
            {"name": "CFG_mode", "value": "slow"},
            {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
            {"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "level"}}},
        ],
    }
    env = dict(container_env(pod(), container, OBJECTS))
    assert env["CFG_mode"] == "slow"
    assert env["CFG_level"] == "3"
    assert "CFG_bad=key" not in env
    assert env["password"] == "s3cret"
    assert env["PW"] == "s3cret" and env["LEVEL"] == "3"
    assert referenced_objects(container) == {("configmaps", "cfg"), ("secrets", "db")}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ([{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "gone", "key": "k"}}}], 'configmap "gone" not found'),
        ([{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "nope"}}}],
         "couldn't find key nope in ConfigMap shop/cfg"),
        ([{"name": "X", "valueFrom": {"secretKeyRef": {"name": "db", "key": "user"}}}],
         "couldn't find key user in Secret shop/db"),
        ([{"name": "X", "valueFrom": {"secretKeyRef": {"name": "nosuch", "key": "user"}}}], 'secret "nosuch" not found'),
    ],
    ids=["missing-configmap", "missing-cm-key", "missing-secret-key", "missing-secret"],
)
def test_env_missing_references_are_config_errors(env: list[Obj], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        container_env(pod(), {"name": "app", "env": env}, OBJECTS)
    assert str(err.value) == message


def test_optional_references_are_skipped() -> None:
    container = {
        "name": "app",
        "envFrom": [{"configMapRef": {"name": "gone", "optional": True}}],
        "env": [
            {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "nope", "optional": True}}},
            {"name": "Y", "valueFrom": {"secretKeyRef": {"name": "nosuch", "key": "k", "optional": True}}},
        ],
    }
    assert container_env(pod(), container, OBJECTS) == []


def test_env_resource_field_refs_fall_back_to_node_allocatable() -> None:
    container = {
        "name": "app",
        "resources": {"limits": {"memory": "128Mi"}, "requests": {"cpu": "250m"}},
        "env": [
            {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
            {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu"}}},
            {"name": "CPU_M", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu", "divisor": "1m"}}},
            {"name": "CPU_LIMIT", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
        ],
    }
    p = pod(containers=[container])
    env = dict(container_env(p, container, {}, allocatable={"cpu": "4", "memory": "8Gi"}))
    assert env == {"MEM": "128", "CPU": "1", "CPU_M": "250", "CPU_LIMIT": "4"}


def test_service_variables() -> None:
    services = [
        {"metadata": {"name": "kubernetes", "namespace": "default"},
         "spec": {"clusterIP": "10.96.0.1", "ports": [{"name": "https", "port": 443, "protocol": "TCP"}]}},
        {"metadata": {"name": "redis-main", "namespace": "shop"},
         "spec": {"clusterIP": "10.96.0.20", "ports": [{"port": 6379, "protocol": "TCP"}]}},
        {"metadata": {"name": "headless", "namespace": "shop"}, "spec": {"clusterIP": "None", "ports": [{"port": 80}]}},
        {"metadata": {"name": "elsewhere", "namespace": "other"}, "spec": {"clusterIP": "10.96.0.30", "ports": [{"port": 80}]}},
    ]
    env = service_env(services, "shop")
    assert env["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"
    assert env["KUBERNETES_SERVICE_PORT"] == "443"
    assert env["KUBERNETES_SERVICE_PORT_HTTPS"] == "443"
    assert env["KUBERNETES_PORT"] == "tcp://10.96.0.1:443"
    assert env["REDIS_MAIN_SERVICE_HOST"] == "10.96.0.20"
    assert env["REDIS_MAIN_PORT_6379_TCP"] == "tcp://10.96.0.20:6379"
    assert env["REDIS_MAIN_PORT_6379_TCP_PROTO"] == "tcp"
    assert env["REDIS_MAIN_PORT_6379_TCP_PORT"] == "6379"
    assert env["REDIS_MAIN_PORT_6379_TCP_ADDR"] == "10.96.0.20"
    assert not any(k.startswith(("HEADLESS", "ELSEWHERE")) for k in env)
    without_links = service_env(services, "shop", enable_service_links=False)
    assert "REDIS_MAIN_SERVICE_HOST" not in without_links and "KUBERNETES_SERVICE_HOST" in without_links


def test_service_variables_are_defaults_and_expandable() -> None:
    container = {"name": "app", "env": [
        {"name": "DB", "value": "$(REDIS_SERVICE_HOST):6379"},
        {"name": "REDIS_SERVICE_PORT", "value": "1"},
    ]}
    env = dict(container_env(pod(), container, {}, service_env={"REDIS_SERVICE_HOST": "10.0.0.9", "REDIS_SERVICE_PORT": "6379"}))
    assert env == {"DB": "10.0.0.9:6379", "REDIS_SERVICE_PORT": "1", "REDIS_SERVICE_HOST": "10.0.0.9"}


# --- resources, DNS, hashing -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resources", "expected"),
    [
        ({}, (None, None, None)),
        ({"limits": {"memory": "64Mi", "cpu": "500m"}, "requests": {"cpu": "250m"}}, (64 * 2**20, 0.5, 256)),
        ({"limits": {"cpu": "2"}}, (None, 2.0, 2048)),
        ({"requests": {"cpu": "1m"}}, (None, None, 2)),
    ],
    ids=["none", "limits-and-request", "limit-only", "tiny-request"],
)
def test_resource_options(resources: Obj, expected: tuple[Any, Any, Any]) -> None:
    assert resource_options({"resources": resources}) == expected


def test_dns_cluster_first_uses_the_cluster_dns_and_search_path() -> None:
    servers, searches, options = dns_settings(pod(), ["10.96.0.10"], "cluster.local", ["127.0.0.1"])
    assert servers == ["10.96.0.10"]
    assert searches == ["shop.svc.cluster.local", "svc.cluster.local", "cluster.local"]
    assert options == ["ndots:5"]


def test_dns_without_cluster_dns_or_on_the_host_network_is_the_nodes() -> None:
    assert dns_settings(pod(), [], "cluster.local", ["127.0.0.1"]) == (["127.0.0.1"], [], [])
    assert dns_settings(pod(hostNetwork=True), ["10.96.0.10"], "cluster.local", ["10.0.0.2"])[0] == ["10.0.0.2"]
    with_host_net = pod(hostNetwork=True, dnsPolicy="ClusterFirstWithHostNet")
    assert dns_settings(with_host_net, ["10.96.0.10"], "cluster.local", [])[0] == ["10.96.0.10"]


def test_dns_none_and_dns_config() -> None:
    p = pod(dnsPolicy="None", dnsConfig={
        "nameservers": ["10.0.0.53"], "searches": ["example.test"],
        "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}],
    })
    assert dns_settings(p, ["10.96.0.10"], "cluster.local", ["127.0.0.1"]) == (
        ["10.0.0.53"], ["example.test"], ["ndots:2", "edns0"],
    )
    merged = dns_settings(pod(dnsConfig={"options": [{"name": "ndots", "value": "1"}]}), ["10.96.0.10"], "cluster.local", [])
    assert merged[2] == ["ndots:1"]


def test_container_hash_is_stable_and_changes_with_the_image() -> None:
    a = {"name": "app", "image": "web:1", "env": [{"name": "A", "value": "1"}]}
    assert container_hash(a) == container_hash(dict(reversed(list(a.items()))))
    assert container_hash(a) != container_hash({**a, "image": "web:2"})


# --- pod completion and terminations ------------------------------------------------------------


def view(*infos: ContainerInfo) -> PodView:
    return PodView.of(infos)


def test_pod_done_per_restart_policy() -> None:
    two = [{"name": "a"}, {"name": "b"}]
    ok_a, ok_b = info("a", exit_code=0), info("b", exit_code=0)
    failed_b = info("b", exit_code=2)
    running_b = info("b", state=RUNNING)
    assert not pod_done(pod(containers=two), view(ok_a, ok_b))  # Always never ends
    assert pod_done(pod(containers=two, restartPolicy="OnFailure"), view(ok_a, ok_b))
    assert not pod_done(pod(containers=two, restartPolicy="OnFailure"), view(ok_a, failed_b))
    assert pod_done(pod(containers=two, restartPolicy="Never"), view(ok_a, failed_b))
    assert not pod_done(pod(containers=two, restartPolicy="Never"), view(ok_a, running_b))
    assert not pod_done(pod(containers=two, restartPolicy="Never"), view(ok_a))
    failed_init = info("setup", exit_code=1)
    spec = {"containers": two, "initContainers": [{"name": "setup"}], "restartPolicy": "Never"}
    assert pod_done(pod(**spec), view(failed_init))
    assert not pod_done(pod(**{**spec, "restartPolicy": "OnFailure"}), view(failed_init))


def test_view_orders_attempts_newest_first() -> None:
    v = view(info("a", attempt=0), info("a", attempt=2), info("a", attempt=1),
             info("POD", kind=SANDBOX, attempt=0), info("POD", kind=SANDBOX, attempt=1, state=RUNNING))
    assert [i.attempt for i in v.containers["a"]] == [2, 1, 0]
    assert v.sandbox is not None and v.sandbox.attempt == 1


@pytest.mark.parametrize(
    ("kw", "reason", "code"),
    [
        ({"exit_code": 0}, "Completed", 0),
        ({"exit_code": 3}, "Error", 3),
        ({"exit_code": 137, "oom_killed": True}, "OOMKilled", 137),
        ({"exit_code": 127, "error": "exec: \"nope\": executable file not found"}, "StartError", 127),
    ],
    ids=["completed", "error", "oom", "start-error"],
)
def test_termination_reasons(kw: Obj, reason: str, code: int) -> None:
    started = None if "error" in kw else 100.0
    t = termination_of(info("a", started_at=started, finished_at=105.0, created_at=99.0, **kw))
    assert (t.reason, t.exit_code) == (reason, code)
    assert t.finished_at == "1970-01-01T00:01:45Z"
    assert t.container_id == "docker://a-0"
