"""GPU aliases against the GPU catalog the fake serves (RunPod's real ids)."""

from __future__ import annotations

import pytest
from fake_runpod import FakeRunPod

from imagebuild.errors import SpecError
from imagebuild.runpod.client import Client
from imagebuild.runpod.credentials import ApiKey
from imagebuild.runpod.gpus import fetch_catalog, resolve_gpu, resolve_gpus

pytest_plugins = ["fake_runpod.fixtures"]


@pytest.fixture
def catalog(fake_runpod: FakeRunPod) -> list[dict]:
    with Client(fake_runpod.url, ApiKey(fake_runpod.api_key)) as client:
        return fetch_catalog(client)


@pytest.mark.parametrize(
    ("alias", "gpu_id"),
    [
        ("4090", "NVIDIA GeForce RTX 4090"),
        ("RTX 4090", "NVIDIA GeForce RTX 4090"),
        ("rtx4090", "NVIDIA GeForce RTX 4090"),
        ("a6000", "NVIDIA RTX A6000"),
        ("6000 ada", "NVIDIA RTX 6000 Ada Generation"),
        ("h100 sxm", "NVIDIA H100 80GB HBM3"),
        ("H100 PCIe", "NVIDIA H100 PCIe"),
        ("NVIDIA L40S", "NVIDIA L40S"),
    ],
)
def test_alias_resolves(catalog, alias, gpu_id):
    assert resolve_gpu(alias, catalog)["id"] == gpu_id


def test_ambiguous_alias_lists_candidates(catalog):
    with pytest.raises(SpecError) as error:
        resolve_gpu("h100", catalog)
    message = str(error.value)
    assert "ambiguous" in message
    for gpu_id in ("NVIDIA H100 PCIe", "NVIDIA H100 80GB HBM3", "NVIDIA H100 NVL"):
        assert gpu_id in message
    assert "A100" not in message


def test_unknown_alias_suggests_nearest(catalog):
    with pytest.raises(SpecError) as error:
        resolve_gpu("4900", catalog)
    assert 'no GPU "4900"' in str(error.value)
    assert "NVIDIA GeForce RTX 4090" in str(error.value)


def test_fallback_list_keeps_order_and_checks_every_alias_first(catalog):
    assert resolve_gpus("4090,a6000", catalog) == ["NVIDIA GeForce RTX 4090", "NVIDIA RTX A6000"]
    assert resolve_gpus("a6000, 4090, rtx a6000", catalog) == ["NVIDIA RTX A6000", "NVIDIA GeForce RTX 4090"]
    with pytest.raises(SpecError, match="a7000"):
        resolve_gpus("4090,a7000", catalog)


def test_gpu_count_beyond_the_largest_machine(catalog):
    with pytest.raises(SpecError, match="at most 4"):
        resolve_gpus("4090", catalog, count=6, cloud="COMMUNITY")
