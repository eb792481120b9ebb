"""Usage columns and the HPA view: from metrics.k8s.io where the server has it, and
nothing at all (no empty columns, no error) where it does not."""

from __future__ import annotations

import pytest

from tests.tui.conftest import NS, SIZE, screen_text, until
from tests.tui.fake import fake_session
from tuik8s.client.client import ApiClient
from tuik8s.tui.app import TuiApp


@pytest.mark.usefixtures("kubeconfig")
async def test_pods_and_nodes_show_cpu_and_memory_from_the_metrics_api():
    app = TuiApp(namespace=NS)
    async with app.run_test(size=SIZE) as pilot:
        table = app.browser.table
        # hollow pods use 5m and 16Mi per container by default
        await until(pilot, lambda: table.model is not None and table.model.spec.columns[-1].name == "MEM"
                    and any(r[-1] == "16Mi" for r in table.model.rows.values()), "the usage columns", within=40)
        table.refresh()
        await pilot.pause(0.1)
        text = screen_text(app)
        assert "CPU" in text and "MEM" in text and "16Mi" in text
        await pilot.press("colon", *"nodes", "enter")
        await until(pilot, lambda: table.model is not None and table.model.spec.name == "nodes"
                    and table.model.spec.columns[-1].name == "%MEM" and table.row_count >= 2, "node usage", within=40)
        row = next(iter(table.model.rows.values()))
        assert row[-4].endswith("m") and row[-3].endswith("%") and row[-1].endswith("%")


async def test_the_hpa_view_shows_target_current_and_replicas(api: ApiClient):
    hpa = {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "minReplicas": 2, "maxReplicas": 4,
                 "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                                                               "target": {"type": "Utilization", "averageUtilization": 50}}}]},
    }
    await api.create("horizontalpodautoscalers.autoscaling", hpa, NS)
    try:
        app = TuiApp(namespace=NS)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("colon", *"hpa", "enter")
            table = app.browser.table
            # 5m of a 100m request: 5% against 50%, two replicas (the minimum)
            await until(pilot, lambda: table.model is not None and table.model.spec.name == "hpa"
                        and any(r[3] == "cpu: 5%/50%" for r in table.model.rows.values()), "the HPA's current value",
                        within=40)
            row = table.model.rows[f"{NS}/web"]
            assert row[2:7] == ("Deployment/web", "cpu: 5%/50%", "2", "4", "2")
            table.refresh()
            await pilot.pause(0.1)
            assert "REFERENCE" in screen_text(app) and "TARGETS" in screen_text(app)
    finally:
        await api.delete("horizontalpodautoscalers.autoscaling", "web", NS)


async def test_without_a_metrics_api_the_views_stay_as_they_are():
    app = TuiApp(namespace="", session=fake_session())
    async with app.run_test(size=SIZE) as pilot:
        table = app.browser.table
        await until(pilot, lambda: table.row_count == 7, "seven pods")
        await pilot.pause(0.3)
        assert [c.name for c in table.model.spec.columns][-1] == "NODE"
        assert all(len(r) == 8 for r in table.model.rows.values())
