"""The REST v2 client against the fake server: retries, errors, and the key kept secret."""

from __future__ import annotations

import math
import pickle
import socket

import pytest
from fake_runpod import FakeRunPod

from imagebuild.errors import UserError
from imagebuild.runpod.client import Client, RunPodError
from imagebuild.runpod.credentials import ApiKey, load_api_key

pytest_plugins = ["fake_runpod.fixtures"]


class Sleeps(list):
    """Records the pauses instead of sleeping them."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def client(fake_runpod: FakeRunPod, sleeps: Sleeps):
    with Client(fake_runpod.url, ApiKey(fake_runpod.api_key), sleep=sleeps, backoff=0.5) as c:
        yield c


def test_lists_pods(client: Client):
    assert client.get("/pods") == {"pods": []}


def test_server_errors_are_retried_with_backoff_then_succeed(fake_runpod, client, sleeps):
    fake_runpod.inject("server_error", times=2)
    assert client.get("/pods") == {"pods": []}
    assert len(fake_runpod.calls("GET", "/v2/pods")) == 3
    assert sleeps == [0.5, 1.0]


def test_server_errors_give_up_after_a_bounded_number_of_attempts(fake_runpod, client, sleeps):
    fake_runpod.inject("server_error", times=math.inf)
    with pytest.raises(RunPodError) as error:
        client.get("/pods")
    assert len(fake_runpod.calls("GET", "/v2/pods")) == 4
    assert "500 Internal Server Error: upstream failure, please retry" in str(error.value)
    assert "gave up after 4 attempts" in str(error.value)
    assert sleeps == [0.5, 1.0, 2.0]


def test_429_waits_for_retry_after(fake_runpod, client, sleeps):
    fake_runpod.inject("rate_limit", retry_after=3)
    assert client.get("/pods") == {"pods": []}
    assert sleeps == [3.0]


def test_429_with_a_long_retry_after_is_reported_not_waited(fake_runpod, client, sleeps):
    fake_runpod.inject("rate_limit", retry_after=3600)
    with pytest.raises(RunPodError) as error:
        client.get("/pods")
    assert sleeps == []
    assert "rate-limiting" in str(error.value) and "try again in 3600 s" in str(error.value)


def test_rejected_key(fake_runpod, sleeps):
    with Client(fake_runpod.url, ApiKey("rpa_WRONG"), sleep=sleeps) as client, pytest.raises(RunPodError) as error:
        client.get("/pods")
    message = str(error.value)
    assert message.startswith("RunPod rejected the API key (401 Unauthorized: invalid api key)")
    assert "\n" not in message
    assert len(fake_runpod.requests) == 1  # never retried


def test_key_is_masked_even_when_the_server_echoes_it(fake_runpod, client):
    fake_runpod.inject("echo_key")
    with pytest.raises(RunPodError) as error:
        client.get("/pods")
    assert fake_runpod.api_key not in str(error.value)
    assert fake_runpod.api_key not in repr(error.value.problem)
    assert "invalid api key ***" in str(error.value)


def test_unreachable_api_is_retried_then_reported(sleeps):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with Client(f"http://127.0.0.1:{port}/v2", ApiKey("k"), sleep=sleeps) as client, pytest.raises(RunPodError) as error:
        client.get("/pods")
    assert f"cannot reach RunPod at http://127.0.0.1:{port}/v2" in str(error.value)
    assert len(sleeps) == 3


def test_lost_post_is_not_repeated_blindly(fake_runpod, client):
    fake_runpod.inject("drop_after_create")
    body = {"name": "once", "image": "i", "gpu": {"id": "NVIDIA GeForce RTX 4090"}}
    with pytest.raises(RunPodError) as error:
        client.request("POST", "/pods", json=body)
    assert "was not repeated" in str(error.value)
    assert len(fake_runpod.calls("POST", "/v2/pods")) == 1


def test_lost_post_uses_recover_instead_of_repeating(fake_runpod, client):
    fake_runpod.inject("drop_after_create")
    body = {"name": "once", "image": "i", "gpu": {"id": "NVIDIA GeForce RTX 4090"}}

    def recover():
        return next((p for p in client.get("/pods")["pods"] if p["name"] == "once"), None)

    pod = client.request("POST", "/pods", json=body, recover=recover)
    assert pod["name"] == "once"
    assert len(fake_runpod.calls("POST", "/v2/pods")) == 1 and len(fake_runpod.pods) == 1


def test_404_is_one_line_from_the_problem_document(client):
    with pytest.raises(RunPodError) as error:
        client.get("/pods/nope")
    assert error.value.status == 404
    assert str(error.value) == "RunPod refused GET /v2/pods/nope (404 Not Found: pod not found)"


def test_api_key_never_in_repr_str_or_pickle():
    key = ApiKey("rpa_SECRET")
    assert "rpa_SECRET" not in repr(key) + str(key) + f"{key}"
    with pytest.raises(TypeError):
        pickle.dumps(key)
    assert "rpa_SECRET" not in repr(Client("http://127.0.0.1:9/v2", key))


# -- where the key comes from ---------------------------------------------------


def test_key_from_environment_wins(tmp_path):
    (tmp_path / "config.toml").write_text('apikey = "from-file"\n')
    assert load_api_key({"RUNPOD_API_KEY": "from-env"}, tmp_path / "config.toml").reveal() == "from-env"


def test_key_from_runpodctl_config(tmp_path):
    (tmp_path / "config.toml").write_text('apikey = "rpa_CTL"\napiurl = "https://api.runpod.io/graphql"\n')
    assert load_api_key({}, tmp_path / "config.toml").reveal() == "rpa_CTL"


def test_key_from_sdk_profiles(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[default]\napi_key = "rpa_DEFAULT"\n\n[work]\napi_key = "rpa_WORK"\n')
    assert load_api_key({}, path).reveal() == "rpa_DEFAULT"
    assert load_api_key({"RUNPOD_PROFILE": "work"}, path).reveal() == "rpa_WORK"


def test_missing_key_says_how_to_set_one(tmp_path):
    with pytest.raises(UserError) as error:
        load_api_key({}, tmp_path / "absent.toml")
    assert error.value.exit_code == 2
    assert "RUNPOD_API_KEY" in str(error.value) and "runpodctl config" in str(error.value)


def test_broken_config_file_is_named_without_its_content(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('apikey = "rpa_HALF\n')
    with pytest.raises(UserError) as error:
        load_api_key({}, path)
    assert str(path) in str(error.value) and "rpa_HALF" not in str(error.value)
