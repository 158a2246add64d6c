"""Hand the pod image to other schedulers: `imagebuild export skypilot` writes SkyPilot tasks."""
