"""imagebuild: reproducible GPU research-pod images and a safe RunPod pod lifecycle."""

__version__ = "0.1.0"
