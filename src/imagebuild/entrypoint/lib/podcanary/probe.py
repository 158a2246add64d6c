"""pod-gpu-probe NAME: one GPU-facing probe in its own process (a driver that hangs or
crashes takes only this process with it). It prints one JSON object as its last line:
{"skip": why} when the image lacks what it needs; a failure exits non-zero with one line.
The canary's probes come first; EXTRA are the longer ones scripts/gpu-check.sh and the
image suite's GPU tests run (one implementation of each GPU probe, the image's)."""

from __future__ import annotations

import ctypes
import glob
import importlib.util
import json
import os
import sys
import time

EGL_PLATFORM_DEVICE = 0x313F
EGL_VENDOR, EGL_OPENGL_API, EGL_NONE = 0x3053, 0x30A2, 0x3038
EGL_SURFACE_TYPE, EGL_PBUFFER_BIT, EGL_RENDERABLE_TYPE, EGL_OPENGL_BIT = 0x3033, 0x1, 0x3040, 0x8
# Where the sim layer bakes libPhysXGpu_64.so (imagebuild/physx.py BAKED_DIR), and where SAPIEN looks.
PHYSX_LIBRARIES = ("/usr/local/lib/sapien-physx/*/libPhysXGpu_64.so", "~/.sapien/physx/*/libPhysXGpu_64.so")


class Failed(Exception):
    pass


def baked(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def egl() -> dict:
    """The first EGL device's display (EGL_PLATFORM_DEVICE_EXT), its vendor, an OpenGL context."""
    try:
        lib = ctypes.CDLL("libEGL.so.1")
    except OSError:
        raise Failed("no libEGL.so.1 (glvnd) in the image") from None
    lib.eglGetProcAddress.restype = ctypes.c_void_p
    lib.eglGetProcAddress.argtypes = [ctypes.c_char_p]
    query_address = lib.eglGetProcAddress(b"eglQueryDevicesEXT")
    display_address = lib.eglGetProcAddress(b"eglGetPlatformDisplayEXT")
    if not query_address or not display_address:
        raise Failed("EGL has no device extension (no vendor library loaded)")
    query_devices = ctypes.CFUNCTYPE(ctypes.c_uint, ctypes.c_int, ctypes.POINTER(ctypes.c_void_p),
                                     ctypes.POINTER(ctypes.c_int))(query_address)
    platform_display = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_uint, ctypes.c_void_p,
                                        ctypes.c_void_p)(display_address)
    devices, count = (ctypes.c_void_p * 16)(), ctypes.c_int()
    if not query_devices(16, devices, ctypes.byref(count)) or not count.value:
        raise Failed("EGL lists no device")
    display = platform_display(EGL_PLATFORM_DEVICE, devices[0], None)
    major, minor = ctypes.c_int(), ctypes.c_int()
    lib.eglInitialize.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    if not display or not lib.eglInitialize(display, ctypes.byref(major), ctypes.byref(minor)):
        raise Failed("eglInitialize failed on the first EGL device")
    lib.eglQueryString.restype = ctypes.c_char_p
    lib.eglQueryString.argtypes = [ctypes.c_void_p, ctypes.c_int]
    vendor = (lib.eglQueryString(display, EGL_VENDOR) or b"").decode()
    attributes = (ctypes.c_int * 5)(EGL_SURFACE_TYPE, EGL_PBUFFER_BIT, EGL_RENDERABLE_TYPE, EGL_OPENGL_BIT,
                                    EGL_NONE)
    config, configs = ctypes.c_void_p(), ctypes.c_int()
    lib.eglChooseConfig.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int,
                                    ctypes.c_void_p]
    lib.eglCreateContext.restype = ctypes.c_void_p
    lib.eglCreateContext.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    lib.eglBindAPI(EGL_OPENGL_API)
    if not lib.eglChooseConfig(display, attributes, ctypes.byref(config), 1, ctypes.byref(configs)) \
            or not configs.value or not lib.eglCreateContext(display, config, None, None):
        raise Failed(f"EGL from {vendor} gives no OpenGL context")
    return {"vendor": vendor, "version": f"{major.value}.{minor.value}", "devices": count.value,
            "baked": [name for name in ("mujoco",) if baked(name)]}


def mujoco() -> dict:
    """One frame of a small scene (MUJOCO_GL picks the backend), and who rendered it."""
    import mujoco
    import numpy as np
    from OpenGL import GL

    model = mujoco.MjModel.from_xml_string(
        '<mujoco><worldbody><light pos="0 0 3"/><geom type="plane" size="2 2 .1" rgba=".3 .5 .7 1"/>'
        '<body pos="0 0 1"><freejoint/><geom type="box" size=".2 .2 .2" rgba="1 .2 .2 1"/></body>'
        "</worldbody></mujoco>")
    data = mujoco.MjData(model)
    mujoco.mj_step(model, data, 50)
    renderer = mujoco.Renderer(model, 240, 320)
    renderer.update_scene(data)
    frame = renderer.render()
    renderer_name = GL.glGetString(GL.GL_RENDERER).decode()
    renderer.close()
    return {"version": mujoco.__version__, "renderer": renderer_name, "values": len(np.unique(frame))}


def torch() -> dict:
    """Every GPU torch sees, each with a small matmul (its time includes CUDA's start)."""
    if not baked("torch"):
        return {"skip": "torch is not baked into the image"}
    import torch

    report = {"version": torch.__version__, "cuda": torch.version.cuda, "devices": []}
    try:
        for index in range(torch.cuda.device_count()):
            started = time.perf_counter()
            matrix = torch.randn(1024, 1024, device=f"cuda:{index}")
            (matrix @ matrix).sum().item()
            report["devices"].append({"name": torch.cuda.get_device_name(index),
                                      "ms": (time.perf_counter() - started) * 1000})
        if not report["devices"]:
            report["error"] = "torch.cuda.is_available() is False: torch would run on the CPU"
    except Exception as error:  # noqa: BLE001 (CUDA's errors: too old a driver, a lost GPU...)
        report["error"] = str(error).splitlines()[0]
    return report


def physx_libraries() -> list[str]:
    return [path for pattern in PHYSX_LIBRARIES for path in glob.glob(os.path.expanduser(pattern))]


def maniskill(num_envs: int, obs_mode: str, backend: str, steps: int, warmup: int = 1) -> dict:
    """PickCube-v1: ``steps`` timed steps of ``num_envs`` envs on ``backend`` (physx_cuda: GPU
    physics; cpu), observations ``obs_mode``; SAPIEN may download nothing (no network on a pod
    host, and a download would hide a PhysX library that is not where SAPIEN looks)."""
    import gymnasium as gym
    import mani_skill.envs  # noqa: F401 (registers the envs)
    import requests
    import torch

    def no_download(url, *args, **kwargs):
        raise Failed(f"SAPIEN tried to download {url}: its PhysX GPU library is not where it looks")

    requests.get = no_download
    gpu = backend == "physx_cuda"
    env = gym.make("PickCube-v1", num_envs=num_envs, obs_mode=obs_mode, sim_backend=backend)
    obs, _ = env.reset(seed=0)
    action = torch.zeros(env.action_space.shape, device="cuda") if gpu else env.action_space.sample()
    for _ in range(warmup):  # the first steps compile and allocate: not timed
        obs, *_ = env.step(action)
    if gpu:
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        obs, *_ = env.step(action)
    if gpu:
        torch.cuda.synchronize()
    rate = steps * num_envs / (time.perf_counter() - started)
    report = {"num_envs": num_envs, "backend": backend, "env_steps_per_s": round(rate)}
    if obs_mode == "rgb":
        rgb = obs["sensor_data"]["base_camera"]["rgb"]
        if int(rgb.max()) == 0:
            raise Failed(f"the RGB observation {tuple(rgb.shape)} is black")
        report["rgb"] = list(rgb.shape)
    env.close()
    shape = f" {tuple(report['rgb'])}" if "rgb" in report else ""
    report["figure"] = (f"ManiSkill PickCube-v1 on {backend}: {num_envs} env(s), {obs_mode} obs{shape}, "
                        f"{rate:,.0f} env-steps/s")
    return report


def physx() -> dict:
    """A few GPU-physics steps of a small ManiSkill scene (PhysX on CUDA), no download allowed."""
    libraries = physx_libraries()
    if not baked("sapien") or not libraries:
        return {"skip": "no SAPIEN with a PhysX GPU library in the image"}
    if not baked("mani_skill"):
        import sapien

        sapien.physx.enable_gpu()
        return {"figure": f"SAPIEN {sapien.__version__}: PhysX GPU enabled ({libraries[0]})"}
    return maniskill(16, "state", "physx_cuda", 10)


# Not the canary's: longer GPU checks for scripts/gpu-check.sh and tests/image (bench figures).

def sapien_render() -> dict:
    """A SAPIEN camera picture of one box, rendered through Vulkan."""
    import numpy as np
    import sapien

    summary = str(sapien.render.get_device_summary()).strip()
    scene = sapien.Scene()
    scene.set_ambient_light([0.5, 0.5, 0.5])
    scene.add_directional_light([0, 1, -1], [1, 1, 1])
    builder = scene.create_actor_builder()
    builder.add_box_visual(half_size=[0.2] * 3, material=[1, 0, 0])
    builder.build(name="box")
    camera = scene.add_camera("camera", 320, 240, 1.0, 0.01, 10)
    camera.set_pose(sapien.Pose([-1, 0, 0]))
    scene.update_render()
    camera.take_picture()
    rgba = camera.get_picture("Color")
    values = len(np.unique((rgba * 255).astype("uint8")))
    if values <= 2:
        raise Failed(f"SAPIEN's picture has {values} distinct values")
    return {"version": sapien.__version__, "devices": summary, "values": values,
            "figure": f"SAPIEN {sapien.__version__}: a {rgba.shape[1]}x{rgba.shape[0]} picture, {values} "
                      f"distinct values ({' '.join(summary.split()[:8])})"}


def mujoco_egl() -> dict:
    """MuJoCo's frame, which must come from the NVIDIA driver (MUJOCO_GL=egl)."""
    os.environ["MUJOCO_GL"] = "egl"
    report = mujoco()
    if report["values"] <= 10 or "NVIDIA" not in report["renderer"]:
        raise Failed(f"MuJoCo rendered {report['values']} values on {report['renderer']}")
    return {**report, "figure": f"MuJoCo {report['version']}: a 320x240 frame with {report['values']} "
                                f"distinct values from {report['renderer']}"}


def maniskill_cpu() -> dict:
    """CPU physics, RGB observations rendered on the GPU (Vulkan)."""
    return maniskill(1, "rgb", "cpu", 50)


def maniskill_gpu() -> dict:
    """GPU physics at training scale: 256 envs with RGB observations (env-steps/s)."""
    if not physx_libraries():
        return {"skip": "no PhysX GPU library in the image (build with --physx-gpu linux-so.zip)"}
    return maniskill(256, "rgb", "physx_cuda", 50, warmup=5)


PROBES = {"egl": egl, "mujoco": mujoco, "torch": torch, "physx": physx,
          "mujoco-egl": mujoco_egl, "sapien-vulkan": sapien_render, "maniskill-cpu": maniskill_cpu,
          "maniskill-gpu": maniskill_gpu}
EXTRA = ("mujoco-egl", "sapien-vulkan", "maniskill-cpu", "maniskill-gpu")  # not run by the canary


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in PROBES:
        print(f"usage: pod-gpu-probe {{{'|'.join(PROBES)}}}", file=sys.stderr)
        return 2
    try:
        report = PROBES[argv[0]]()
    except Exception as error:  # noqa: BLE001 (one line for the canary, not a traceback)
        detail = (str(error).strip().splitlines() or [""])[0]
        print(f"{argv[0]}: {type(error).__name__}: {detail}", file=sys.stderr)
        return 1
    print(json.dumps(report))
    return 0
