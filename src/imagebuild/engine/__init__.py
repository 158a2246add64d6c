"""The Docker engine: the SDK for engine work (``sdk``), a BuildKit-capable CLI for builds (``buildkit``)."""

from imagebuild.engine.sdk import Engine, base_unavailable, connect

__all__ = ["Engine", "base_unavailable", "connect"]
