"""RunPod pods over REST API v2: client, GPU aliases, pod lifecycle, SSH.

Nothing here imports httpx at module level except ``client``; the CLI imports
these modules inside its commands so ``imagebuild --help`` stays fast.
"""
