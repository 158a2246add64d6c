"""Turn `pod create` flags plus the spec's ``[pod]`` defaults into CreateOptions.

Flags win over the spec; the spec wins over built-in defaults. Everything is
checked here, before any pod exists, so a bad flag never leaves a half-made pod.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imagebuild import checks, contract
from imagebuild.errors import SpecError, UserError
from imagebuild.image.spec import PORT
from imagebuild.pods import idlestop, podenv
from imagebuild.project import Project, pod_host_env, pod_settings
from imagebuild.runpod import envsecrets, gpus, image, pricing
from imagebuild.runpod.client import RunPodError
from imagebuild.runpod.pods import CreateOptions

MAX_ENV = 50  # docs, "Environment variables": "up to 50 environment variables per Pod"
# The pod variables imagebuild sets from its own flags: not to be given by --env too.
HOST_SET = {idlestop.IDLE_STOP: "--idle-stop", idlestop.REQUIRES_SAVE: "--idle-stop-requires-save",
            contract.SAVE_EVERY_ENV: "--save-every", contract.IMAGE_REF_ENV: "--image",
            contract.IMAGE_DIGEST_ENV: "--image", contract.IMAGE_ID_ENV: "--image"}


@dataclass
class CreateFlags:
    """`pod create` flags as typed; None means "take the spec's value"."""

    gpu: str | None = None
    gpu_count: int | None = None
    name: str | None = None
    image: str | None = None
    volume_gb: int | None = None
    disk_gb: int | None = None
    cloud: str | None = None
    datacenters: Sequence[str] = ()
    env: Sequence[str] = ()
    env_file: Path | None = None
    ports: str | None = None
    public_key: str | None = None
    volume: str | None = None  # network volume name or id
    registry_auth: str | None = None  # a RunPod registry credential id
    no_registry_auth: bool = False
    secrets: Sequence[str] = ()  # NAME or VAR=NAME: env VAR from RunPod secret NAME
    allow_plain_secret: bool = False  # send token-looking env values anyway
    idle_stop: str | None = None  # "45m", "off"
    idle_stop_requires_save: bool = False  # False: the spec's pod.idle_stop_requires_save
    save_every: str | None = None  # "15m", "off": continuous save (else save.toml's [save] every)

    def check(self) -> None:
        """The flags' own values, before anything is asked of RunPod: an empty string is
        never "not given" (``--gpu ""`` would land on the default GPU)."""
        for flag, value in (("--gpu", self.gpu), ("--cloud", self.cloud), ("--ports", self.ports),
                            ("--idle-stop", self.idle_stop), ("--save-every", self.save_every),
                            ("--volume", self.volume), ("--registry-auth", self.registry_auth)):
            if value is not None:
                checks.non_empty(value, flag)
        for item in self.datacenters:
            checks.non_empty(item, "--datacenter")
        if self.name is not None:
            checks.pod_name(self.name)
        if self.image is not None:
            checks.image_reference(self.image)

    def pod_keys(self) -> dict[str, Any]:
        """The flags that set a ``[pod]`` key, by key (None: not given)."""
        datacenters = [d.strip() for item in self.datacenters for d in item.split(",") if d.strip()]
        gpu, gpu_count = (checks.gpu_with_count(self.gpu, self.gpu_count) if self.gpu is not None
                          else (None, self.gpu_count))
        return {"gpu": gpu, "gpu_count": gpu_count, "volume_gb": self.volume_gb,
                "disk_gb": self.disk_gb, "cloud": self.cloud.strip().lower() if self.cloud else None,
                "datacenter": datacenters or None, "volume": self.volume,
                "ports": _ports(self.ports) if self.ports is not None else None,
                "idle_stop": self.idle_stop, "idle_stop_requires_save": self.idle_stop_requires_save or None,
                "save_every": self.save_every}


def plan_create(
    loaded, client, flags: CreateFlags, ssh_dir: Path | None = None
) -> tuple[CreateOptions, list[str]]:
    """The validated options and notes worth telling the user (on stderr)."""
    spec = loaded.spec
    flags.check()
    # Every [pod] key in one place: the flags over the spec, checked by the spec's model.
    pod = pod_settings(spec.pod, flags.pod_keys())
    notes: list[str] = []
    gpu_count, volume_gb, disk_gb, cloud = pod.gpu_count, pod.volume_gb, pod.disk_gb, pod.cloud.upper()
    ports = list(pod.ports)
    _tcp_and_http_only(ports, "--ports" if flags.ports is not None else "[pod] ports")
    datacenters = list(pod.datacenter)
    if cloud == "COMMUNITY" and pod.volume:
        # Network volumes are Secure Cloud only (runpod/runpodctl#172): refused before
        # anything is asked of RunPod.
        which = "--volume" if flags.volume else "[pod] volume"
        raise SpecError(f"--cloud community: network volumes ({which}) are Secure Cloud only; "
                        f"use --cloud secure or drop {which}")

    given = {"[pod] env": dict(pod.env),
             "--env-file": podenv.read_env_file(flags.env_file) if flags.env_file else {},
             "--env": podenv.parse_env_flags(flags.env)}
    for where, values in given.items():
        checks.user_env(values, where, HOST_SET)
    env = podenv.merge(
        *given.values(),
        pod_host_env(spec.pod, pod, flags.idle_stop),
    )
    if not flags.allow_plain_secret:
        envsecrets.refuse_plain(env)
    env = podenv.merge(env, envsecrets.references(flags.secrets))
    project = Project(loaded)
    image_ref = flags.image or project.default_image()
    if len(env) > MAX_ENV:
        raise SpecError(f"--env/--env-file/--secret/[pod] env: RunPod allows at most {MAX_ENV} environment "
                        f"variables per pod, got {len(env)}; put the rest in a file on the volume")
    # The image's names for the provenance record, where RunPod's cap leaves room: the
    # user's own variables come first.
    image_vars = podenv.image_env(image_ref)
    if len(podenv.merge(env, image_vars)) <= MAX_ENV:
        env = podenv.merge(env, image_vars)
    else:
        notes.append(f"no room under RunPod's {MAX_ENV} variables for {', '.join(image_vars)}: "
                     "the pod's provenance record will not name its image")
    ssh_keys = _ssh_keys(client, flags, env, ssh_dir, notes)
    volume_id, datacenters = _network_volume(client, flags, pod.volume, datacenters, notes)

    floor = image.cuda_floor(image_ref, project.pushed_cuda(image_ref))
    if floor:
        notes.append(f"CUDA {floor} or newer required of the host (the image's CUDA version)")
    else:
        notes.append(f"no CUDA version known for {image_ref}: any host driver accepted")

    catalog = pricing.fetch_catalog(client, cloud, gpu_count, floor)
    gpu_ids = gpus.resolve_gpus(pod.gpu, catalog, gpu_count, cloud)
    gpu_ids = pricing.order_by_stock(gpu_ids, catalog)
    if volume_id:
        gpu_ids = _in_volume_datacenter(client, gpu_ids, catalog, datacenters[0], notes)
    notes.append(pricing.price_note(gpu_ids, catalog, gpu_count, cloud))
    notes.append(_what_it_keeps(pod, volume_id, env))
    registry = _registry(client, flags, image_ref, notes)
    name = flags.name or f"{spec.image.name.rsplit('/', 1)[-1]}-{secrets.token_hex(3)}"
    options = CreateOptions(
        name=name,
        image=image_ref,
        gpu_ids=gpu_ids,
        gpu_count=gpu_count,
        volume_gb=volume_gb,
        disk_gb=disk_gb,
        cloud=cloud,
        datacenters=datacenters,
        env=env,
        ports=ports,
        min_cuda=floor,
        network_volume=volume_id,
        registry=registry,
        ssh_keys=ssh_keys,
    )
    return options, notes


def _what_it_keeps(pod, volume_id: str | None, env: dict[str, str]) -> str:
    """The settings besides the GPU that cost money or end the pod, said before it is made."""
    volume = f"network volume {pod.volume}" if volume_id else f"volume {pod.volume_gb} GB"
    idle = env.get(idlestop.IDLE_STOP, idlestop.OFF)
    return (f"container disk {pod.disk_gb} GB (wiped at restart), {volume} at /workspace "
            f"(bills while stopped), idle stop: {idle}")


def _tcp_and_http_only(ports: list[str], field: str) -> None:
    # Docs, "Expose ports": HTTP through RunPod's proxy or TCP on a public port; no UDP.
    for port in ports:
        if not port.endswith(("/tcp", "/http")):
            raise SpecError(f"{field}: RunPod exposes tcp and http ports only, got {port}; "
                            "use PORT/tcp or PORT/http")


def _in_volume_datacenter(client, gpu_ids: list[str], catalog: list[dict], where: str,
                          notes: list[str]) -> list[str]:
    """The candidates the volume's data center offers, by its stock there (stock is per
    data center: a GPU plentiful elsewhere may have none where the volume is)."""
    levels = pricing.datacenter_stock(client, where)
    names = {g["id"]: g.get("name", g["id"]) for g in catalog}
    absent = [gpu for gpu in gpu_ids if gpu not in levels]
    kept = pricing.order_by_levels([gpu for gpu in gpu_ids if gpu in levels], levels)
    if not kept:
        offered = ", ".join(names.get(g, g) for g, level in levels.items() if level != "NONE") or "none now"
        raise SpecError(f"--gpu: the network volume is in {where}, which offers none of "
                        f"{', '.join(names.get(g, g) for g in gpu_ids)}; pick from what it has in stock "
                        f"({offered})")
    if absent:
        missing = ", ".join(names.get(g, g) for g in absent)
        notes.append(f"{where} (the volume's data center) has no {missing}: not tried")
    notes.append(f"stock in {where}: " + ", ".join(f"{names.get(g, g)} {levels[g].lower()}" for g in kept))
    return kept


def _ports(text: str) -> list[str]:
    ports = [p.strip() for p in text.split(",") if p.strip()]
    for port in ports:
        if not PORT.match(port):
            raise SpecError(f'--ports: expected ports like "22/tcp,8888/http", got {port!r}')
    return ports


def _ssh_keys(client, flags: CreateFlags, env: dict[str, str], ssh_dir: Path | None,
              notes: list[str]) -> list[str]:
    """Local keys to register on the account; RunPod then injects the account's keys.

    A PUBLIC_KEY set by --env/--env-file/[pod].env is the user's explicit choice:
    it is sent as is and replaces the account's keys on this pod.
    """
    if podenv.PUBLIC_KEY in env:
        notes.append("PUBLIC_KEY is set: the pod gets only those keys, not your account's")
        return []
    text = (podenv.read_public_key(flags.public_key) if flags.public_key
            else podenv.public_keys(ssh_dir or Path.home() / ".ssh"))
    if not text:
        # startSsh "does nothing" with no key registered (the spec's CreatePodRequest):
        # every login would be refused, so nothing is created.
        if not client.get("/account/ssh-keys").get("keys"):
            raise UserError("no SSH public key: none in ~/.ssh/*.pub, no --public-key and none on your "
                            "RunPod account, so no login to the pod would work; make one with "
                            "`ssh-keygen -t ed25519` (or pass --public-key FILE) and run pod create again",
                            exit_code=2)
        notes.append("no ~/.ssh/*.pub found: the pod gets the SSH keys registered with your RunPod account")
        return []
    return [line.strip() for line in text.splitlines() if line.strip()]


def _network_volume(client, flags: CreateFlags, spec_volume: str | None,
                    datacenters: list[str], notes: list[str]) -> tuple[str | None, list[str]]:
    """The volume's id and the data center the pod must be in (the volume's)."""
    from imagebuild.runpod.volumes import find_volume

    ref = flags.volume or spec_volume
    if not ref:
        return None, datacenters
    if flags.volume_gb is not None:
        raise SpecError("--volume-gb: a pod on a network volume (--volume) has no volume of its own; "
                        "drop one of the two")
    try:
        volume = find_volume(client, ref)
    except UserError as error:  # a name that is not there is bad input, not a failed call
        if isinstance(error, RunPodError):
            raise
        raise SpecError(f"{'--volume' if flags.volume else '[pod] volume'}: {error}") from None
    where = volume["dataCenter"]
    if datacenters and where not in datacenters:
        raise SpecError(f"--datacenter: network volume {volume['name']} is in {where}, so the pod must "
                        f"be too; drop --datacenter or pick {where}")
    notes.append(f"/workspace on network volume {volume['name']} ({volume['id']}, {volume['size']} GB) "
                 f"in {where}")
    return volume["id"], [where]


def _registry(client, flags: CreateFlags, image_ref: str, notes: list[str]) -> str | None:
    from imagebuild.runpod import registries

    if flags.no_registry_auth:
        if flags.registry_auth:
            raise SpecError("--registry-auth and --no-registry-auth: pick one")
        return None
    if flags.registry_auth:
        registries.check_given(client, flags.registry_auth)
        return flags.registry_auth
    credential, note = registries.ensure(client, image_ref)
    notes.append(note)
    return credential
