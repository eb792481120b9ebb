"""Server-side printing: the Table kubectl prints, cell by cell, as a real cluster shows it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from tuik8s.api.registry import RESOURCES, by_key
from tuik8s.apiserver.tables import human_duration, to_table

NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
S, M, H, D = 1, 60, 3600, 86400


def ago(seconds: float, *, micro: bool = False) -> str:
    """An RFC 3339 timestamp `seconds` before NOW (MicroTime when `micro`)."""
    t = NOW - timedelta(seconds=seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if micro else "%Y-%m-%dT%H:%M:%SZ")


def table(key: str, *objects: dict, **kwargs) -> dict:
    return to_table(by_key(key), list(objects), now=NOW, **kwargs)


def cells(key: str, obj: dict) -> list:
    return table(key, obj)["rows"][0]["cells"]


def columns(key: str) -> list[tuple[str, int]]:
    return [(c["name"].upper(), c["priority"]) for c in table(key)["columnDefinitions"]]


# ---------------------------------------------------------------------------------------
# human_duration: upstream duration.HumanDuration's own cases

ms = timedelta(milliseconds=1)
sec, minute, hour, day = (timedelta(seconds=n) for n in (1, 60, 3600, 86400))
year = 365 * day


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        (sec, "1s"),
        (70 * sec, "70s"),
        (190 * sec, "3m10s"),
        (70 * minute, "70m"),
        (47 * hour, "47h"),
        (49 * hour, "2d1h"),
        ((8 * 24 + 2) * hour, "8d"),
        (367 * day, "367d"),
        ((365 * 2 * 24 + 25) * hour, "2y1d"),
        ((365 * 8 * 24 + 2) * hour, "8y"),
        # boundaries
        (-2 * sec, "<invalid>"),
        (-2 * sec + timedelta(microseconds=1), "0s"),
        (timedelta(0), "0s"),
        (sec - ms, "0s"),
        (2 * minute - ms, "119s"),
        (2 * minute, "2m"),
        (2 * minute + sec, "2m1s"),
        (10 * minute - ms, "9m59s"),
        (10 * minute, "10m"),
        (10 * minute + sec, "10m"),
        (3 * hour - ms, "179m"),
        (3 * hour, "3h"),
        (3 * hour + minute, "3h1m"),
        (8 * hour - ms, "7h59m"),
        (8 * hour, "8h"),
        (8 * hour + 59 * minute, "8h"),
        (2 * day - ms, "47h"),
        (2 * day, "2d"),
        (2 * day + hour, "2d1h"),
        (8 * day - ms, "7d23h"),
        (8 * day, "8d"),
        (8 * day + 23 * hour, "8d"),
        (2 * year - ms, "729d"),
        (2 * year, "2y"),
        (2 * year + 23 * hour, "2y"),
        (2 * year + 23 * hour + 59 * minute, "2y"),
        (2 * year + day - ms, "2y"),
        (2 * year + day, "2y1d"),
        (3 * year, "3y"),
        (7 * year, "7y"),
        (8 * year - ms, "7y364d"),
        (8 * year, "8y"),
        (8 * year + 364 * day, "8y"),
        (9 * year, "9y"),
        # the brief's examples
        (5 * sec, "5s"),
        (200 * sec, "3m20s"),
        (2 * day + 3 * hour, "2d3h"),
        (45 * day, "45d"),
        (3 * year + 12 * day, "3y12d"),
    ],
    ids=str,
)
def test_human_duration(delta: timedelta, expected: str) -> None:
    assert human_duration(delta) == expected


# ---------------------------------------------------------------------------------------
# the Table envelope and includeObject


POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "name": "web-7d4b9c-x2x9z",
        "namespace": "shop",
        "uid": "0b4c",
        "resourceVersion": "42",
        "creationTimestamp": ago(200),
        "labels": {"app": "web", "pod-template-hash": "7d4b9c"},
    },
    "spec": {
        "nodeName": "node-1",
        "containers": [
            {"name": "nginx", "image": "nginx:1.27"},
            {"name": "log", "image": "busybox:1.36"},
        ],
    },
    "status": {
        "phase": "Running",
        "podIP": "10.244.1.7",
        "podIPs": [{"ip": "10.244.1.7"}],
        "conditions": [
            {"type": "Initialized", "status": "True"},
            {"type": "Ready", "status": "True"},
            {"type": "ContainersReady", "status": "True"},
            {"type": "PodScheduled", "status": "True"},
        ],
        "containerStatuses": [
            {"name": "nginx", "ready": True, "restartCount": 0, "started": True,
             "state": {"running": {"startedAt": ago(190)}}},
            {"name": "log", "ready": True, "restartCount": 0, "started": True,
             "state": {"running": {"startedAt": ago(190)}}},
        ],
    },
}


def test_table_envelope() -> None:
    t = table("pods", POD)
    assert t["kind"] == "Table"
    assert t["apiVersion"] == "meta.k8s.io/v1"
    assert t["metadata"] == {}
    for col in t["columnDefinitions"]:
        assert set(col) == {"name", "type", "format", "description", "priority"}
        assert col["description"]
    first = t["columnDefinitions"][0]
    assert (first["name"], first["format"], first["priority"]) == ("Name", "name", 0)
    assert len(t["rows"]) == 1
    assert len(t["rows"][0]["cells"]) == len(t["columnDefinitions"])
    json.dumps(t)  # wire-ready as is


def test_default_include_object_is_partial_metadata_with_full_metadata() -> None:
    row = table("pods", POD)["rows"][0]
    assert row["object"] == {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": POD["metadata"],
    }
    assert row["object"]["metadata"]["namespace"] == "shop"  # kubectl get -A
    assert row["object"]["metadata"]["labels"]["app"] == "web"  # --show-labels
    assert "conditions" not in row


def test_include_object_empty_string_means_metadata() -> None:
    row = table("pods", POD, include_object="")["rows"][0]
    assert row["object"]["kind"] == "PartialObjectMetadata"


def test_include_object_object_is_the_object() -> None:
    assert table("pods", POD, include_object="Object")["rows"][0]["object"] == POD


def test_include_object_object_gets_type_meta_when_stored_without() -> None:
    bare = {k: v for k, v in POD.items() if k not in ("apiVersion", "kind")}
    obj = table("deployments.apps", bare, include_object="Object")["rows"][0]["object"]
    assert (obj["apiVersion"], obj["kind"]) == ("apps/v1", "Deployment")


def test_include_object_none_serialises_a_null_object_like_upstream() -> None:
    row = table("pods", POD, include_object="None")["rows"][0]
    assert row["object"] is None
    assert row["cells"][0] == "web-7d4b9c-x2x9z"


def test_include_object_unknown_value_is_rejected_with_upstreams_message() -> None:
    with pytest.raises(ValueError, match='unrecognized includeObject value: "Everything"'):
        table("pods", POD, include_object="Everything")


def test_empty_list_still_has_columns() -> None:
    t = table("pods")
    assert t["rows"] == []
    assert [c["name"] for c in t["columnDefinitions"]][:5] == [
        "Name", "Ready", "Status", "Restarts", "Age",
    ]


def test_now_defaults_to_the_current_time() -> None:
    fresh = {"metadata": {"name": "x", "creationTimestamp": datetime.now(UTC).isoformat()}}
    age = to_table(by_key("configmaps"), [fresh])["rows"][0]["cells"][2]
    assert age in ("0s", "1s")


def test_naive_now_is_taken_as_utc() -> None:
    obj = {"metadata": {"name": "x", "creationTimestamp": ago(90)}}
    naive = NOW.replace(tzinfo=None)
    assert to_table(by_key("configmaps"), [obj], now=naive)["rows"][0]["cells"][2] == "90s"


@pytest.mark.parametrize(
    ("created", "age"),
    [
        (ago(-1), "0s"),  # a second ahead: clocks disagree a little
        (ago(-5), "<invalid>"),
        ("", "<unknown>"),
        (None, "<unknown>"),
        ("yesterday", "<unknown>"),
        ("2025-01-01T11:59:30.123456789Z", "29s"),  # nanoseconds, as Go writes them
        ("2025-01-01T13:59:00+02:00", "60s"),
    ],
)
def test_age_cell(created: str | None, age: str) -> None:
    obj = {"metadata": {"name": "x", "creationTimestamp": created}}
    assert cells("configmaps", obj)[2] == age


# ---------------------------------------------------------------------------------------
# column sets, wide columns carry priority 1


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("pods", [("NAME", 0), ("READY", 0), ("STATUS", 0), ("RESTARTS", 0), ("AGE", 0),
                  ("IP", 1), ("NODE", 1), ("NOMINATED NODE", 1), ("READINESS GATES", 1)]),
        ("deployments.apps", [("NAME", 0), ("READY", 0), ("UP-TO-DATE", 0), ("AVAILABLE", 0),
                              ("AGE", 0), ("CONTAINERS", 1), ("IMAGES", 1), ("SELECTOR", 1)]),
        ("replicasets.apps", [("NAME", 0), ("DESIRED", 0), ("CURRENT", 0), ("READY", 0),
                              ("AGE", 0), ("CONTAINERS", 1), ("IMAGES", 1), ("SELECTOR", 1)]),
        ("daemonsets.apps", [("NAME", 0), ("DESIRED", 0), ("CURRENT", 0), ("READY", 0),
                             ("UP-TO-DATE", 0), ("AVAILABLE", 0), ("NODE SELECTOR", 0),
                             ("AGE", 0), ("CONTAINERS", 1), ("IMAGES", 1), ("SELECTOR", 1)]),
        ("jobs.batch", [("NAME", 0), ("STATUS", 0), ("COMPLETIONS", 0), ("DURATION", 0),
                        ("AGE", 0), ("CONTAINERS", 1), ("IMAGES", 1), ("SELECTOR", 1)]),
        ("nodes", [("NAME", 0), ("STATUS", 0), ("ROLES", 0), ("AGE", 0), ("VERSION", 0),
                   ("INTERNAL-IP", 1), ("EXTERNAL-IP", 1), ("OS-IMAGE", 1),
                   ("KERNEL-VERSION", 1), ("CONTAINER-RUNTIME", 1)]),
        ("services", [("NAME", 0), ("TYPE", 0), ("CLUSTER-IP", 0), ("EXTERNAL-IP", 0),
                      ("PORT(S)", 0), ("AGE", 0), ("SELECTOR", 1)]),
        ("endpoints", [("NAME", 0), ("ENDPOINTS", 0), ("AGE", 0)]),
        ("configmaps", [("NAME", 0), ("DATA", 0), ("AGE", 0)]),
        ("secrets", [("NAME", 0), ("TYPE", 0), ("DATA", 0), ("AGE", 0)]),
        ("events", [("LAST SEEN", 0), ("TYPE", 0), ("REASON", 0), ("OBJECT", 0),
                    ("SUBOBJECT", 1), ("SOURCE", 1), ("MESSAGE", 0), ("FIRST SEEN", 1),
                    ("COUNT", 1), ("NAME", 1)]),
        ("namespaces", [("NAME", 0), ("STATUS", 0), ("AGE", 0)]),
        ("serviceaccounts", [("NAME", 0), ("SECRETS", 0), ("AGE", 0)]),
        ("leases.coordination.k8s.io", [("NAME", 0), ("HOLDER", 0), ("AGE", 0)]),
        ("ingresses.networking.k8s.io", [("NAME", 0), ("CLASS", 0), ("HOSTS", 0),
                                         ("ADDRESS", 0), ("PORTS", 0), ("AGE", 0)]),
        ("ingressclasses.networking.k8s.io", [("NAME", 0), ("CONTROLLER", 0),
                                              ("PARAMETERS", 0), ("AGE", 0)]),
        ("horizontalpodautoscalers.autoscaling", [("NAME", 0), ("REFERENCE", 0),
                                                  ("TARGETS", 0), ("MINPODS", 0),
                                                  ("MAXPODS", 0), ("REPLICAS", 0), ("AGE", 0)]),
        ("controllerrevisions.apps", [("NAME", 0), ("CONTROLLER", 0), ("REVISION", 0),
                                      ("AGE", 0)]),
        ("bindings", [("NAME", 0), ("AGE", 0)]),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_columns(key: str, expected: list[tuple[str, int]]) -> None:
    assert columns(key) == expected


def test_what_kubectl_shows_without_wide_for_events() -> None:
    shown = [name for name, priority in columns("events") if priority == 0]
    assert shown == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]


def test_name_column_is_formatted_as_a_name_everywhere() -> None:
    for info in RESOURCES:
        cols = to_table(info, [], now=NOW)["columnDefinitions"]
        names = [c for c in cols if c["name"] == "Name"]
        assert len(names) == 1 and names[0]["format"] == "name", info.key


# ---------------------------------------------------------------------------------------
# pods


def pod(
    *,
    phase: str | None = "Running",
    containers: int = 1,
    statuses: list[dict] | None = None,
    init: list[dict] | None = None,
    init_statuses: list[dict] | None = None,
    conditions: dict[str, str] | None = None,
    deleting: bool = False,
    reason: str | None = None,
    **spec: object,
) -> dict:
    status: dict = {}
    if phase is not None:
        status["phase"] = phase
    if reason is not None:
        status["reason"] = reason
    if conditions is not None:
        status["conditions"] = [{"type": t, "status": s} for t, s in conditions.items()]
    if statuses is not None:
        status["containerStatuses"] = statuses
    if init_statuses is not None:
        status["initContainerStatuses"] = init_statuses
    p: dict = {
        "metadata": {"name": "p", "namespace": "default", "creationTimestamp": ago(10 * M)},
        "spec": {
            "containers": [{"name": f"c{i}", "image": "nginx"} for i in range(containers)],
            **spec,
        },
        "status": status,
    }
    if init is not None:
        p["spec"]["initContainers"] = init
    if deleting:
        p["metadata"]["deletionTimestamp"] = ago(5)
    return p


def running(name: str = "c0", *, ready: bool = True, restarts: int = 0, **extra) -> dict:
    return {"name": name, "ready": ready, "restartCount": restarts, "started": True,
            "state": {"running": {"startedAt": ago(M)}}, **extra}


def waiting(name: str, reason: str, *, restarts: int = 0, **extra) -> dict:
    return {"name": name, "ready": False, "restartCount": restarts,
            "state": {"waiting": {"reason": reason}}, **extra}


def terminated(name: str, *, exit_code: int = 0, reason: str | None = None, **extra) -> dict:
    term: dict = {"exitCode": exit_code, "finishedAt": ago(30)}
    if reason is not None:
        term["reason"] = reason
    return {"name": name, "ready": False, "restartCount": 0,
            "state": {"terminated": term}, **extra}


READY = {"Initialized": "True", "Ready": "True", "ContainersReady": "True",
         "PodScheduled": "True"}
NOT_READY = {"Initialized": "True", "Ready": "False", "ContainersReady": "False",
             "PodScheduled": "True"}
INITIALIZING = {"Initialized": "False", "Ready": "False", "PodScheduled": "True"}


@pytest.mark.parametrize(
    ("obj", "ready", "status", "restarts"),
    [
        pytest.param(pod(phase="Pending", conditions={"PodScheduled": "False"}),
                     "0/1", "Pending", "0", id="pending-unscheduled"),
        pytest.param(pod(phase="Pending", statuses=[waiting("c0", "ContainerCreating")],
                         conditions=NOT_READY),
                     "0/1", "ContainerCreating", "0", id="container-creating"),
        pytest.param(pod(containers=2, statuses=[running("c0"), running("c1")],
                         conditions=READY),
                     "2/2", "Running", "0", id="running-2/2"),
        pytest.param(pod(containers=2, statuses=[running("c0"), running("c1", ready=False)],
                         conditions=NOT_READY),
                     "1/2", "Running", "0", id="running-1/2"),
        pytest.param(
            pod(statuses=[waiting(
                "c0", "CrashLoopBackOff", restarts=5,
                lastState={"terminated": {"exitCode": 1, "reason": "Error",
                                          "finishedAt": ago(150)}},
            )], conditions=NOT_READY),
            "0/1", "CrashLoopBackOff", "5 (2m30s ago)", id="crashloopbackoff"),
        pytest.param(pod(statuses=[running(restarts=3)], conditions=READY),
                     "1/1", "Running", "3", id="restarts-without-last-state"),
        pytest.param(pod(statuses=[running()], conditions=READY, deleting=True),
                     "1/1", "Terminating", "0", id="terminating"),
        pytest.param(pod(phase="Succeeded",
                         statuses=[terminated("c0", reason="Completed")],
                         conditions={"Initialized": "True", "Ready": "False"}),
                     "0/1", "Completed", "0", id="completed"),
        pytest.param(pod(phase="Failed", statuses=[terminated("c0", exit_code=1,
                                                              reason="Error")],
                         deleting=True),
                     "0/1", "Error", "0", id="failed-pod-being-deleted-keeps-its-reason"),
        pytest.param(pod(phase="Running", statuses=[terminated("c0", exit_code=137)]),
                     "0/1", "ExitCode:137", "0", id="exit-code-without-reason"),
        pytest.param(pod(statuses=[{"name": "c0", "restartCount": 0, "state": {
            "terminated": {"exitCode": 0, "signal": 9}}}]),
                     "0/1", "Signal:9", "0", id="signal"),
        pytest.param(pod(phase="Pending", init=[{"name": "migrate", "image": "x"}],
                         init_statuses=[running("migrate", ready=False)],
                         statuses=[waiting("c0", "PodInitializing")],
                         conditions=INITIALIZING),
                     "0/1", "Init:0/1", "0", id="init-0/1"),
        pytest.param(pod(phase="Pending",
                         init=[{"name": "a", "image": "x"}, {"name": "b", "image": "x"}],
                         init_statuses=[terminated("a", reason="Completed"),
                                        waiting("b", "PodInitializing")],
                         statuses=[waiting("c0", "PodInitializing")],
                         conditions=INITIALIZING),
                     "0/1", "Init:1/2", "0", id="init-1/2"),
        pytest.param(pod(phase="Pending", init=[{"name": "a", "image": "x"}],
                         init_statuses=[waiting(
                             "a", "CrashLoopBackOff", restarts=2,
                             lastState={"terminated": {"exitCode": 1,
                                                       "finishedAt": ago(20)}})],
                         statuses=[waiting("c0", "PodInitializing")],
                         conditions=INITIALIZING),
                     "0/1", "Init:CrashLoopBackOff", "2 (20s ago)", id="init-crashloop"),
        pytest.param(pod(phase="Pending", init=[{"name": "a", "image": "x"}],
                         init_statuses=[terminated("a", exit_code=1, reason="Error")],
                         conditions=INITIALIZING),
                     "0/1", "Init:Error", "0", id="init-error"),
        pytest.param(pod(phase="Pending", init=[{"name": "a", "image": "x"}],
                         init_statuses=[terminated("a", exit_code=2)],
                         conditions=INITIALIZING),
                     "0/1", "Init:ExitCode:2", "0", id="init-exit-code"),
        pytest.param(pod(phase="Pending", statuses=[waiting("c0", "ImagePullBackOff")],
                         conditions=NOT_READY),
                     "0/1", "ImagePullBackOff", "0", id="imagepullbackoff"),
        pytest.param(pod(phase="Pending", statuses=[waiting("c0", "ErrImagePull")],
                         conditions=NOT_READY),
                     "0/1", "ErrImagePull", "0", id="errimagepull"),
        pytest.param(pod(containers=2, statuses=[terminated("c0", reason="Completed"),
                                                 running("c1")],
                         conditions=NOT_READY),
                     "1/2", "NotReady", "0", id="one-completed-one-running-not-ready"),
        pytest.param(pod(containers=2, statuses=[terminated("c0", reason="Completed"),
                                                 running("c1")],
                         conditions=READY),
                     "1/2", "Running", "0", id="one-completed-one-running-ready"),
        pytest.param(pod(init=[{"name": "proxy", "image": "envoy", "restartPolicy": "Always"}],
                         init_statuses=[running("proxy", restarts=1)],
                         statuses=[running("c0")], conditions=READY),
                     "2/2", "Running", "1", id="sidecar-counts-as-a-container"),
        pytest.param(pod(schedulingGates=[{"name": "wait"}]) | {"status": {
                         "phase": "Pending",
                         "conditions": [{"type": "PodScheduled", "status": "False",
                                         "reason": "SchedulingGated"}]}},
                     "0/1", "SchedulingGated", "0", id="scheduling-gated"),
        pytest.param(pod(statuses=[running()], conditions=READY, deleting=True,
                         reason="NodeLost"),
                     "1/1", "Unknown", "0", id="node-lost"),
        pytest.param(pod(phase="Failed", reason="Evicted", statuses=[]),
                     "0/1", "Evicted", "0", id="evicted"),
    ],
)
def test_pod_status(obj: dict, ready: str, status: str, restarts: str) -> None:
    assert cells("pods", obj)[1:5] == [ready, status, restarts, "10m"]


def test_pod_running_row() -> None:
    assert cells("pods", POD) == [
        "web-7d4b9c-x2x9z", "2/2", "Running", "0", "3m20s",
        "10.244.1.7", "node-1", "<none>", "<none>",
    ]


def test_pod_restarts_take_the_latest_termination() -> None:
    obj = pod(containers=2, conditions=READY, statuses=[
        running("c0", restarts=2, lastState={"terminated": {"finishedAt": ago(2 * H)}}),
        running("c1", restarts=1, lastState={"terminated": {"finishedAt": ago(5 * M)}}),
    ])
    assert cells("pods", obj)[3] == "3 (5m ago)"


def test_pod_wide_cells() -> None:
    obj = pod(statuses=[running()], conditions=READY | {"example.com/feature": "True"},
              nodeName="node-2",
              readinessGates=[{"conditionType": "example.com/feature"},
                              {"conditionType": "example.com/other"}])
    obj["status"]["podIPs"] = [{"ip": "10.244.2.9"}, {"ip": "fd00::9"}]
    obj["status"]["nominatedNodeName"] = "node-3"
    assert cells("pods", obj)[5:] == ["10.244.2.9", "node-2", "node-3", "1/2"]


def test_finished_pods_carry_a_completed_row_condition() -> None:
    done = pod(phase="Succeeded", statuses=[terminated("c0", reason="Completed")])
    failed = pod(phase="Failed", statuses=[terminated("c0", exit_code=1, reason="Error")])
    rows = table("pods", done, failed, POD)["rows"]
    assert rows[0]["conditions"] == [{"type": "Completed", "status": "True",
                                      "reason": "Succeeded",
                                      "message": "The pod has completed successfully."}]
    assert rows[1]["conditions"] == [{"type": "Completed", "status": "True",
                                      "reason": "Failed", "message": "The pod failed."}]
    assert "conditions" not in rows[2]


# ---------------------------------------------------------------------------------------
# workloads

TEMPLATE = {
    "metadata": {"labels": {"app": "web"}},
    "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"},
                            {"name": "log", "image": "busybox:1.36"}]},
}


def test_deployment() -> None:
    obj = {
        "metadata": {"name": "web", "namespace": "default", "creationTimestamp": ago(5 * H + 3 * M)},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                 "template": TEMPLATE},
        "status": {"replicas": 3, "updatedReplicas": 3, "readyReplicas": 2,
                   "availableReplicas": 2},
    }
    assert cells("deployments.apps", obj) == [
        "web", "2/3", 3, 2, "5h3m", "nginx,log", "nginx:1.27,busybox:1.36", "app=web",
    ]


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ({"matchLabels": {"tier": "front", "app": "web"}}, "app=web,tier=front"),
        ({"matchLabels": {"app": "web"},
          "matchExpressions": [{"key": "env", "operator": "In", "values": ["qa", "dev"]},
                               {"key": "beta", "operator": "Exists"},
                               {"key": "zone", "operator": "NotIn", "values": ["b"]},
                               {"key": "legacy", "operator": "DoesNotExist"}]},
         "app=web,beta,env in (dev,qa),!legacy,zone notin (b)"),
        ({}, ""),
        ({"matchExpressions": [{"key": "env", "operator": "In", "values": []}]}, "<invalid>"),
        ({"matchExpressions": [{"key": "env", "operator": "Like"}]}, "<invalid>"),
    ],
)
def test_deployment_selector(selector: dict, expected: str) -> None:
    obj = {"metadata": {"name": "web"}, "spec": {"selector": selector}}
    assert cells("deployments.apps", obj)[7] == expected


def test_replicaset() -> None:
    obj = {
        "metadata": {"name": "web-7d4b9c", "creationTimestamp": ago(50 * D)},
        "spec": {"replicas": 3,
                 "selector": {"matchLabels": {"app": "web", "pod-template-hash": "7d4b9c"}},
                 "template": {"spec": {"containers": [{"name": "nginx",
                                                       "image": "nginx:1.27"}]}}},
        "status": {"replicas": 3, "fullyLabeledReplicas": 3, "readyReplicas": 1},
    }
    assert cells("replicasets.apps", obj) == [
        "web-7d4b9c", 3, 3, 1, "50d", "nginx", "nginx:1.27", "app=web,pod-template-hash=7d4b9c",
    ]


def test_replicaset_scaled_to_zero() -> None:
    obj = {"metadata": {"name": "web-old", "creationTimestamp": ago(D)},
           "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}}},
           "status": {"replicas": 0}}
    assert cells("replicasets.apps", obj)[1:5] == [0, 0, 0, "24h"]


def test_daemonset() -> None:
    obj = {
        "metadata": {"name": "fluentd", "namespace": "kube-system",
                     "creationTimestamp": ago(2 * D)},
        "spec": {"selector": {"matchLabels": {"app": "fluentd"}},
                 "template": {"metadata": {"labels": {"app": "fluentd"}},
                              "spec": {"nodeSelector": {"kubernetes.io/os": "linux"},
                                       "containers": [{"name": "fluentd",
                                                       "image": "fluentd:v1.16"}]}}},
        "status": {"desiredNumberScheduled": 3, "currentNumberScheduled": 3,
                   "numberReady": 2, "updatedNumberScheduled": 3, "numberAvailable": 2,
                   "numberMisscheduled": 0},
    }
    assert cells("daemonsets.apps", obj) == [
        "fluentd", 3, 3, 2, 3, 2, "kubernetes.io/os=linux", "2d",
        "fluentd", "fluentd:v1.16", "app=fluentd",
    ]


def job(spec: dict | None = None, status: dict | None = None, **meta: object) -> dict:
    return {
        "metadata": {"name": "pi", "creationTimestamp": ago(10 * M), **meta},
        "spec": {"selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "8f2e"}},
                 "template": {"spec": {"containers": [{"name": "pi", "image": "perl:5.34"}],
                                       "restartPolicy": "Never"}},
                 **(spec or {})},
        "status": status or {},
    }


def conds(*types: str) -> list[dict]:
    return [{"type": t, "status": "True"} for t in types]


def test_job_complete() -> None:
    obj = job({"completions": 1, "parallelism": 1},
              {"succeeded": 1, "startTime": ago(10 * M), "completionTime": ago(9 * M + 40),
               "conditions": conds("SuccessCriteriaMet", "Complete")})
    assert cells("jobs.batch", obj) == [
        "pi", "Complete", "1/1", "20s", "10m", "pi", "perl:5.34",
        "batch.kubernetes.io/controller-uid=8f2e",
    ]


@pytest.mark.parametrize(
    ("spec", "status", "meta", "expected"),
    [
        ({"completions": 5, "parallelism": 2},
         {"active": 2, "succeeded": 2, "startTime": ago(90)}, {},
         ["Running", "2/5", "90s"]),
        ({"parallelism": 3}, {"active": 3, "startTime": ago(5 * M)}, {},
         ["Running", "0/1 of 3", "5m"]),
        ({}, {}, {}, ["Running", "0/1", ""]),
        ({"completions": 1},
         {"failed": 6, "startTime": ago(4 * M), "conditions": conds("FailureTarget", "Failed")},
         {}, ["Failed", "0/1", "4m"]),
        ({"completions": 1}, {"conditions": conds("FailureTarget")}, {},
         ["FailureTarget", "0/1", ""]),
        ({"completions": 1, "suspend": True}, {"conditions": conds("Suspended")}, {},
         ["Suspended", "0/1", ""]),
        ({"completions": 1}, {"startTime": ago(30)}, {"deletionTimestamp": ago(1)},
         ["Terminating", "0/1", "30s"]),
        ({"completions": 1},
         {"conditions": [{"type": "Complete", "status": "False"}]}, {},
         ["Running", "0/1", ""]),
    ],
)
def test_job_status(spec: dict, status: dict, meta: dict, expected: list) -> None:
    assert cells("jobs.batch", job(spec, status, **meta))[1:4] == expected


def test_controllerrevision() -> None:
    obj = {
        "metadata": {"name": "fluentd-5d9f8b7c6", "creationTimestamp": ago(3 * H),
                     "ownerReferences": [
                         {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "fluentd",
                          "uid": "u1", "controller": True, "blockOwnerDeletion": True}]},
        "data": {"spec": {}},
        "revision": 2,
    }
    assert cells("controllerrevisions.apps", obj) == [
        "fluentd-5d9f8b7c6", "daemonset.apps/fluentd", 2, "3h",
    ]


def test_controllerrevision_without_controller() -> None:
    obj = {"metadata": {"name": "r1", "creationTimestamp": ago(3 * H),
                        "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": "x",
                                             "uid": "u"}]},
           "revision": 1}
    assert cells("controllerrevisions.apps", obj)[1] == "<none>"


# ---------------------------------------------------------------------------------------
# nodes


def test_node_cordoned_control_plane() -> None:
    obj = {
        "metadata": {"name": "node-1", "creationTimestamp": ago(3 * D + 2 * H),
                     "labels": {"node-role.kubernetes.io/control-plane": "",
                                "kubernetes.io/hostname": "node-1"}},
        "spec": {"unschedulable": True},
        "status": {
            "conditions": [{"type": "MemoryPressure", "status": "False"},
                           {"type": "Ready", "status": "True"}],
            "addresses": [{"type": "InternalIP", "address": "172.18.0.2"},
                          {"type": "Hostname", "address": "node-1"}],
            "nodeInfo": {"kubeletVersion": "v1.32.0",
                         "osImage": "Debian GNU/Linux 12 (bookworm)",
                         "kernelVersion": "6.1.0-27-amd64",
                         "containerRuntimeVersion": "docker://27.3.1"},
        },
    }
    assert cells("nodes", obj) == [
        "node-1", "Ready,SchedulingDisabled", "control-plane", "3d2h", "v1.32.0",
        "172.18.0.2", "<none>", "Debian GNU/Linux 12 (bookworm)", "6.1.0-27-amd64",
        "docker://27.3.1",
    ]


def test_node_not_ready_with_several_roles() -> None:
    obj = {
        "metadata": {"name": "node-2", "creationTimestamp": ago(40 * M),
                     "labels": {"node-role.kubernetes.io/worker": "",
                                "node-role.kubernetes.io/ingress": "",
                                "node-role.kubernetes.io/": "",
                                "kubernetes.io/role": "edge"}},
        "status": {"conditions": [{"type": "Ready", "status": "Unknown"}],
                   "addresses": [{"type": "ExternalIP", "address": "203.0.113.5"},
                                 {"type": "InternalIP", "address": "172.18.0.3"},
                                 {"type": "InternalIP", "address": "172.18.0.99"}]},
    }
    assert cells("nodes", obj)[:7] == [
        "node-2", "NotReady", "edge,ingress,worker", "40m", "", "172.18.0.3", "203.0.113.5",
    ]


def test_node_just_registered() -> None:
    obj = {"metadata": {"name": "node-3"}, "spec": {"unschedulable": True}}
    assert cells("nodes", obj) == [
        "node-3", "Unknown,SchedulingDisabled", "<none>", "<unknown>", "",
        "<none>", "<none>", "<unknown>", "<unknown>", "<unknown>",
    ]


# ---------------------------------------------------------------------------------------
# services, endpoints, ingresses


def service(spec: dict, status: dict | None = None) -> dict:
    return {"metadata": {"name": "web", "creationTimestamp": ago(4 * H)},
            "spec": spec, "status": status or {"loadBalancer": {}}}


@pytest.mark.parametrize(
    ("spec", "status", "expected"),
    [
        pytest.param(
            {"type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
             "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}],
             "selector": {"app": "web"}},
            None, ["ClusterIP", "10.96.0.10", "<none>", "80/TCP", "4h", "app=web"],
            id="clusterip"),
        pytest.param(
            {"type": "NodePort", "clusterIP": "10.96.0.11", "clusterIPs": ["10.96.0.11"],
             "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"},
                       {"port": 53, "nodePort": 30053, "protocol": "UDP"}],
             "selector": {"app": "web", "tier": "front"}},
            None,
            ["NodePort", "10.96.0.11", "<none>", "80:30080/TCP,53:30053/UDP", "4h",
             "app=web,tier=front"],
            id="nodeport"),
        pytest.param(
            {"type": "LoadBalancer", "clusterIPs": ["10.96.0.12"],
             "ports": [{"port": 443, "nodePort": 31443, "protocol": "TCP"}]},
            None,
            ["LoadBalancer", "10.96.0.12", "<pending>", "443:31443/TCP", "4h", "<none>"],
            id="loadbalancer-pending"),
        pytest.param(
            {"type": "LoadBalancer", "clusterIPs": ["10.96.0.12"],
             "ports": [{"port": 443, "nodePort": 31443, "protocol": "TCP"}]},
            {"loadBalancer": {"ingress": [{"ip": "198.51.100.7"},
                                          {"hostname": "a-very-long-lb-name.example.com"},
                                          {"ip": "198.51.100.7"}]}},
            ["LoadBalancer", "10.96.0.12", "198.51.100.7,a-very-long-lb-name.example.com",
             "443:31443/TCP", "4h", "<none>"],
            id="loadbalancer-unclipped"),
        pytest.param(
            {"type": "LoadBalancer", "clusterIPs": ["10.96.0.12"], "ports": [],
             "externalIPs": ["192.0.2.1"]},
            {"loadBalancer": {"ingress": [{"ip": "198.51.100.7"}]}},
            ["LoadBalancer", "10.96.0.12", "198.51.100.7,192.0.2.1", "<none>", "4h", "<none>"],
            id="loadbalancer-and-external-ips"),
        pytest.param(
            {"type": "ClusterIP", "clusterIP": "10.96.0.13", "externalIPs": ["192.0.2.1",
                                                                            "192.0.2.2"],
             "ports": [{"port": 80, "protocol": "TCP"}]},
            None, ["ClusterIP", "10.96.0.13", "192.0.2.1,192.0.2.2", "80/TCP", "4h", "<none>"],
            id="external-ips"),
        pytest.param(
            {"type": "ExternalName", "externalName": "db.example.com"},
            None, ["ExternalName", "<none>", "db.example.com", "<none>", "4h", "<none>"],
            id="externalname"),
        pytest.param(
            {"type": "ClusterIP", "clusterIP": "None", "clusterIPs": ["None"],
             "ports": [{"port": 5432}], "selector": {"app": "db"}},
            None, ["ClusterIP", "None", "<none>", "5432/TCP", "4h", "app=db"],
            id="headless"),
    ],
)
def test_service(spec: dict, status: dict | None, expected: list) -> None:
    assert cells("services", service(spec, status)) == ["web", *expected]


@pytest.mark.parametrize(
    ("subsets", "expected"),
    [
        pytest.param([{"addresses": [{"ip": "10.244.1.7"}, {"ip": "10.244.2.9"}],
                       "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}],
                     "10.244.1.7:8080,10.244.2.9:8080", id="two"),
        pytest.param([{"addresses": [{"ip": f"10.0.0.{i}"} for i in range(1, 6)],
                       "ports": [{"port": 80}]}],
                     "10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 2 more...", id="more"),
        pytest.param([{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}],
                       "ports": [{"port": 80}, {"port": 443}]}],
                     "10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 1 more...", id="ports-x-addresses"),
        pytest.param([{"addresses": [{"ip": "10.0.0.1"}]}], "10.0.0.1", id="headless-no-ports"),
        pytest.param([{"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 80}]}],
                     "[fd00::1]:80", id="ipv6"),
        pytest.param([{"notReadyAddresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}],
                     "", id="only-not-ready"),
        pytest.param([], "<none>", id="no-subsets"),
        pytest.param(None, "<none>", id="missing"),
    ],
)
def test_endpoints(subsets: list | None, expected: str) -> None:
    obj = {"metadata": {"name": "web", "creationTimestamp": ago(4 * H)}, "subsets": subsets}
    assert cells("endpoints", obj) == ["web", expected, "4h"]


def test_ingress() -> None:
    obj = {
        "metadata": {"name": "blog", "creationTimestamp": ago(7 * D)},
        "spec": {
            "ingressClassName": "tuik8s",
            "rules": [{"host": "blog.local", "http": {"paths": []}},
                      {"host": "shop.local", "http": {"paths": []}}],
            "tls": [{"hosts": ["blog.local"], "secretName": "blog-tls"}],
        },
        "status": {"loadBalancer": {"ingress": [{"ip": "172.18.0.10"}]}},
    }
    assert cells("ingresses.networking.k8s.io", obj) == [
        "blog", "tuik8s", "blog.local,shop.local", "172.18.0.10", "80, 443", "7d",
    ]


def test_ingress_catch_all_without_class_or_address() -> None:
    obj = {"metadata": {"name": "default", "creationTimestamp": ago(7 * D)},
           "spec": {"defaultBackend": {"service": {"name": "web", "port": {"number": 80}}}}}
    assert cells("ingresses.networking.k8s.io", obj) == [
        "default", "<none>", "*", "", "80", "7d",
    ]


def test_ingress_many_hosts() -> None:
    rules = [{"host": f"{h}.local"} for h in "abcde"]
    obj = {"metadata": {"name": "many"}, "spec": {"rules": rules}}
    assert cells("ingresses.networking.k8s.io", obj)[2] == "a.local,b.local,c.local + 2 more..."


def test_ingressclass() -> None:
    obj = {"metadata": {"name": "tuik8s", "creationTimestamp": ago(D)},
           "spec": {"controller": "tuik8s.io/ingress-mitmproxy",
                    "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters",
                                   "name": "external-lb", "scope": "Cluster"}}}
    assert cells("ingressclasses.networking.k8s.io", obj) == [
        "tuik8s", "tuik8s.io/ingress-mitmproxy", "IngressParameters.k8s.example.com/external-lb",
        "24h",
    ]
    obj["spec"]["parameters"] = {"kind": "ConfigMap", "name": "cfg"}
    assert cells("ingressclasses.networking.k8s.io", obj)[2] == "ConfigMap/cfg"
    del obj["spec"]["parameters"]
    assert cells("ingressclasses.networking.k8s.io", obj)[2] == "<none>"


# ---------------------------------------------------------------------------------------
# config, identity, coordination, events


def test_configmap_counts_data_and_binary_data() -> None:
    obj = {"metadata": {"name": "nginx-conf", "creationTimestamp": ago(3 * M)},
           "data": {"nginx.conf": "...", "mime.types": "..."}, "binaryData": {"logo": "iVBO"}}
    assert cells("configmaps", obj) == ["nginx-conf", 3, "3m"]


def test_secret() -> None:
    obj = {"metadata": {"name": "db", "creationTimestamp": ago(3 * M)}, "type": "Opaque",
           "data": {"user": "YWRtaW4=", "password": "czNjcjN0"}, "stringData": {"x": "y"}}
    assert cells("secrets", obj) == ["db", "Opaque", 2, "3m"]
    tls = {"metadata": {"name": "tls"}, "type": "kubernetes.io/tls"}
    assert cells("secrets", tls) == ["tls", "kubernetes.io/tls", 0, "<unknown>"]


@pytest.mark.parametrize(
    ("status", "expected"),
    [({"phase": "Active"}, "Active"), ({"phase": "Terminating"}, "Terminating"), (None, "")],
)
def test_namespace(status: dict | None, expected: str) -> None:
    obj = {"metadata": {"name": "shop", "creationTimestamp": ago(12 * D)}, "status": status}
    assert cells("namespaces", obj) == ["shop", expected, "12d"]


def test_serviceaccount() -> None:
    obj = {"metadata": {"name": "builder", "creationTimestamp": ago(12 * D)},
           "secrets": [{"name": "builder-token"}]}
    assert cells("serviceaccounts", obj) == ["builder", 1, "12d"]
    assert cells("serviceaccounts", {"metadata": {"name": "default"}})[1] == 0


def test_lease() -> None:
    obj = {"metadata": {"name": "node-1", "namespace": "kube-node-lease",
                        "creationTimestamp": ago(3 * D)},
           "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 40,
                    "renewTime": ago(3, micro=True)}}
    assert cells("leases.coordination.k8s.io", obj) == ["node-1", "node-1", "3d"]
    assert cells("leases.coordination.k8s.io", {"metadata": {"name": "x"}, "spec": {}})[1] == ""


def test_event_from_the_kubelet() -> None:
    obj = {
        "metadata": {"name": "web-7d4b9c-x2x9z.17f3a", "namespace": "default",
                     "creationTimestamp": ago(5 * M)},
        "involvedObject": {"kind": "Pod", "name": "web-7d4b9c-x2x9z", "namespace": "default",
                           "fieldPath": "spec.containers{nginx}"},
        "reason": "Pulled",
        "message": 'Successfully pulled image "nginx:1.27" in 1.2s\n',
        "source": {"component": "kubelet", "host": "node-1"},
        "firstTimestamp": ago(5 * M),
        "lastTimestamp": ago(45),
        "count": 3,
        "type": "Normal",
    }
    assert cells("events", obj) == [
        "45s", "Normal", "Pulled", "pod/web-7d4b9c-x2x9z", "spec.containers{nginx}",
        "kubelet, node-1", 'Successfully pulled image "nginx:1.27" in 1.2s', "5m", 3,
        "web-7d4b9c-x2x9z.17f3a",
    ]


def test_event_of_the_new_api_without_timestamps_or_count() -> None:
    obj = {
        "metadata": {"name": "web.17f3b", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default"},
        "reason": "FailedScheduling",
        "message": "0/3 nodes are available: 3 Insufficient cpu.",
        "source": {},
        "eventTime": ago(30, micro=True),
        "reportingComponent": "default-scheduler",
        "reportingInstance": "",
        "type": "Warning",
    }
    assert cells("events", obj) == [
        "30s", "Warning", "FailedScheduling", "pod/web", "", "default-scheduler",
        "0/3 nodes are available: 3 Insufficient cpu.", "30s", 1, "web.17f3b",
    ]


def test_event_series_wins_last_seen_and_count() -> None:
    obj = {
        "metadata": {"name": "e"},
        "involvedObject": {"kind": "Node"},
        "reason": "Rebooted",
        "firstTimestamp": ago(2 * H),
        "lastTimestamp": ago(H),
        "count": 2,
        "series": {"count": 7, "lastObservedTime": ago(10, micro=True)},
        "reportingComponent": "kubelet",
        "reportingInstance": "node-1",
        "type": "Warning",
    }
    assert cells("events", obj)[:9] == [
        "10s", "Warning", "Rebooted", "node", "", "kubelet, node-1", "", "120m", 7,
    ]


def test_event_with_no_time_at_all() -> None:
    obj = {"metadata": {"name": "e"}, "involvedObject": {"kind": "Pod", "name": "p"}}
    assert cells("events", obj)[0] == "<unknown>"
    assert cells("events", obj)[7] == "<unknown>"


# ---------------------------------------------------------------------------------------
# autoscaling


def hpa(metrics: list | None, current: list | None = None, **spec: object) -> dict:
    return {
        "metadata": {"name": "web", "creationTimestamp": ago(20 * M)},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                    "name": "web"},
                 "minReplicas": 1, "maxReplicas": 10, "metrics": metrics, **spec},
        "status": {"currentReplicas": 2, "desiredReplicas": 2,
                   **({"currentMetrics": current} if current is not None else {})},
    }


CPU_50 = {"type": "Resource",
          "resource": {"name": "cpu", "target": {"type": "Utilization",
                                                 "averageUtilization": 50}}}
MEM_512 = {"type": "Resource",
           "resource": {"name": "memory", "target": {"type": "AverageValue",
                                                     "averageValue": "512Mi"}}}
RPS_10 = {"type": "Pods",
          "pods": {"metric": {"name": "requests_per_second"},
                   "target": {"type": "AverageValue", "averageValue": "10"}}}


def test_hpa() -> None:
    obj = hpa([CPU_50], [{"type": "Resource", "resource": {
        "name": "cpu", "current": {"averageUtilization": 23, "averageValue": "115m"}}}])
    assert cells("horizontalpodautoscalers.autoscaling", obj) == [
        "web", "Deployment/web", "cpu: 23%/50%", "1", 10, 2, "20m",
    ]


@pytest.mark.parametrize(
    ("metrics", "current", "expected"),
    [
        ([CPU_50], None, "cpu: <unknown>/50%"),
        ([MEM_512], [{"type": "Resource", "resource": {
            "name": "memory", "current": {"averageValue": "300Mi"}}}], "memory: 300Mi/512Mi"),
        ([RPS_10], [{"type": "Pods", "pods": {"metric": {"name": "requests_per_second"},
                                              "current": {"averageValue": "7"}}}], "7/10"),
        ([CPU_50, MEM_512, RPS_10], None,
         "cpu: <unknown>/50%, memory: <unknown>/512Mi + 1 more..."),
        ([{"type": "External", "external": {"metric": {"name": "queue"},
                                            "target": {"type": "AverageValue",
                                                       "averageValue": "30"}}}],
         None, "<unknown>/30 (avg)"),
        ([{"type": "Object", "object": {"metric": {"name": "hits"},
                                        "describedObject": {"kind": "Ingress", "name": "x"},
                                        "target": {"type": "Value", "value": "2k"}}}],
         [{"type": "Object", "object": {"current": {"value": "1500"}}}], "1500/2k"),
        ([{"type": "ContainerResource",
           "containerResource": {"name": "cpu", "container": "app",
                                 "target": {"type": "Utilization"}}}],
         None, "cpu: <unknown>/<auto>"),
        ([{"type": "Custom"}], None, "<unknown type>"),
        ([], None, "<none>"),
        (None, None, "<none>"),
    ],
)
def test_hpa_targets(metrics: list | None, current: list | None, expected: str) -> None:
    assert cells("horizontalpodautoscalers.autoscaling", hpa(metrics, current))[2] == expected


def test_hpa_without_min_replicas() -> None:
    obj = hpa([CPU_50])
    del obj["spec"]["minReplicas"]
    assert cells("horizontalpodautoscalers.autoscaling", obj)[3] == "<unset>"


# ---------------------------------------------------------------------------------------
# everything else, and objects that are not whole


def test_any_other_resource_prints_name_and_age() -> None:
    obj = {"metadata": {"name": "b", "creationTimestamp": ago(4 * M)}}
    assert cells("bindings", obj) == ["b", "4m"]


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("pods", ["p", "0/0", "", "0", "<unknown>", "<none>", "<none>", "<none>", "<none>"]),
        ("deployments.apps", ["p", "0/1", 0, 0, "<unknown>", "", "", ""]),
        ("replicasets.apps", ["p", 1, 0, 0, "<unknown>", "", "", "<none>"]),
        ("daemonsets.apps", ["p", 0, 0, 0, 0, 0, "<none>", "<unknown>", "", "", "<none>"]),
        ("jobs.batch", ["p", "Running", "0/1", "", "<unknown>", "", "", "<none>"]),
        ("services", ["p", "ClusterIP", "<none>", "<none>", "<none>", "<unknown>", "<none>"]),
        ("endpoints", ["p", "<none>", "<unknown>"]),
        ("configmaps", ["p", 0, "<unknown>"]),
        ("secrets", ["p", "", 0, "<unknown>"]),
        ("namespaces", ["p", "", "<unknown>"]),
        ("serviceaccounts", ["p", 0, "<unknown>"]),
        ("leases.coordination.k8s.io", ["p", "", "<unknown>"]),
        ("ingresses.networking.k8s.io", ["p", "<none>", "*", "", "80", "<unknown>"]),
        ("ingressclasses.networking.k8s.io", ["p", "", "<none>", "<unknown>"]),
        ("horizontalpodautoscalers.autoscaling", ["p", "/", "<none>", "<unset>", 0, 0,
                                                  "<unknown>"]),
        ("controllerrevisions.apps", ["p", "<none>", 0, "<unknown>"]),
        ("events", ["<unknown>", "", "", "", "", "", "", "<unknown>", 1, "p"]),
    ],
)
def test_object_with_only_a_name(key: str, expected: list) -> None:
    assert cells(key, {"metadata": {"name": "p"}}) == expected


BROKEN = [
    {},
    {"metadata": None, "spec": None, "status": None},
    {"metadata": {"name": "n"}, "spec": {}, "status": {}},
    {"metadata": {"name": "n", "creationTimestamp": 12}, "spec": "weird", "status": [1]},
    {"metadata": {"name": "n"}, "spec": {"containers": 5, "ports": 7, "rules": 1},
     "status": {"containerStatuses": [None], "conditions": "x"}},
    {"metadata": "not a dict"},
    {"metadata": {"name": "n"}, "subsets": [{"addresses": [None]}], "data": 3,
     "involvedObject": [], "series": 5},
]


@pytest.mark.parametrize("info", RESOURCES, ids=lambda i: i.key)
def test_incomplete_or_malformed_objects_never_raise(info) -> None:
    t = to_table(info, BROKEN, now=NOW)
    width = len(t["columnDefinitions"])
    assert len(t["rows"]) == len(BROKEN)
    for row in t["rows"]:
        assert len(row["cells"]) == width
    json.dumps(t)


def test_malformed_object_keeps_its_name() -> None:
    obj = {"metadata": {"name": "odd"}, "spec": {"containers": 5}}
    assert cells("pods", obj) == ["odd", *["<unknown>"] * 8]


def test_rows_keep_the_order_of_the_objects() -> None:
    pods = [pod() for _ in range(3)]
    for i, p in enumerate(pods):
        p["metadata"]["name"] = f"p{2 - i}"
    assert [r["cells"][0] for r in table("pods", *pods)["rows"]] == ["p2", "p1", "p0"]
