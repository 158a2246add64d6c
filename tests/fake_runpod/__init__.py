"""A fake RunPod REST API v2 for tests: a real HTTP server, checked against the spec.

    with FakeRunPod() as fake:          # or the `fake_runpod` pytest fixture
        fake.inject("capacity", gpu_ids=["NVIDIA GeForce RTX 4090"])
        ... run the CLI with RUNPOD_API_URL=fake.url, RUNPOD_API_KEY=fake.api_key ...
        assert not fake.mismatches
"""

from fake_runpod.backends import BannerBackend, ContainerBackend, PodBackend
from fake_runpod.server import DEFAULT_KEY, FakeRunPod, Recorded
from fake_runpod.state import CAPACITY_TEXT, FAULT_KINDS

__all__ = [
    "CAPACITY_TEXT",
    "DEFAULT_KEY",
    "FAULT_KINDS",
    "BannerBackend",
    "ContainerBackend",
    "FakeRunPod",
    "PodBackend",
    "Recorded",
]
