"""The probes of gpu-check.sh, one per process: `python3 gpu_probes.py NAME`. Each
prints what it saw; its last line is gpu-check's detail; a failure exits non-zero."""

from __future__ import annotations

import ctypes
import json
import sys
import time


def vulkan() -> None:
    """Physical devices through the loader (VK_DRIVER_FILES: the image's ICD file)."""
    vk = ctypes.CDLL("libvulkan.so.1")

    class AppInfo(ctypes.Structure):
        _fields_ = [("sType", ctypes.c_int), ("pNext", ctypes.c_void_p), ("name", ctypes.c_char_p),
                    ("version", ctypes.c_uint32), ("engine", ctypes.c_char_p),
                    ("engineVersion", ctypes.c_uint32), ("apiVersion", ctypes.c_uint32)]

    class CreateInfo(ctypes.Structure):
        _fields_ = [("sType", ctypes.c_int), ("pNext", ctypes.c_void_p), ("flags", ctypes.c_uint32),
                    ("app", ctypes.POINTER(AppInfo)), ("layers", ctypes.c_uint32),
                    ("layerNames", ctypes.c_void_p), ("extensions", ctypes.c_uint32),
                    ("extensionNames", ctypes.c_void_p)]

    app = AppInfo(0, None, b"gpu-check", 1, b"none", 0, (1 << 22) | (3 << 12))  # Vulkan 1.3
    info = CreateInfo(1, None, 0, ctypes.pointer(app), 0, None, 0, None)
    instance = ctypes.c_void_p()
    status = vk.vkCreateInstance(ctypes.byref(info), None, ctypes.byref(instance))
    assert status == 0, f"vkCreateInstance returned {status}"
    count = ctypes.c_uint32()
    vk.vkEnumeratePhysicalDevices(instance, ctypes.byref(count), None)
    devices = (ctypes.c_void_p * max(count.value, 1))()
    vk.vkEnumeratePhysicalDevices(instance, ctypes.byref(count), devices)
    names = []
    for device in devices[: count.value]:
        properties = ctypes.create_string_buffer(1024)  # VkPhysicalDeviceProperties' head
        vk.vkGetPhysicalDeviceProperties(ctypes.c_void_p(device), properties)
        api = int.from_bytes(properties.raw[0:4], "little")
        name = properties.raw[20:276].split(b"\0", 1)[0].decode()
        names.append(f"{name} (Vulkan {api >> 22}.{(api >> 12) & 0x3FF}.{api & 0xFFF})")
    assert names, "no Vulkan physical device"
    print(f"{len(names)} device(s): {', '.join(names)}")
    assert all("NVIDIA" in name for name in names), "a non-NVIDIA device answered"


def egl() -> None:
    """EGL devices through glvnd (__EGL_VENDOR_LIBRARY_FILENAMES: the image's vendor file)."""
    egl = ctypes.CDLL("libEGL.so.1")
    egl.eglGetProcAddress.restype = ctypes.c_void_p
    egl.eglGetProcAddress.argtypes = [ctypes.c_char_p]
    query_devices = ctypes.CFUNCTYPE(ctypes.c_uint, ctypes.c_int, ctypes.POINTER(ctypes.c_void_p),
                                     ctypes.POINTER(ctypes.c_int))(egl.eglGetProcAddress(b"eglQueryDevicesEXT"))
    platform_display = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p)(
        egl.eglGetProcAddress(b"eglGetPlatformDisplayEXT"))
    devices, count = (ctypes.c_void_p * 16)(), ctypes.c_int()
    assert query_devices(16, devices, ctypes.byref(count)) and count.value, "no EGL device"
    display = platform_display(0x313F, devices[0], None)  # EGL_PLATFORM_DEVICE_EXT
    major, minor = ctypes.c_int(), ctypes.c_int()
    egl.eglInitialize.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    assert egl.eglInitialize(display, ctypes.byref(major), ctypes.byref(minor)), "eglInitialize failed"
    egl.eglQueryString.restype = ctypes.c_char_p
    egl.eglQueryString.argtypes = [ctypes.c_void_p, ctypes.c_int]
    vendor = egl.eglQueryString(display, 0x3053).decode()  # EGL_VENDOR
    print(f"{count.value} EGL device(s); EGL {major.value}.{minor.value} from {vendor}")
    assert "NVIDIA" in vendor, "the EGL vendor is not NVIDIA's"


def mujoco() -> None:
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
    values = len(np.unique(frame))
    print(f"MuJoCo {mujoco.__version__}: a {frame.shape[1]}x{frame.shape[0]} frame with {values} "
          f"distinct values from {renderer_name}")
    assert values > 10 and "NVIDIA" in renderer_name


def sapien() -> None:
    import numpy as np
    import sapien

    print(sapien.render.get_device_summary())
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
    print(f"SAPIEN {sapien.__version__}: a {rgba.shape[1]}x{rgba.shape[0]} picture, {values} distinct values")
    assert values > 2


def maniskill() -> None:
    """PickCube-v1 on GPU physics, 256 envs, RGB observations; no download allowed."""
    import gymnasium as gym
    import mani_skill.envs  # noqa: F401 (registers the envs)
    import requests
    import torch

    def no_download(url, *args, **kwargs):
        raise RuntimeError(f"enable_gpu() tried to download {url}: no PhysX GPU library where SAPIEN looks")

    requests.get = no_download
    envs = 256
    env = gym.make("PickCube-v1", num_envs=envs, obs_mode="rgb", sim_backend="physx_cuda")
    obs, _ = env.reset(seed=0)
    action = torch.zeros(env.action_space.shape, device="cuda")
    for _ in range(5):
        obs, *_ = env.step(action)
    torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(50):
        obs, *_ = env.step(action)
    torch.cuda.synchronize()
    rate = 50 * envs / (time.perf_counter() - started)
    rgb = obs["sensor_data"]["base_camera"]["rgb"]
    env.close()
    assert rgb.shape[0] == envs and int(rgb.max()) > 0, tuple(rgb.shape)
    print(f"physx_cuda PickCube-v1, {envs} envs, RGB obs {tuple(rgb.shape)}: {rate:,.0f} env-steps/s")
    if "--json" in sys.argv:  # for tests/image (last line)
        print(json.dumps({"num_envs": envs, "rgb": list(rgb.shape), "env_steps_per_s": round(rate)}))


if __name__ == "__main__":
    {"vulkan": vulkan, "egl": egl, "mujoco": mujoco, "sapien": sapien, "maniskill": maniskill}[sys.argv[1]]()
