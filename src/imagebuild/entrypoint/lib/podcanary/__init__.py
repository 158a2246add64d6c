"""pod-canary: does this pod's GPU work for what the image was built for? Python 3.10+
standard library only; the GPU-facing probes (EGL, torch, MuJoCo, PhysX) run as
`pod-gpu-probe NAME` in their own process, with what the image bakes."""
