"""Python run on the pod over SSH, shared by the CPU and GPU tests."""

from __future__ import annotations

import json
import shlex

IMPORT_AND_REPORT = """
import importlib, importlib.metadata as md, json, sys
wanted = json.loads(sys.argv[1])
for module in wanted["modules"]:
    importlib.import_module(module)
print(json.dumps({name: md.version(name) for name in wanted["dists"]}))
"""

MUJOCO_FRAME = """
import json, mujoco
xml = '<mujoco><worldbody><light pos="0 0 3"/><geom type="sphere" size=".2" rgba="1 0 0 1"/></worldbody></mujoco>'
model = mujoco.MjModel.from_xml_string(xml)
data = mujoco.MjData(model)
mujoco.mj_forward(model, data)
renderer = mujoco.Renderer(model, 64, 64)
renderer.update_scene(data)
frame = renderer.render()
renderer.close()  # explicitly: OSMesa's teardown at interpreter exit is noisy
print(json.dumps({"shape": frame.shape, "red": int(frame[..., 0].max()), "blue": int(frame[..., 2].max())}))
"""

MANISKILL_STEP = """
import json, gymnasium as gym, mani_skill.envs  # registers the envs
env = gym.make("PickCube-v1", num_envs=1, obs_mode="rgbd", render_mode="rgb_array")
env.reset(seed=0)
env.step(env.action_space.sample())
frame = env.render()
env.close()
print(json.dumps({"frame": list(frame.shape), "max": int(frame.max())}))
"""


def python_over_ssh(pod, code: str, *args: str, env: str = "") -> str:
    """Run ``code`` with the pod's `python` in a login shell; its stdout."""
    quoted = " ".join(shlex.quote(arg) for arg in args)
    return pod.sh(f"{env} python - {quoted} <<'PYEOF'\n{code}\nPYEOF\n")


def last_json(out: str):
    """The JSON a probe printed last (libraries may print before it)."""
    return json.loads(out.strip().splitlines()[-1])
