"""The fault suite reuses the integration and e2e fixtures: a real `tuik8s server` on a
temp data dir, and a real Docker-in-Docker lab (cluster `faults`, its own network)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.conftest import (  # noqa: F401 - fixtures and the lab's skip rule, shared
    LabServer,
    lab_images,
    pytest_collection_modifyitems,
    start_lab_server,
    stop_lab_server,
)


@pytest.fixture(scope="module")
def fault_lab(tmp_path_factory: pytest.TempPathFactory, lab_images: None) -> Iterator[LabServer]:  # noqa: F811
    """A control plane and three lab nodes of cluster `faults`, taken down afterwards."""
    lab = start_lab_server(tmp_path_factory.mktemp("faults"), "faults")
    try:
        lab.lab("up", "--nodes", "3")
        yield lab
    finally:
        lab.lab("down", check=False)
        stop_lab_server(lab)
