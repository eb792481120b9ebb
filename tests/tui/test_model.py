"""The slim row model and the kubectl columns, without a screen."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tui.fake import pod
from tuik8s.tui import ops
from tuik8s.tui.model import RowModel
from tuik8s.tui.views import (
    BY_NAME,
    VIEWS,
    endpoints_row,
    endpointslice_row,
    human_duration,
    pod_row,
    pod_status,
    view_for,
)


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (59, "59s"), (119, "119s"), (125, "2m5s"), (600, "10m"), (179 * 60, "179m"),
    (3 * 3600 + 60, "3h1m"), (9 * 3600, "9h"), (50 * 3600, "2d2h"), (10 * 86400, "10d"),
    (800 * 86400, "2y70d"), (-5, "<invalid>"),
], ids=lambda v: str(v))
def test_ages_read_like_kubectl(seconds, text):
    assert human_duration(seconds) == text


def test_pod_status_follows_kubectl():
    init = pod("ns", "p", "n", ready=False)
    init["spec"]["initContainers"] = [{"name": "setup", "image": "busybox"}]
    init["status"]["initContainerStatuses"] = [{"name": "setup", "state": {"running": {}}, "restartCount": 0}]
    assert pod_status(init)[2] == "Init:0/1"
    done = pod("ns", "p", "n", phase="Succeeded", ready=False)
    done["status"]["containerStatuses"][0]["state"] = {"terminated": {"exitCode": 0, "reason": "Completed"}}
    assert pod_status(done)[2] == "Completed"
    assert pod_status(pod("ns", "p", "n", deleting=True))[2] == "Terminating"
    assert pod_status(pod("ns", "p", "n", waiting="ImagePullBackOff", ready=False, restarts=3)) == (0, 1, "ImagePullBackOff", 3)
    row = pod_row(pod("ns", "p", None, phase="Pending", ready=False))
    assert row[:5] == ("ns", "p", "0/1", "Pending", "0") and row[7] == "<none>"


def test_endpoints_and_slices_read_like_kubectl():
    meta = {"name": "web", "namespace": "shop", "creationTimestamp": "2026-11-27T10:00:00Z"}
    ep = {"metadata": meta, "subsets": [{"addresses": [{"ip": f"10.0.0.{i}"} for i in range(1, 6)],
                                         "ports": [{"port": 8080}]}]}
    assert endpoints_row(ep) == ("shop", "web", "10.0.0.1:8080,10.0.0.2:8080,10.0.0.3:8080 + 2 more...",
                                 "2026-11-27T10:00:00Z")
    assert endpoints_row({"metadata": meta})[2] == "<none>"
    eps = {"metadata": meta, "addressType": "IPv4", "ports": [{"name": "http", "port": 8080}],
           "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2"]}]}
    assert endpointslice_row(eps)[2:5] == ("IPv4", "8080", "10.0.0.1,10.0.0.2")
    assert endpointslice_row({"metadata": meta, "addressType": "IPv4"})[2:5] == ("IPv4", "<unset>", "<unset>")


def test_every_alias_names_a_view():
    for typed in ("po", "pods", "dp", "deploy", "deployments", "rs", "svc", "services", "no", "nodes", "ing",
                  "ingresses", "ev", "events", "ns", "namespaces", "ds", "jobs", "cm", "secrets", "ep",
                  "endpoints", "endpointslices"):
        assert view_for(typed) is not None, typed
    assert len({v.name for v in VIEWS}) == len(VIEWS)


def _model() -> RowModel:
    model = RowModel(BY_NAME["pods"])
    for i in range(20):
        p = pod("ns", f"pod-{i:02d}", f"node-{i % 3}", restarts=i % 4)
        model.upsert(f"ns/pod-{i:02d}", pod_row(p))
    model.rebuild()
    return model


def test_in_place_updates_do_not_rebuild_and_structural_ones_do():
    model = _model()
    assert model.order[0] == "ns/pod-00" and not model.structural
    model.upsert("ns/pod-05", pod_row(pod("ns", "pod-05", "node-2", restarts=3)))
    assert not model.structural and model.changed == {"ns/pod-05"}
    model.set_sort(4)  # RESTARTS, numeric
    model.rebuild()
    model.upsert("ns/pod-05", pod_row(pod("ns", "pod-05", "node-2", restarts=9)))
    assert model.structural  # its place in the order changed
    model.rebuild()
    assert model.order[-1] == "ns/pod-05"
    model.upsert("ns/new", pod_row(pod("ns", "new", "node-0")))
    assert model.structural
    model.rebuild()
    model.remove("ns/new")
    assert model.structural


def test_filter_and_sort():
    model = _model()
    model.set_filter("NODE-1")
    model.rebuild()
    assert len(model) == 7 and all(model.rows[k][7] == "node-1" for k in model.order)
    model.set_sort(1, reverse=True)
    model.rebuild()
    assert model.order[0] == "ns/pod-19" and model.index["ns/pod-19"] == 0
    model.set_filter("")
    model.rebuild()
    assert len(model) == 20


def test_merge_diff_round_trips():
    old = {"metadata": {"name": "a", "labels": {"x": "1", "y": "2"}}, "spec": {"replicas": 1, "list": [1, 2]}}
    new = {"metadata": {"name": "a", "labels": {"x": "1", "z": "3"}}, "spec": {"replicas": 5, "list": [3]}}
    patch = ops.merge_diff(old, new)
    assert patch == {"metadata": {"labels": {"y": None, "z": "3"}}, "spec": {"replicas": 5, "list": [3]}}
    assert ops.apply_merge(old, patch) == new
    assert ops.merge_diff(new, new) == {}


def test_edit_parsing():
    assert ops.parse_edit("# only comments\n\n") is None
    with pytest.raises(ops.OpError, match="not valid YAML at line"):
        ops.parse_edit("a: [1, 2\nb: 3\n")
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "managedFields": [{}]}, "data": {"k": "a\nb"}}
    text = ops.edit_text(obj, "Error from server (Conflict): stale")
    assert text.startswith("# Please edit") and "# Error from server (Conflict): stale" in text
    assert "managedFields" not in text and ops.parse_edit(text)["data"]["k"] == "a\nb"


def test_manifests_are_read_with_lists(tmp_path: Path):
    path = tmp_path / "m.yaml"
    path.write_text("kind: List\napiVersion: v1\nitems:\n- {kind: ConfigMap, apiVersion: v1, metadata: {name: a}}\n"
                    "---\nkind: Service\napiVersion: v1\nmetadata: {name: b}\n")
    assert [d["metadata"]["name"] for d in ops.read_manifests(path)] == ["a", "b"]
    path.write_text("- just\n- a list\n")
    with pytest.raises(ops.OpError, match="must be an object"):
        ops.read_manifests(path)
    with pytest.raises(ops.OpError, match="cannot read"):
        ops.read_manifests(tmp_path / "missing.yaml")


def test_describe_lays_out_fields_and_events():
    p = pod("shop", "db-0", "node-a", waiting="CrashLoopBackOff", ready=False, restarts=7)
    events = [{"type": "Warning", "reason": "BackOff", "message": "Back-off restarting failed container",
               "lastTimestamp": "2025-01-01T00:00:00Z", "count": 12, "source": {"component": "kubelet"}}]
    text = ops.describe_text(p, events)
    assert "Name:               db-0" in text and "CrashLoopBackOff" in text and "Restart Count:      7" in text
    assert "BackOff" in text and "(x12)" in text and "kubelet" in text
    assert "<unable to list: nope>" in ops.describe_text(p, None, "nope")


def test_one_line_errors():
    from tuik8s.client.errors import ApiError, TransportError

    assert ops.one_line(ApiError(404, "NotFound", 'pods "x" not found')) == 'Error from server (NotFound): pods "x" not found'
    assert ops.one_line(TransportError("cannot reach\nthe server")) == "cannot reach the server"
    assert ops.one_line(ValueError("bad")) == "ValueError: bad"


def test_gc_policy_freezes_after_many_events_and_collects_when_idle(monkeypatch):
    import gc

    from tuik8s.tui import gcpolicy

    gc.unfreeze()
    try:
        keep = [{"pod": i, "spec": {"x": [i]}} for i in range(1000)]
        for _ in range(gcpolicy.FREEZE_EVERY):
            gcpolicy.note_event()
        assert gc.get_freeze_count() > len(keep)
        assert not gcpolicy.maybe_collect_when_idle()  # the user is not idle
        monkeypatch.setattr(gcpolicy, "_last_input", 0.0)
        monkeypatch.setattr(gcpolicy, "_last_full", 0.0)
        assert gcpolicy.maybe_collect_when_idle()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


async def test_provider_node_actions_wrap_a_lab_provider():
    from dataclasses import dataclass

    from tuik8s.tui.actions import NodeActionError, ProviderNodeActions

    @dataclass
    class Machine:
        name: str

    class Provider:
        def __init__(self):
            self.calls = []

        async def nodes(self):
            return [Machine("lab-1")]

        async def stop(self, node):
            self.calls.append(("stop", node))

        async def start(self, node):
            raise RuntimeError("docker: no such\ncontainer")

    provider = Provider()
    actions = ProviderNodeActions(provider)
    assert "stopped" in await actions.stop_node("lab-1")
    assert provider.calls == [("stop", "lab-1")]
    with pytest.raises(NodeActionError, match="not a lab node"):
        await actions.stop_node("hollow-0")
    with pytest.raises(NodeActionError, match="cannot start node/lab-1: docker: no such container"):
        await actions.start_node("lab-1")
