"""The fake RunPod API itself: its spec checks can fail, and its state machine is RunPod's."""

from __future__ import annotations

import time

import httpx
import pytest
from fake_runpod import FakeRunPod, schema

pytest_plugins = ["fake_runpod.fixtures"]

GPU = "NVIDIA GeForce RTX 4090"
BODY = {"name": "t", "image": "img@sha256:" + "0" * 64, "gpu": {"id": GPU}, "ports": ["22/tcp"]}


def _spec_or_skip():
    spec, why = schema.load()
    if spec is None:
        pytest.skip(why)
    return spec


@pytest.fixture
def http(fake_runpod: FakeRunPod):
    with httpx.Client(base_url=fake_runpod.url, headers={"Authorization": f"Bearer {fake_runpod.api_key}"}) as c:
        yield c


def test_spec_is_present_for_schema_checks(tmp_path):
    """Says why the schema checks are off when the shared spec is missing, and holds
    the operations the fake serves when it is there."""
    missing, why = schema.load(tmp_path / "absent.json")
    assert missing is None and "absent.json" in why and "skipped" in why
    spec = _spec_or_skip()
    operations = {operation.get("operationId") for path in spec.doc["paths"].values()
                  for operation in path.values() if isinstance(operation, dict)}
    assert {"createPod", "listPods", "getPod", "deletePod", "createNetworkVolume"} <= operations


def test_request_off_the_spec_is_recorded_and_refused():
    _spec_or_skip()
    with FakeRunPod() as fake:
        answer = httpx.post(
            f"{fake.url}/pods",
            json={**BODY, "gpuTypeIds": [GPU]},  # a v1 field: not in v2's CreatePodRequest
            headers={"Authorization": f"Bearer {fake.api_key}"},
        )
    assert answer.status_code == 422
    assert any("gpuTypeIds" in m for m in fake.mismatches), fake.mismatches


def test_bad_query_parameter_is_recorded():
    _spec_or_skip()
    with FakeRunPod() as fake:
        httpx.get(f"{fake.url}/pods", params={"includeClusterPods": "maybe"},
                  headers={"Authorization": f"Bearer {fake.api_key}"})
    assert any("includeClusterPods" in m for m in fake.mismatches), fake.mismatches


def test_response_off_the_spec_is_recorded(monkeypatch):
    """The fake checks its own answers: a pod without `actions` must be caught."""
    _spec_or_skip()
    with FakeRunPod() as fake:
        real_view = fake.state.view
        monkeypatch.setattr(fake.state, "view", lambda pod: {k: v for k, v in real_view(pod).items() if k != "actions"})
        httpx.post(f"{fake.url}/pods", json=BODY, headers={"Authorization": f"Bearer {fake.api_key}"})
    assert any("'actions' is a required property" in m for m in fake.mismatches), fake.mismatches


def test_missing_bearer_is_recorded():
    _spec_or_skip()
    with FakeRunPod() as fake:
        assert httpx.get(f"{fake.url}/pods").status_code in (401, 422)
    assert any("Bearer" in m for m in fake.mismatches)


def test_lifecycle_statuses_actions_and_runtime(fake_runpod: FakeRunPod, http: httpx.Client):
    fake_runpod.state.provisioning_s = fake_runpod.state.starting_s = 0.3
    pod = http.post("/pods", json=BODY).json()
    assert (pod["status"], pod["runtime"], pod["ssh"]["direct"]) == ("PROVISIONING", None, None)
    assert pod["actions"] == ["stop", "terminate"]
    time.sleep(0.35)
    pod = http.get(f"/pods/{pod['id']}").json()
    assert (pod["status"], pod["runtime"]) == ("STARTING", None)
    time.sleep(0.35)
    pod = http.get(f"/pods/{pod['id']}").json()
    assert pod["status"] == "RUNNING" and pod["runtime"]["uptime"] >= 0
    assert pod["actions"] == ["stop", "restart", "terminate"]
    assert pod["ssh"]["direct"]["port"] == pod["runtime"]["ports"][0]["public"]

    pod = http.post(f"/pods/{pod['id']}/action", json={"action": "stop"}).json()
    assert (pod["status"], pod["runtime"], pod["cost"], pod["actions"]) == ("EXITED", None, 0.0, ["start", "terminate"])
    conflict = http.post(f"/pods/{pod['id']}/action", json={"action": "stop"})
    assert conflict.status_code == 409 and conflict.headers["content-type"] == "application/problem+json"

    assert http.post(f"/pods/{pod['id']}/action", json={"action": "start"}).json()["status"] == "STARTING"
    assert http.delete(f"/pods/{pod['id']}").status_code == 204
    assert http.get(f"/pods/{pod['id']}").status_code == 404
    assert http.get("/pods").json() == {"pods": []}


def test_cuda_floor_places_on_a_new_enough_host(http: httpx.Client):
    old = http.post("/pods", json={**BODY, "name": "a"}).json()
    new = http.post("/pods", json={**BODY, "name": "b", "gpu": {"id": GPU, "minCudaVersion": "12.8"}}).json()
    time.sleep(0.25)
    assert http.get(f"/pods/{old['id']}").json()["cudaVersion"] == "12.4"
    assert http.get(f"/pods/{new['id']}").json()["cudaVersion"] == "12.8"
    too_new = http.post("/pods", json={**BODY, "name": "c", "gpu": {"id": GPU, "minCudaVersion": "13.0"}})
    assert too_new.status_code == 400 and "no longer any instances" in too_new.json()["detail"]


def test_faults(fake_runpod: FakeRunPod, http: httpx.Client):
    fake_runpod.inject("rate_limit", retry_after=7, path="/v2/pods", method="GET")
    limited = http.get("/pods")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"
    assert http.get("/pods").status_code == 200  # once only

    fake_runpod.inject("server_error", times=2)
    assert [http.get("/pods").status_code for _ in range(3)] == [500, 500, 200]

    fake_runpod.inject("drop_after_create")
    with pytest.raises(httpx.RemoteProtocolError):
        http.post("/pods", json=BODY)
    assert len(fake_runpod.pods) == 1  # created, though never answered


# -- the endpoints issue 12 added: each status code the spec lists, validated both ways --

NEW_ENDPOINTS = [
    ("GET", "/account/ssh-keys", None),
    ("PUT", "/account/ssh-keys", {"keys": ["ssh-ed25519 AAAAC3Nza k"]}),
    ("GET", "/network-volumes", None),
    ("POST", "/network-volumes", {"name": "v", "size": 10, "dataCenter": "US-KS-2"}),
    ("GET", "/registries", None),
    ("POST", "/registries", {"name": "r", "username": "u", "password": "p"}),
]


@pytest.mark.parametrize("status", [400, 402, 403, 404, 409, 422, 429, 503])
@pytest.mark.parametrize(("method", "path", "body"), NEW_ENDPOINTS)
def test_new_endpoints_answer_each_injected_status_within_the_spec(fake_runpod, http, method, path,
                                                                   body, status):
    kind = "rate_limit" if status == 429 else "status"
    fake_runpod.inject(kind, status=status, method=method, path=f"/v2{path}", retry_after=1)
    answer = http.request(method, path, json=body)
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/problem+json"
    assert http.request(method, path, json=body).status_code in (200, 201)  # one-off: then served


def test_volume_registry_patch_and_logs_round_trip(fake_runpod, http):
    volume = http.post("/network-volumes", json={"name": "v", "size": 10, "dataCenter": "EU-RO-1"}).json()
    assert http.get(f"/network-volumes/{volume['id']}").json() == volume
    registry = http.post("/registries", json={"name": "r", "username": "u", "password": "secret"}).json()
    assert "secret" not in http.get("/registries").text  # write-only
    mounts = {"network": [{"volumeId": volume["id"], "path": "/workspace"}]}
    both = http.post("/pods", json={**BODY, "mounts": {**mounts, "persistent": {"size": 10, "path": "/w"}}})
    assert both.status_code == 400 and "mutually exclusive" in both.json()["detail"]
    elsewhere = http.post("/pods", json={**BODY, "mounts": mounts, "dataCenterIds": ["US-KS-2"]})
    assert elsewhere.status_code == 400
    pod = http.post("/pods", json={**BODY, "mounts": mounts, "registry": registry["id"]}).json()
    assert http.get(f"/pods/{pod['id']}").json()["registry"] == registry["id"]
    fake_runpod.state.provisioning_s = 0
    assert http.get(f"/pods/{pod['id']}").json()["dataCenterId"] == "EU-RO-1"  # the volume's
    patched = http.patch(f"/pods/{pod['id']}", json={"image": "new@sha256:" + "1" * 64})
    assert patched.status_code == 200 and patched.json()["image"].startswith("new@")
    assert http.patch("/pods/nosuch", json={"image": "x"}).status_code == 404
    logs = http.get(f"/pods/{pod['id']}/logs", params={"tail": 5})
    assert logs.headers["content-type"] == "text/event-stream" and "pulling image" in logs.text
    assert http.get("/pods/nosuch/logs").status_code == 404
    assert http.delete(f"/network-volumes/{volume['id']}").status_code == 204
    assert http.delete(f"/network-volumes/{volume['id']}").status_code == 404
