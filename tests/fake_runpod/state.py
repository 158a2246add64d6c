"""The fake's RunPod: pods, their state machine, the GPU catalog, injected faults.

Statuses advance lazily on each read, from timestamps: PROVISIONING for
``provisioning_s``, STARTING for ``starting_s``, then RUNNING. No background
thread, so a test's timing is the only clock that matters.
"""

from __future__ import annotations

import fnmatch
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from fake_runpod import catalog
from fake_runpod.account import Account
from fake_runpod.backends import BannerBackend, PodBackend
from fake_runpod.gateway import Gateway
from fake_runpod.replies import Reply, problem

# RunPod's words when no host can take the request (README of shared/runpod).
CAPACITY_TEXT = (
    "There are no longer any instances available with the requested specifications. "
    "Please refresh and try again."
)
ACTIONS = {
    "PROVISIONING": ["stop", "terminate"],
    "STARTING": ["stop", "terminate"],
    "RUNNING": ["stop", "restart", "terminate"],
    "EXITED": ["start", "terminate"],
    "ERROR": ["start", "terminate"],
}
@dataclass
class Fault:
    """An injected failure. ``times`` counts down; ``math.inf`` means always."""

    kind: str
    times: float = 1
    method: str | None = None
    path: str | None = None  # request path or a glob, e.g. "/v2/pods" or "/v2/pods/*"
    params: dict[str, Any] = field(default_factory=dict)

    def matches(self, method: str, path: str) -> bool:
        where = self.path is None or fnmatch.fnmatchcase(path, self.path)  # "/v2/pods/*" works
        return (self.method in (None, method)) and where and self.times > 0


FAULT_KINDS = {
    "rate_limit",  # 429 with Retry-After=params["retry_after"]
    "server_error",  # 500 problem
    "drop_after_create",  # create the pod, then close the connection unanswered
    # Create the pod, then answer 5xx (params["status"], default 500). RunPod's POST /pods
    # did this: it made the pod, failed its own read-back and answered 500 while the pod
    # billed (transformerlab/transformerlab-app#2305, "Recover RunPod pods when create-pod
    # returns a 5xx": "look the pod up by name ... retrying a few times to absorb listing lag").
    "error_after_create",
    # Create the pod, then hold the answer params["seconds"] and close unanswered: the
    # client's read timeout fires with the pod made.
    "timeout_after_create",
    "capacity",  # create: 400 with CAPACITY_TEXT (params["gpu_ids"]: only these)
    "start_capacity",  # start action: 400 with CAPACITY_TEXT
    "echo_key",  # 401 whose detail repeats the presented key (tests redaction)
    "slow_provisioning",  # new pods stay PROVISIONING for params["seconds"]
    "status",  # a problem with params["status"] (402, 403, 422, 503...); params["gpu_ids"]: only these
    # A 200 whose body is params["body"] (text, or JSON of another shape), off the spec. Users
    # of RunPod's APIs met an empty 200 body (runpod/runpod-python#36: "JSONDecodeError:
    # Expecting value: line 1 column 1") and bodies of another shape than documented
    # (runpod/runpod-python#26: "is not guaranteed to have an 'output' key").
    "off_contract",
}
TITLES = {400: "Bad Request", 402: "Payment Required", 403: "Forbidden", 404: "Not Found",
          409: "Conflict", 422: "Unprocessable Entity", 502: "Bad Gateway", 503: "Service Unavailable"}
# The statuses a pod is billed its GPU rate in. ERROR too: the spec's PodStatus calls it
# "an unrecoverable error state" whose only actions are start and terminate (podAction:
# "`EXITED` and `ERROR` allow `start`/`terminate`" - no stop), and the GPU stays
# reserved for the pod until it is terminated (issue 22: "a pod whose image pull fails
# goes to ERROR, which still bills and cannot be stopped, only terminated").
BILLING = ("PROVISIONING", "STARTING", "RUNNING", "ERROR")
# updatePod's fields that make the container (ContainerConfig): changing one resets a
# running pod. name, locked and globalNetworking do not.
RESETTING = {"image", "args", "disk", "ports", "env", "registry", "mounts"}
# Docs, "Environment variables": "You can configure up to 50 environment variables per Pod."
MAX_ENV = 50
# Docs, "Expose ports": a pod's ports are HTTP (through RunPod's proxy) or TCP (a public
# IP and port); there is no UDP.
PORT_KINDS = ("http", "tcp")


@dataclass
class FakePod:
    id: str
    request: dict
    status: str
    since: float  # clock time the current status began
    created_at: str
    host_cuda: str
    datacenter: str
    started_at: str | None = None
    running_since: float | None = None
    endpoint: tuple[str, int] | None = None
    logs: list[dict] = field(default_factory=list)  # {"ts", "source", "line"}
    gpu_util: int = 0  # what runtime.gpus reports for each GPU while RUNNING
    born: float = 0.0  # clock time it was created (listPods shows it listing_lag_s later)
    resets: int = 0  # how often an update recreated its running container


def _now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class RunPodState:
    def __init__(
        self,
        api_key: str,
        *,
        provisioning_s: float = 0.2,
        starting_s: float = 0.2,
        backend: PodBackend | None = None,
        gateway: Gateway | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.api_key = api_key
        self.provisioning_s = provisioning_s
        self.starting_s = starting_s
        self.backend = backend or BannerBackend()
        # RunPod's SSH gateway (fake_runpod.gateway): None leaves ssh.proxy pointing
        # at ssh.runpod.io, which nothing here reaches.
        self.gateway = gateway
        # Whether pods get a public IP. Docs (pods/configuration/use-ssh): every pod has
        # the proxy ("basic") SSH, "but not all Pods support the full public IP method";
        # issue 22: a community pod may have no public IP, so ssh.direct never appears.
        self.public_ip = True
        self.clock = clock
        self.pods: dict[str, FakePod] = {}
        self.faults: list[Fault] = []
        # Stock per (GPU id, cloud): NONE makes createPod answer with CAPACITY_TEXT.
        self.stock: dict[tuple[str, str], str] = catalog.default_stock()
        self.lock = threading.RLock()
        self.account = Account()
        self.ledger: list[tuple[str, str]] = []  # (pod id, status) in the order they happened
        self.log_hold_s = 0.5  # how long a log stream stays open for new lines after the backfill
        # Log streams that drop mid-way: each takes the next count and ends after that many
        # events (issue 22: "`pod logs -f` ends silently when the stream drops").
        self.log_drops: list[int] = []
        # A created pod shows in listPods only this long after the create (getPod by id
        # answers at once). RunPod lists a new pod "only seconds later" (transformerlab
        # #2305 above; peters/horizon#372: "a newly created pod may remain unreadable
        # during control-plane propagation").
        self.listing_lag_s = 0.0
        # Image pulls that fail: an image glob -> the reason the pull log gives. A pod whose
        # pull fails goes to ERROR (dstack#1297: "The pod fails to pull the referenced image
        # with pull access denied"; dstack#2507: "error pulling image ... no basic auth
        # credentials").
        self.pull_failures: dict[str, str] = {}
        # Images whose layers are zstd (globs), and whether the hosts' engines pull them.
        # Docker Engine before 23.0 downloads a zstd layer, then fails to unpack it:
        # "failed to register layer: Error processing tar file(exit status 1): archive/tar:
        # invalid tar header" (stalwartlabs/stalwart#1192 "The docker image uses zstd
        # compress, maybe ... your docker version is too old"; 11notes/docker-kms#17 on Engine
        # 20.10.23; blakeblackshear/frigate#7308 "not compatible with docker prior to 23.0").
        # RunPod documents no engine version for its hosts, so both kinds are modelled.
        self.zstd_images: list[str] = []
        self.hosts_pull_zstd = False
        # A private registry: host -> (username, password) it accepts now. A pod whose
        # image is there pulls only with a registry credential holding exactly these.
        self.registry_logins: dict[str, tuple[str, str]] = {}
        # Stock per data center: (data center id, GPU id) -> level; a GPU a data center
        # does not offer is absent. createPod places a pod only where its GPU is in stock
        # (listDataCenters: "include=GPU_AVAILABILITY for stock per data center").
        self.dc_stock: dict[tuple[str, str], str] = catalog.default_dc_stock()
        # Scripted answers for one route, taken in order: (method, path glob, [kind, ...]);
        # a kind is a FAULT_KINDS entry or "ok" (answer normally).
        self.scripts: list[tuple[str, str, list[str]]] = []

    # -- faults ------------------------------------------------------------------

    def inject(self, kind: str, *, times: float = 1, method: str | None = None,
               path: str | None = None, **params: Any) -> Fault:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {sorted(FAULT_KINDS)}")
        fault = Fault(kind, times, method, path, params)
        if kind == "slow_provisioning":  # a setting rather than a one-off answer
            self.provisioning_s = float(params.get("seconds", 60))
            return fault
        with self.lock:
            self.faults.append(fault)
        return fault

    def script(self, method: str, path: str, kinds: list[str]) -> None:
        """The next answers to ``method path``, in order (then normal answers)."""
        unknown = set(kinds) - FAULT_KINDS - {"ok"}
        if unknown:
            raise ValueError(f"unknown steps {sorted(unknown)}")
        with self.lock:
            self.scripts.append((method, path, list(kinds)))

    def _step(self, method: str, path: str) -> str | None:
        for want, glob, kinds in self.scripts:
            if want == method and fnmatch.fnmatchcase(path, glob) and kinds:
                return kinds.pop(0)
        return None

    def _take(self, kind: str, method: str, path: str, when: Callable[[Fault], bool] = lambda f: True):
        for fault in self.faults:
            if fault.kind == kind and fault.matches(method, path) and when(fault):
                fault.times -= 1
                return fault
        return None

    # -- dispatch ----------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, list[str]], auth: str, body: Any,
               headers: dict[str, str] | None = None) -> Reply:
        with self.lock:
            if self._take("echo_key", method, path):
                return problem(401, "Unauthorized", f"invalid api key {auth.removeprefix('Bearer ')}")
            if auth != f"Bearer {self.api_key}":
                return problem(401, "Unauthorized", "invalid api key")
            step = self._step(method, path)
            fault = self._take("rate_limit", method, path) if step is None else None
            if fault or step == "rate_limit":
                wait = int(fault.params.get("retry_after", 1)) if fault else 1
                reply = problem(429, "Too Many Requests", "rate limit exceeded for the minute window")
                reply.headers.update({
                    "Retry-After": str(wait),
                    "RateLimit": f'"minute";r=0;t={wait}',
                    "RateLimit-Policy": '"minute";q=60;w=60',
                })
                return reply
            if step == "server_error" or (step is None and self._take("server_error", method, path)):
                return problem(500, "Internal Server Error", "upstream failure, please retry")
            fault = None if (method, path) == ("POST", "/v2/pods") else self._take("off_contract", method, path)
            if fault:  # a create does its work first (see create)
                return _off_contract(fault)
            gpu_id = ((body or {}).get("gpu") or {}).get("id") if isinstance(body, dict) else None
            fault = self._take("status", method, path,
                               lambda f: gpu_id in f.params.get("gpu_ids", [gpu_id]))
            if fault:
                status = int(fault.params["status"])
                detail = fault.params.get("detail", f"injected {status}")
                return problem(status, TITLES.get(status, "Error"), detail)
            return self._route(method, path, query, body, step, headers or {})

    def _route(self, method: str, path: str, query: dict[str, list[str]], body: Any,
               step: str | None = None, headers: dict[str, str] | None = None) -> Reply:
        parts = path.strip("/").split("/")  # ["v2", "pods", ...]
        if parts[:2] == ["v2", "pods"]:
            if len(parts) == 2:
                return self.list_pods() if method == "GET" else self.create(body, method, path, step)
            pod_id = parts[2]
            if len(parts) == 4 and parts[3] == "action" and method == "POST":
                return self.action(pod_id, body.get("action"), method, path)
            if len(parts) == 3 and method == "GET":
                return self.get(pod_id)
            if len(parts) == 3 and method == "DELETE":
                return self.terminate(pod_id)
            if len(parts) == 3 and method == "PATCH":
                return self.update(pod_id, body)
            if len(parts) == 4 and parts[3] == "logs" and method == "GET":
                return self.logs(pod_id, query, (headers or {}).get("last-event-id"))
        reply = self.account.route(method, parts, body)
        if reply is not None:
            return reply
        if parts == ["v2", "catalog", "datacenters"] and method == "GET":
            return self.list_datacenters(query)
        if parts[:3] == ["v2", "catalog", "gpus"]:
            gpus = catalog.gpu_types()
            if len(parts) == 3:
                return self.list_gpus(gpus, query)
            match = [g for g in gpus if g["id"] == parts[3]]
            return Reply(200, match[0]) if match else problem(404, "Not Found", "gpu type not found")
        return problem(404, "Not Found", f"the fake RunPod does not implement {method} {path}")

    def list_gpus(self, gpus: list[dict], query: dict[str, list[str]]) -> Reply:
        """listGpuTypes with the rules its parameter descriptions state (400s)."""
        one = {name: values[-1] for name, values in query.items()}
        if "AVAILABILITY" not in one.get("include", ""):
            scoped = sorted(set(one) & {"product", "count", "cloud", "cudaVersions", "minCudaVersion"})
            if scoped:
                return problem(400, "Bad Request", f"{', '.join(scoped)} valid only with include=AVAILABILITY")
            return Reply(200, {"gpus": gpus})
        if "product" not in one:
            return problem(400, "Bad Request", "include=AVAILABILITY requires product")
        if "cudaVersions" in one and "minCudaVersion" in one:
            return problem(400, "Bad Request", "cudaVersions and minCudaVersion are mutually exclusive")
        count, cloud = int(one.get("count", 1)), one.get("cloud", "SECURE")
        result = []
        for gpu in gpus:
            level = self.stock.get((gpu["id"], cloud), "NONE")
            if count > gpu["maxCount"][cloud.lower()] or not gpu[cloud.lower()]:
                level = "NONE"
            result.append(catalog.with_availability(gpu, level, one.get("minCudaVersion")))
        return Reply(200, {"gpus": result})

    def list_datacenters(self, query: dict[str, list[str]]) -> Reply:
        """listDataCenters; with include=GPU_AVAILABILITY each one's GPUs and stock."""
        with_gpus = "GPU_AVAILABILITY" in ",".join(query.get("include", []))
        names = {g["id"]: g["name"] for g in catalog.gpu_types()}
        result = []
        for dc in catalog.DATACENTERS:
            entry = {"id": dc, "name": catalog.DATACENTER_NAMES[dc], "region": catalog.REGIONS[dc],
                     "globalNetwork": False, "networkVolumeTypes": ["STANDARD"], "compliance": []}
            offered = [(gpu, level) for (where, gpu), level in sorted(self.dc_stock.items()) if where == dc]
            if with_gpus and offered:
                entry["gpuAvailability"] = [{"id": gpu, "name": names[gpu], "availability": level}
                                            for gpu, level in offered]
            result.append(entry)
        return Reply(200, {"dataCenters": result})

    # -- pods --------------------------------------------------------------------

    def list_pods(self) -> Reply:
        now = self.clock()
        listed = [pod for pod in self.pods.values() if now - pod.born >= self.listing_lag_s]
        return Reply(200, {"pods": [self.view(pod) for pod in listed]})

    def get(self, pod_id: str) -> Reply:
        pod = self.pods.get(pod_id)
        return Reply(200, self.view(pod)) if pod else problem(404, "Not Found", "pod not found")

    def create(self, body: dict, method: str, path: str, step: str | None = None) -> Reply:
        gpu = body.get("gpu")
        if not gpu or body.get("cpu"):
            return problem(400, "Bad Request", "exactly one of gpu or cpu must be set (this fake has GPU pods only)")
        gpu_id, count = gpu["id"], gpu.get("count", 1)
        known = {g["id"]: g for g in catalog.gpu_types()}
        if gpu_id not in known:
            return problem(400, "Bad Request", f"unknown GPU type {gpu_id!r}")
        cloud = body.get("cloud", "SECURE")
        if count > known[gpu_id]["maxCount"][cloud.lower()]:
            return problem(400, "Bad Request", f"at most {known[gpu_id]['maxCount'][cloud.lower()]} GPUs per pod")
        if gpu.get("allowedCudaVersions") and gpu.get("minCudaVersion"):
            return problem(400, "Bad Request", "allowedCudaVersions and minCudaVersion are mutually exclusive")
        refused = self._create_rules(body)
        if refused:
            return refused
        if self.stock.get((gpu_id, cloud)) == "NONE" or self._take(
            "capacity", method, path, lambda f: gpu_id in f.params.get("gpu_ids", [gpu_id])
        ):
            return problem(400, "Bad Request", CAPACITY_TEXT)
        host_cuda = self._place(gpu_id, gpu)
        if host_cuda is None:
            return problem(400, "Bad Request", CAPACITY_TEXT)
        datacenter = self._datacenter(body)
        if self.dc_stock.get((datacenter, gpu_id), "NONE") == "NONE":
            # Stock is per data center: a pod pinned to one (its network volume's, or
            # dataCenterIds) is placed only if that data center has the GPU free.
            return problem(400, "Bad Request", CAPACITY_TEXT)
        pod = FakePod(
            id=_pod_id(),
            request=body,
            status="PROVISIONING",
            since=self.clock(),
            created_at=_now_iso(),
            host_cuda=host_cuda,
            datacenter=datacenter,
            born=self.clock(),
        )
        keys = self.account.ssh_keys
        if body.get("startSsh") and keys and "PUBLIC_KEY" not in body.get("env", {}):
            # What RunPod does: the account's keys, unless the request set its own.
            pod.request = {**body, "env": {**body.get("env", {}), "PUBLIC_KEY": "\n".join(keys)}}
        self.pods[pod.id] = pod
        self.ledger.append((pod.id, pod.status))
        self.log(pod, "system", f"pulling image {body.get('image', '')}")
        if step == "drop_after_create" or (step is None and self._take("drop_after_create", method, path)):
            return Reply(0, drop=True)
        fault = self._take("error_after_create", method, path) if step is None else None
        if fault or step == "error_after_create":
            status = int(fault.params.get("status", 500)) if fault else 500
            return problem(status, TITLES.get(status, "Internal Server Error"), "upstream failure, please retry")
        fault = self._take("timeout_after_create", method, path) if step is None else None
        if fault or step == "timeout_after_create":
            return Reply(0, drop=True, delay=float(fault.params.get("seconds", 5)) if fault else 5.0)
        fault = self._take("off_contract", method, path) if step is None else None
        if fault:
            return _off_contract(fault)
        return Reply(201, self.view(pod))

    def _create_rules(self, body: dict) -> Reply | None:
        """The cross-field rules RunPod answers with 400."""
        mounts = body.get("mounts") or {}
        if mounts.get("persistent") and mounts.get("network"):
            return problem(400, "Bad Request", "mounts.persistent and mounts.network are mutually exclusive")
        for mount in mounts.get("network") or []:
            volume = self.account.volumes.get(mount["volumeId"])
            if volume is None:
                return problem(400, "Bad Request", f"network volume {mount['volumeId']} not found")
            if body.get("dataCenterIds") and volume["dataCenter"] not in body["dataCenterIds"]:
                return problem(400, "Bad Request", "the network volume is in another data center")
        if body.get("registry") and body["registry"] not in self.account.registries:
            return problem(400, "Bad Request", f"registry credential {body['registry']} not found")
        if mounts.get("network") and body.get("cloud") == "COMMUNITY":
            # Network volumes are Secure Cloud only: runpod/runpodctl#172 ("There is a note that
            # says network volumes are only available in secure cloud"); the docs' storage page
            # calls them "a detachable hard drive for secure pods".
            return problem(400, "Bad Request", "network volumes are available on Secure Cloud only")
        if len(body.get("env") or {}) > MAX_ENV:
            return problem(400, "Bad Request", f"at most {MAX_ENV} environment variables per pod")
        for port in body.get("ports") or []:
            if port.rpartition("/")[2] not in PORT_KINDS:
                return problem(400, "Bad Request", f"port {port}: expected PORT/http or PORT/tcp")
        return None

    def _datacenter(self, body: dict) -> str:
        """A pod on a network volume runs where the volume is."""
        for mount in (body.get("mounts") or {}).get("network") or []:
            return self.account.volumes[mount["volumeId"]]["dataCenter"]
        return (body.get("dataCenterIds") or ["US-KS-2"])[0]

    def update(self, pod_id: str, body: dict) -> Reply:
        pod = self.pods.get(pod_id)
        if pod is None:
            return problem(404, "Not Found", "pod not found")
        if "registry" in body and body["registry"] and body["registry"] not in self.account.registries:
            return problem(400, "Bad Request", f"registry credential {body['registry']} not found")
        pod.request = {**pod.request, **body}
        self._advance(pod)
        if pod.status == "RUNNING" and RESETTING & set(body):
            # Docs, "Update a Pod" (docs.runpod.io/api-reference/pods/PATCH/pods/podId):
            # "Update a Pod, potentially triggering a reset"; updatePod: "Some changes
            # apply immediately". A container setting changed on a running pod recreates
            # its container at once: the running job and everything outside the volume
            # are gone. A stopped pod stays stopped and starts with the change.
            self._set(pod, "STARTING")
            self.backend.reset(pod_id)
            pod.resets += 1
            self.log(pod, "system", "pod reset: recreating the container with the new settings")
        return Reply(200, self.view(pod))

    def log(self, pod: FakePod, source: str, line: str) -> None:
        # Each event's SSE id is its ts (getPodLogs: "Log-event `id` values are the event
        # `ts` timestamp so ... reconnects can resume with `Last-Event-ID`"): microseconds,
        # strictly increasing, so a resume point names exactly one event.
        ts = datetime.now(timezone.utc)
        if pod.logs:
            last = datetime.fromisoformat(pod.logs[-1]["ts"].replace("Z", "+00:00"))
            ts = max(ts, last + timedelta(microseconds=1))
        pod.logs.append({"ts": ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "source": source, "line": line})

    def logs(self, pod_id: str, query: dict[str, list[str]], last_event_id: str | None = None) -> Reply:
        """getPodLogs: the backfill (``tail``, or everything after ``Last-Event-ID`` /
        ``since``), then new lines for ``log_hold_s``, then the stream ends - a drop, to
        a client. ``log_drops``: the next streams end after that many events."""
        pod = self.pods.get(pod_id)
        if pod is None:
            return problem(404, "Not Found", "pod not found")
        cursor = last_event_id or query.get("since", [None])[-1]
        if cursor:
            start = next((i for i, e in enumerate(pod.logs) if e["ts"] > cursor), len(pod.logs))
        else:
            tail = int(query.get("tail", ["100"])[-1])
            start = max(0, len(pod.logs) - tail) if tail else len(pod.logs)
        budget = self.log_drops.pop(0) if self.log_drops else None
        first = pod.logs[start:start + budget] if budget is not None else pod.logs[start:]
        body = "".join(_event(e) for e in first)
        sent = start + len(first)

        def more():
            if budget is not None:
                return  # dropped mid-way: the connection closes here
            deadline = time.monotonic() + self.log_hold_s
            done = sent
            while time.monotonic() < deadline:
                with self.lock:
                    new = pod.logs[done:]
                done += len(new)
                for event in new:
                    yield _event(event).encode("utf-8")
                time.sleep(0.05)

        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return Reply(200, body, headers=headers, media="text/event-stream", more=more)

    def billing(self) -> list[str]:
        """Ids of the pods whose GPU is billed now (what must not be left behind)."""
        with self.lock:
            for pod in self.pods.values():
                self._advance(pod)
            return [pod.id for pod in self.pods.values() if pod.status in BILLING]

    def _place(self, gpu_id: str, gpu: dict) -> str | None:
        """The CUDA version of a host satisfying the request (the oldest that does)."""
        versions = sorted(catalog.host_cuda_versions(gpu_id), key=catalog.cuda_key)
        if gpu.get("allowedCudaVersions"):
            versions = [v for v in versions if v in gpu["allowedCudaVersions"]]
        if gpu.get("minCudaVersion"):
            floor = catalog.cuda_key(gpu["minCudaVersion"])
            versions = [v for v in versions if catalog.cuda_key(v) >= floor]
        return versions[0] if versions else None

    def action(self, pod_id: str, action: str, method: str, path: str) -> Reply:
        pod = self.pods.get(pod_id)
        if pod is None:
            return problem(404, "Not Found", "pod not found")
        self._advance(pod)
        if action not in ACTIONS[pod.status]:
            return problem(409, "Conflict", f"cannot {action} a pod that is {pod.status}")
        if action == "terminate":
            return self.terminate(pod_id)
        if action == "stop":
            self._set(pod, "EXITED")
        elif action == "start":
            if self._take("start_capacity", method, path):
                return problem(400, "Bad Request", CAPACITY_TEXT)
            self._set(pod, "STARTING")
        elif action == "restart":
            self._set(pod, "STARTING")
        return Reply(200, self.view(pod))

    def terminate(self, pod_id: str) -> Reply:
        pod = self.pods.pop(pod_id, None)
        if pod is None:
            return problem(404, "Not Found", "pod not found")
        if self.gateway:
            self.gateway.shut(proxy_user(pod_id))
        self.backend.remove(pod_id)
        self.ledger.append((pod_id, "TERMINATED"))
        return Reply(204)

    # -- state machine -----------------------------------------------------------

    def _set(self, pod: FakePod, status: str, since: float | None = None) -> None:
        if pod.status == "RUNNING" and status != "RUNNING":
            if self.gateway:
                self.gateway.shut(proxy_user(pod.id))
            self.backend.stop(pod.id)
            pod.endpoint = None
            pod.running_since = None
        pod.status = status
        pod.since = self.clock() if since is None else since
        self.ledger.append((pod.id, status))
        if status == "RUNNING":
            request = pod.request
            pod.endpoint = self.backend.start(pod.id, request.get("image", ""), dict(request.get("env", {})))
            if self.gateway:
                # The gateway lets in the keys the pod was given (the account's, or PUBLIC_KEY).
                keys = str(request.get("env", {}).get("PUBLIC_KEY", "")).splitlines()
                self.gateway.open(proxy_user(pod.id), self.backend.shell(pod.id), keys)
            pod.running_since = pod.since
            pod.started_at = _now_iso()
            self.log(pod, "container", "container started")

    def _advance(self, pod: FakePod) -> None:
        now = self.clock()
        if pod.status == "PROVISIONING" and now - pod.since >= self.provisioning_s:
            self._set(pod, "STARTING", pod.since + self.provisioning_s)
        if pod.status == "STARTING" and now - pod.since >= self.starting_s:
            failure = self._pull_failure(pod)
            if failure:
                # The pull fails and the pod goes to ERROR: it keeps billing, and only
                # start (which pulls again) and terminate are allowed.
                self.log(pod, "system", f"error pulling image: {failure}")
                self.log(pod, "system", "error creating container: No such image")
                self._set(pod, "ERROR", pod.since + self.starting_s)
                return
            self._set(pod, "RUNNING", pod.since + self.starting_s)

    def _pull_failure(self, pod: FakePod) -> str | None:
        image = pod.request.get("image", "")
        for glob, reason in self.pull_failures.items():
            if fnmatch.fnmatchcase(image, glob):
                return reason
        if not self.hosts_pull_zstd and any(fnmatch.fnmatchcase(image, glob) for glob in self.zstd_images):
            return ("failed to register layer: Error processing tar file(exit status 1): archive/tar: "
                    "invalid tar header")
        host = image.split("/", 1)[0] if "/" in image and any(c in image.split("/", 1)[0] for c in ".:") \
            else "docker.io"
        wanted = self.registry_logins.get(host)
        if wanted is None:
            return None
        stored = self.account.registries.get(pod.request.get("registry") or "")
        if stored is None:
            return f"Head \"https://{host}/v2/...\": no basic auth credentials"
        if (stored["username"], stored["password"]) != wanted:
            return f"Head \"https://{host}/v2/...\": unauthorized: authentication required"
        return None

    def view(self, pod: FakePod) -> dict:
        """The pod as RunPod's Pod schema describes it."""
        self._advance(pod)
        request = pod.request
        gpu = request["gpu"]
        price = next(g for g in catalog.gpu_types() if g["id"] == gpu["id"])["price"]
        cloud = request.get("cloud", "SECURE")
        ports = request.get("ports", [])
        placed = pod.status != "PROVISIONING"
        running = pod.status == "RUNNING"
        direct = None
        runtime = None
        if running:
            runtime = {"uptime": int(self.clock() - pod.running_since), "ports": [],
                       "gpus": [{"util": pod.gpu_util, "memoryUtil": 0}] * gpu.get("count", 1)}
            if pod.endpoint and "22/tcp" in ports and self.public_ip:
                host, port = pod.endpoint
                direct = {"host": host, "port": port, "username": "root", "command": f"ssh root@{host} -p {port}"}
                runtime["ports"].append({"private": 22, "public": port, "type": "tcp", "ip": host})
            elif "22/tcp" in ports and not self.public_ip:
                # Mapped inside RunPod only: no public IP, no public port.
                runtime["ports"].append({"private": 22, "public": None, "type": "tcp", "ip": None})
        user = proxy_user(pod.id)
        gateway = (self.gateway.host, self.gateway.port) if self.gateway else ("ssh.runpod.io", 22)
        return {
            "id": pod.id,
            "name": request["name"],
            "image": request.get("image", ""),
            "args": request.get("args", ""),
            "disk": request.get("disk", 50),
            "ports": ports,
            "env": request.get("env", {}),
            "registry": request.get("registry"),
            "status": pod.status,
            "actions": ACTIONS[pod.status],
            "mounts": request.get("mounts", {}),
            "gpu": {"id": gpu["id"], "count": gpu.get("count", 1)},
            "cloud": cloud,
            "dataCenterId": pod.datacenter if placed else None,
            "cudaVersion": pod.host_cuda if placed else None,
            "ssh": {
                "proxy": {
                    "host": gateway[0],
                    "port": gateway[1],
                    "username": user,
                    "command": f"ssh {user}@{gateway[0]}" + (f" -p {gateway[1]}" if gateway[1] != 22 else ""),
                } if placed else None,
                "direct": direct,
            },
            "template": None,
            "cost": round(price[cloud.lower()] * gpu.get("count", 1), 4) if pod.status != "EXITED" else 0.0,
            "locked": False,
            "globalNetworking": {"enabled": False},
            "runtime": runtime,
            "createdAt": pod.created_at,
            "startedAt": pod.started_at,
        }


def _off_contract(fault: Fault) -> Reply:
    return Reply(200, fault.params.get("body", ""), media="application/json", off_contract=True)


def proxy_user(pod_id: str) -> str:
    """The pod's login on the gateway (ssh.proxy.username: the pod id and a hash)."""
    return f"{pod_id}-64411eb2"


def _pod_id() -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(14))



def _event(event: dict) -> str:
    return f"id: {event['ts']}\ndata: {json.dumps(event)}\n\n"
