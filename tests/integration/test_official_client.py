"""The official `kubernetes` Python client against a real `tuik8s server` over HTTPS."""

from __future__ import annotations

import pytest
from kubernetes import client, config, watch

from tests.integration.conftest import RunningServer


@pytest.fixture(scope="module")
def api(server: RunningServer) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(server.kubeconfig))


@pytest.fixture(scope="module")
def ns(api: client.ApiClient) -> str:
    client.CoreV1Api(api).create_namespace({"metadata": {"name": "official"}})
    return "official"


def deployment(name: str, replicas: int = 2) -> dict:
    return {
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}},
        },
    }


def test_create_read_replace_patch_delete(api: client.ApiClient, ns: str) -> None:
    v1 = client.CoreV1Api(api)
    created = v1.create_namespaced_config_map(ns, {"metadata": {"name": "cfg", "labels": {"tier": "fe"}}, "data": {"a": "1"}})
    assert created.metadata.uid and created.metadata.resource_version
    read = v1.read_namespaced_config_map("cfg", ns)
    read.data["a"] = "2"
    replaced = v1.replace_namespaced_config_map("cfg", ns, read)
    assert replaced.data == {"a": "2"}
    assert int(replaced.metadata.resource_version) > int(created.metadata.resource_version)
    # the object read before the replace is stale now: 409, and nothing changes
    with pytest.raises(client.ApiException) as e:
        v1.replace_namespaced_config_map("cfg", ns, read)
    assert e.value.status == 409
    patched = v1.patch_namespaced_config_map("cfg", ns, {"data": {"b": "3"}})
    assert patched.data == {"a": "2", "b": "3"}
    v1.delete_namespaced_config_map("cfg", ns)
    with pytest.raises(client.ApiException) as e:
        v1.read_namespaced_config_map("cfg", ns)
    assert e.value.status == 404


def test_list_with_selectors(api: client.ApiClient, ns: str) -> None:
    v1 = client.CoreV1Api(api)
    for i in range(6):
        v1.create_namespaced_config_map(ns, {"metadata": {"name": f"sel-{i}", "labels": {"parity": "even" if i % 2 == 0 else "odd", "n": str(i)}}})
    even = v1.list_namespaced_config_map(ns, label_selector="parity=even")
    assert sorted(i.metadata.name for i in even.items) == ["sel-0", "sel-2", "sel-4"]
    set_based = v1.list_namespaced_config_map(ns, label_selector="n in (1,5),parity!=even")
    assert sorted(i.metadata.name for i in set_based.items) == ["sel-1", "sel-5"]
    by_name = v1.list_namespaced_config_map(ns, field_selector="metadata.name=sel-3")
    assert [i.metadata.name for i in by_name.items] == ["sel-3"]
    page = v1.list_namespaced_config_map(ns, label_selector="parity", limit=4)
    assert len(page.items) == 4 and page.metadata._continue
    rest = v1.list_namespaced_config_map(ns, label_selector="parity", limit=4, _continue=page.metadata._continue)
    assert len(rest.items) == 2 and not rest.metadata._continue


def test_watch_stream_sees_every_change(api: client.ApiClient, ns: str) -> None:
    v1 = client.CoreV1Api(api)
    start = v1.list_namespaced_config_map(ns).metadata.resource_version
    v1.create_namespaced_config_map(ns, {"metadata": {"name": "watched"}, "data": {"v": "1"}})
    v1.patch_namespaced_config_map("watched", ns, {"data": {"v": "2"}})
    v1.delete_namespaced_config_map("watched", ns)
    seen = []
    for event in watch.Watch().stream(v1.list_namespaced_config_map, ns, resource_version=start, timeout_seconds=2):
        if event["object"].metadata.name == "watched":
            seen.append((event["type"], (event["object"].data or {}).get("v")))
    assert seen == [("ADDED", "1"), ("MODIFIED", "2"), ("DELETED", "2")]


def test_deployment_scale_subresource(api: client.ApiClient, ns: str) -> None:
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(ns, deployment("web"))
    scale = apps.read_namespaced_deployment_scale("web", ns)
    assert scale.spec.replicas == 2 and scale.status.selector == "app=web"
    apps.patch_namespaced_deployment_scale("web", ns, {"spec": {"replicas": 5}})
    assert apps.read_namespaced_deployment("web", ns).spec.replicas == 5
    with pytest.raises(client.ApiException) as e:
        apps.patch_namespaced_deployment_scale("web", ns, {"spec": {"replicas": -1}})
    assert e.value.status == 422
    assert apps.read_namespaced_deployment("web", ns).spec.replicas == 5


def test_invalid_objects_are_refused_with_the_field_named(api: client.ApiClient, ns: str) -> None:
    apps = client.AppsV1Api(api)
    bad = deployment("bad")
    bad["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    with pytest.raises(client.ApiException) as e:
        apps.create_namespaced_deployment(ns, bad)
    assert e.value.status == 422
    assert "spec.template.metadata.labels" in e.value.body
    with pytest.raises(client.ApiException):
        apps.read_namespaced_deployment("bad", ns)


def test_services_get_cluster_ips_and_node_ports(api: client.ApiClient, ns: str) -> None:
    v1 = client.CoreV1Api(api)
    a = v1.create_namespaced_service(ns, {"metadata": {"name": "a"}, "spec": {"selector": {"app": "a"}, "ports": [{"port": 80}]}})
    b = v1.create_namespaced_service(ns, {"metadata": {"name": "b"}, "spec": {"type": "NodePort", "selector": {"app": "b"}, "ports": [{"port": 80}]}})
    assert a.spec.cluster_ip != b.spec.cluster_ip
    assert 30000 <= b.spec.ports[0].node_port <= 32767
    assert b.spec.ports[0].target_port == 80
    with pytest.raises(client.ApiException) as e:
        v1.create_namespaced_service(ns, {"metadata": {"name": "c"}, "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": b.spec.ports[0].node_port}]}})
    assert e.value.status == 422
