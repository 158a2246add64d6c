"""GPU aliases against the GPU catalog the fake serves (RunPod's real ids)."""

from __future__ import annotations

import json
import re

import pytest
from conftest import record_push
from fake_runpod import FakeRunPod

from imagebuild.errors import SpecError
from imagebuild.runpod.client import Client, RunPodError
from imagebuild.runpod.credentials import ApiKey
from imagebuild.runpod.gpus import resolve_gpu, resolve_gpus

pytest_plugins = ["fake_runpod.fixtures"]
STOCK_LEVELS = {"NONE", "LOW", "MEDIUM", "HIGH"}


@pytest.fixture
def catalog(fake_runpod: FakeRunPod) -> list[dict]:
    with Client(fake_runpod.url, ApiKey(fake_runpod.api_key)) as client:
        return client.get("/catalog/gpus")["gpus"]  # the plain catalog, without stock


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


# -- imagebuild gpus: the catalog with availability, through the real CLI -----------


def catalog_queries(fake: FakeRunPod) -> list[dict[str, str]]:
    """The availability reads (the ``catalog`` fixture's plain read left out)."""
    return [{k: v[-1] for k, v in r.query.items()} for r in fake.calls("GET", "/v2/catalog/gpus")
            if r.query]


def table_rows(stdout: str) -> list[list[str]]:
    """The data rows of the table (two spaces or more between cells)."""
    lines = stdout.splitlines()
    return [re.split(r"\s{2,}", line.strip()) for line in lines[1:] if line.startswith(" ") is False
            and re.search(r"\d+ GB", line)]


def test_gpus_lists_both_clouds_cheapest_first_with_stock(pod_cli, fake_runpod):
    fake_runpod.state.stock[("NVIDIA RTX A6000", "COMMUNITY")] = "NONE"
    result = pod_cli("gpus", env={"COLUMNS": "200"})
    assert result.code == 0, result.output
    # One spec-valid read per cloud, for pods, at the default spec's CUDA 12.8 floor.
    assert sorted(q["cloud"] for q in catalog_queries(fake_runpod)) == ["COMMUNITY", "SECURE"]
    for query in catalog_queries(fake_runpod):
        assert query | {"cloud": "-"} == {"include": "AVAILABILITY", "product": "POD", "count": "1",
                                          "cloud": "-", "minCudaVersion": "12.8"}
    rows = table_rows(result.stdout)
    cheapest = [min(float(r[3]), float(r[5])) for r in rows]
    assert cheapest == sorted(cheapest) and len(rows) == 11
    a6000 = next(r for r in rows if r[1] == "NVIDIA RTX A6000")
    assert a6000 == ["a6000", "NVIDIA RTX A6000", "48 GB", "0.49", "high", "0.33", "none"]
    # RTX 3090 hosts run CUDA 12.4 at most: none of them can take a CUDA 12.8 image.
    assert next(r for r in rows if r[1] == "NVIDIA GeForce RTX 3090")[4::2] == ["none", "none"]
    assert "hosts with CUDA 12.8 or newer" in result.stdout


def test_gpus_json_filters_price_for_the_count_and_aliases_that_resolve(pod_cli, fake_runpod, catalog):
    record_push(pod_cli.workdir, image="registry.example/pod@sha256:" + "cd" * 32, cuda="12.6")
    result = pod_cli("gpus", "--json", "--cloud", "community", "--count", "2", "--max-price", "1.6",
                     "--min-vram", "40")
    assert result.code == 0, result.output
    data = json.loads(result.stdout)
    assert data["count"] == 2 and data["minCudaVersion"] == "12.6"  # the pushed image's floor
    (query,) = catalog_queries(fake_runpod)
    assert query == {"include": "AVAILABILITY", "product": "POD", "count": "2", "cloud": "COMMUNITY",
                     "minCudaVersion": "12.6"}
    per_gpu = {g["id"]: g["price"]["community"] for g in catalog}
    prices = [g["price"]["community"] for g in data["gpus"]]
    assert prices == sorted(prices) and prices
    assert {g["id"] for g in data["gpus"]} == {
        g["id"] for g in catalog if g["memory"] >= 40 and 2 * g["price"]["community"] <= 1.6}
    for gpu in data["gpus"]:
        assert gpu["price"] == {"community": round(2 * per_gpu[gpu["id"]], 4)}
        assert set(gpu["stock"]) == {"community"} and gpu["stock"]["community"] in STOCK_LEVELS
        assert resolve_gpu(gpu["alias"], catalog)["id"] == gpu["id"]  # what `--gpu` takes


def test_gpus_beyond_the_largest_machine_are_left_out(pod_cli, fake_runpod):
    result = pod_cli("gpus", "--json", "--cloud", "community", "--count", "6")
    assert result.code == 0, result.output
    assert json.loads(result.stdout)["gpus"] == []  # community machines hold 4 at most
    assert "no GPU type matches" in pod_cli("gpus", "--cloud", "community", "--count", "6").stdout


@pytest.mark.parametrize(("args", "named"), [
    (["--cloud", "moon"], "--cloud"),
    (["--count", "0"], "--count"),
    (["--max-price", "-1"], "--max-price"),
])
def test_gpus_bad_flags_are_one_line_errors(pod_cli, fake_runpod, args, named):
    result = pod_cli("gpus", *args)
    assert result.code == 2
    assert result.stderr.count("\n") == 1 and named in result.stderr
    assert not fake_runpod.requests


def test_the_fake_catalog_keeps_the_availability_rules_of_the_spec(fake_runpod):
    """What the spec's parameter descriptions say, so the client cannot rely on less."""
    with Client(fake_runpod.url, ApiKey(fake_runpod.api_key), attempts=1) as client:
        for params, why in (({"include": "AVAILABILITY"}, "requires product"),
                            ({"count": 2}, "valid only with include=AVAILABILITY"),
                            ({"include": "AVAILABILITY", "product": "POD", "minCudaVersion": "12",
                              "cudaVersions": "12.8"}, "mutually exclusive")):
            with pytest.raises(RunPodError) as error:
                client.get("/catalog/gpus", params=params)
            assert error.value.status == 400 and why in str(error.value)
        plain = client.get("/catalog/gpus")["gpus"]
        assert all("availability" not in gpu for gpu in plain)
        gpus = client.get("/catalog/gpus", params={"include": "AVAILABILITY", "product": "POD",
                                                   "count": 8, "cloud": "COMMUNITY"})["gpus"]
        # More GPUs than one community machine holds: no stock, no data center listed.
        assert {g["availability"] for g in gpus} == {"NONE"} and not any("dataCenters" in g for g in gpus)
