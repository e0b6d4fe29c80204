"""The container for real: build the image, run a small sweep in it, run the compose stack.

Slow (CI runs it with ``pytest -m slow``): about 12 min from a cold cache on a busy 2-core machine
(load 6-13), 4.5 min on a quieter one (load 1-3), 70 s warm. Needs root on Debian: podman, runc,
catatonit and debootstrap are installed with apt-get if missing (the test is skipped, saying so,
only if they are missing and cannot be installed); podman-compose comes from requirements.txt.
Steps:

1. A Python 3.11 base image made from Debian packages (``docker/debian-base.sh``: no registry is
   needed), then the project image from ``docker/Dockerfile`` with its build arguments, using the
   package sources of this machine's pip (``pip config list``: index, extra https indexes, the
   local wheel folder with the CPU torch wheel, the certificate bundle).
2. ``launch static`` and ``launch sweep static-grid --budget small`` in containers without
   network, results on a mounted folder; ``launch report`` on them from the host; the numbers
   equal those of the same commands run on the host.
3. ``docker/compose.yaml`` with podman-compose (pinned in requirements.txt), its services in one
   pod: Ray head, worker and TensorBoard; ports published on 127.0.0.1 only, nothing else
   listening beyond loopback in the shared network namespace, token auth on; ``podman-compose run
   sweep`` submits a small sweep as a job whose trials run on both nodes; TensorBoard answers on
   127.0.0.1 and shows the trials; ``podman-compose down`` removes the pod and its containers.

Podman keeps its images in ``$METALORE_CONTAINER_CACHE`` (default ``~/.cache/metalore/container``;
its own storage, settings in ``containers.conf`` and ``storage.conf`` there), so later runs reuse
the base image and the build's layers; delete the folder for a cold run. Every pod and container
the test starts is removed at the end. Phase times are printed (``-s`` shows them).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shlex
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.helpers.system import need_debian_packages
from tune_configs.ops.barrier import Barrier

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
IMAGE = f"localhost/metalore:{VERSION}"
BASE_IMAGE = "localhost/metalore-base:bookworm"
PACKAGES = ("podman", "runc", "catatonit", "debootstrap")
CONTAINER_UID = 1000  # the image's default user
PYPI = "https://pypi.org/simple"

pytestmark = [pytest.mark.slow, pytest.mark.ray, pytest.mark.timeout(3600)]

# Columns of results.csv that name a run rather than measure it (paths, trial ids, times).
RUN_IDENTITY = {
    "point",
    "source",
    "command",
    "git_commit",
    "created",
    "run_elapsed_s",
    "trial_id",
    "run_trial_name",
    "checkpoint",
    "run_experiment",
}


# --------------------------------------------------------------------------------------------
# Engine setup


def cache_dir() -> Path:
    env = os.environ.get("METALORE_CONTAINER_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "metalore" / "container"


def install_tools() -> None:
    """podman & co. from Debian's packages, or skip with the reason."""
    need_debian_packages(PACKAGES)


def engine_env(cache: Path) -> dict[str, str]:
    """Podman settings of the test: its own storage in ``cache``; runc, no default ulimits and
    cgroupfs (crun's setrlimit is refused on these machines and systemd is not running)."""
    cache.mkdir(parents=True, exist_ok=True)
    conf = cache / "containers.conf"
    conf.write_text(
        "[containers]\ndefault_ulimits = []\n\n"
        '[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\n'
    )
    storage = cache / "storage.conf"
    run = hashlib.sha256(str(cache.resolve()).encode()).hexdigest()[:12]  # one per cache
    storage.write_text(
        '[storage]\ndriver = "overlay"\n'
        f'graphroot = "{cache / "storage"}"\n'
        f'runroot = "/run/metalore-container/{run}"\n'
    )
    return {**os.environ, "CONTAINERS_CONF": str(conf), "CONTAINERS_STORAGE_CONF": str(storage)}


def pip_sources() -> dict[str, str]:
    """This machine's pip settings (``pip config list``, later entries win): key -> value."""
    r = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True
    )
    out: dict[str, str] = {}
    for line in r.stdout.splitlines():
        key, _, value = line.partition("=")
        out[key.split(".", 1)[-1]] = value.strip().strip("'\"")
    return out


def build_args(pip: dict[str, str]) -> list[str]:
    """The Dockerfile's build arguments that give the build the same sources as the host's pip."""
    index = pip.get("index-url", "")
    args = ["--build-arg", f"BASE_IMAGE={BASE_IMAGE}"]
    if index:
        args += ["--build-arg", f"PIP_INDEX_URL={index}"]
    # The CPU torch wheel comes from the local wheel folder (the PyTorch index is not reachable
    # here); torch's own dependencies come from the regular index.
    args += ["--build-arg", f"TORCH_INDEX_URL={index or PYPI}"]
    # file:// indexes are folders of this host, invisible to the build: only remote ones count.
    extra = [u for u in pip.get("extra-index-url", "").split() if u.startswith("http")]
    if extra:
        args += ["--build-arg", f"PIP_EXTRA_INDEX_URL={' '.join(extra)}"]
    if pip.get("trusted-host"):
        args += ["--build-arg", f"PIP_TRUSTED_HOST={pip['trusted-host']}"]
    folders = [Path(f) for f in pip.get("find-links", "").split() if Path(f).is_dir()]
    folders.sort(key=lambda f: not any(f.glob("torch-*.whl")))
    if folders:
        args += ["--build-context", f"wheels={folders[0]}"]
    cert = pip.get("cert") or os.environ.get("PIP_CERT", "")
    if cert and Path(cert).is_file():
        args += ["--secret", f"id=pip_cert,src={cert}"]
    return args


@dataclass
class Engine:
    env: dict[str, str]
    cache: Path
    times: dict[str, float] = field(default_factory=dict)

    def podman(self, *argv: str, timeout: float = 1800, check: bool = True) -> str:
        r = subprocess.run(
            ["podman", *argv], env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check and r.returncode != 0:
            raise AssertionError(
                f"podman {shlex.join(argv)} failed ({r.returncode}):\n{r.stdout[-3000:]}\n"
                f"{r.stderr[-3000:]}"
            )
        return r.stdout

    def exists(self, kind: str, name: str) -> bool:
        r = subprocess.run(["podman", kind, "exists", name], env=self.env, capture_output=True)
        return r.returncode == 0

    def timed(self, label: str, *argv: str, timeout: float = 1800) -> str:
        start = time.monotonic()
        out = self.podman(*argv, timeout=timeout)
        self.times[label] = time.monotonic() - start
        return out


def report_times(label: str, times: dict[str, float]) -> None:
    load = os.getloadavg()
    parts = ", ".join(f"{k} {v:.0f} s" for k, v in times.items())
    print(f"\n[{label}] {parts} (load {load[0]:.1f} {load[1]:.1f} {load[2]:.1f})")


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    start = time.monotonic()
    install_tools()
    if os.geteuid() != 0:
        pytest.skip("the container test runs rootful podman (root needed)")
    cache = cache_dir()
    eng = Engine(engine_env(cache), cache)
    eng.times["tools"] = time.monotonic() - start
    eng.podman("info", "--format", "{{.Host.OCIRuntime.Name}}")
    if not eng.exists("image", BASE_IMAGE):
        start = time.monotonic()
        r = subprocess.run(
            [str(DOCKER / "debian-base.sh"), BASE_IMAGE],
            env={**eng.env, "ENGINE": "podman"},
            capture_output=True,
            text=True,
            timeout=1800,
        )
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        eng.times["base image"] = time.monotonic() - start
    eng.timed(
        "image build",
        "build",
        "--file",
        str(DOCKER / "Dockerfile"),
        "--tag",
        IMAGE,
        *build_args(pip_sources()),
        str(ROOT),
        timeout=3000,
    )
    eng.podman("image", "prune", "--force")  # layers of earlier builds no tag points to
    size = int(eng.podman("image", "inspect", "--format", "{{.Size}}", IMAGE).strip())
    print(f"\nimage {IMAGE}: {size / 1e9:.2f} GB")
    report_times("build", eng.times)
    yield eng


# --------------------------------------------------------------------------------------------
# 1. A sweep in a container without network equals the same sweep on the host


def launch_host(*argv: str, timeout: float = 1200) -> str:
    r = subprocess.run(
        [sys.executable, "-m", "launch", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert r.returncode == 0, f"launch {shlex.join(argv)}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout


def owned_by_container_user(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, CONTAINER_UID, CONTAINER_UID)
    return path


def tidy_results(directory: Path) -> pd.DataFrame:
    """results.csv without the columns that name the run, rows in a fixed order."""
    table = pd.read_csv(directory / "results.csv")
    keep = [c for c in table.columns if c not in RUN_IDENTITY]
    return table[keep].sort_values(keep).reset_index(drop=True)


def test_sweep_in_container_without_network_equals_host(engine: Engine, tmp_path: Path) -> None:
    inside = owned_by_container_user(tmp_path / "container")
    outside = tmp_path / "host"
    run = ["run", "--rm", "--network", "none", "--shm-size", "1g"]
    run += ["--volume", f"{inside}:/results", IMAGE]
    times: dict[str, float] = {}

    start = time.monotonic()
    engine.podman(
        *run, "python", "-m", "launch", "static", "--split", "0.3,0.4", "--episodes", "5",
        "--out", "/results/static",
    )  # fmt: skip
    times["static in container"] = time.monotonic() - start
    start = time.monotonic()
    out = engine.podman(
        *run, "python", "-m", "launch", "sweep", "static-grid", "--budget", "small",
        "--storage", "/results/sweeps",
    )  # fmt: skip
    times["sweep in container"] = time.monotonic() - start
    assert "2 trials with results, 0 failed" in out, out[-2000:]
    # Written by the image's non-root user.
    assert {p.stat().st_uid for p in inside.rglob("*")} == {CONTAINER_UID}

    start = time.monotonic()
    launch_host("static", "--split", "0.3,0.4", "--episodes", "5", "--out", str(outside / "static"))
    launch_host("sweep", "static-grid", "--budget", "small", "--storage", str(outside / "sweeps"))
    times["same on host"] = time.monotonic() - start
    launch_host("report", str(inside))
    launch_host("report", str(outside))
    report_times("sweep", times)

    ours, theirs = tidy_results(inside), tidy_results(outside)
    assert len(ours) > 1000  # 5 static episodes + 123 grid policies x 100 episodes
    assert set(ours["run_kind"]) == {"static"} and ours["episode_return"].notna().all()
    pd.testing.assert_frame_equal(ours, theirs, check_exact=True)


# --------------------------------------------------------------------------------------------
# 2. The compose stack as one pod


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str, token: str | None = None, timeout: float = 10) -> tuple[int, bytes]:
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_until(what: str, check: Callable[[], Any], timeout: float, interval: float = 3) -> Any:
    """The first truthy result of ``check()`` (errors count as not yet), else fail."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (OSError, ValueError) as exc:
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def listeners(engine: Engine, container: str) -> set[tuple[str, int]]:
    """(address, port) of the TCP sockets listening in the container's network namespace."""
    table = engine.podman("exec", container, "cat", "/proc/net/tcp", "/proc/net/tcp6")
    out = set()
    for line in table.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[3] != "0A":  # 0A: LISTEN
            continue
        addr, port = fields[1].split(":")
        raw = bytes.fromhex(addr)
        # The kernel prints each 32-bit word in host (little-endian) order.
        raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
        if len(raw) == 16 and raw[:12] == bytes(10) + b"\xff\xff":  # IPv4-mapped IPv6
            raw = raw[12:]
        family = socket.AF_INET if len(raw) == 4 else socket.AF_INET6
        ip = socket.inet_ntop(family, raw)
        out.add((ip, int(port, 16)))
    return out


def is_loopback(ip: str) -> bool:
    return ip.startswith("127.") or ip == "::1"


def wait_healthy(engine: Engine, container: str, timeout: float) -> None:
    """Run the container's healthcheck until it passes. The one gap of podman-compose here (named
    in docker/RUNNING.md): with podman 4.3 (Debian 12) it does not wait for ``service_healthy``
    (``podman wait --condition=healthy`` needs podman 4.6), and without systemd podman never runs a
    healthcheck by itself."""

    def healthy() -> bool:
        argv = ["podman", "healthcheck", "run", container]
        return subprocess.run(argv, env=engine.env, capture_output=True).returncode == 0

    wait_until(f"{container} to be healthy", healthy, timeout=timeout)


def test_compose_stack_runs_as_one_pod(engine: Engine, tmp_path: Path) -> None:
    assert importlib.util.find_spec("podman_compose"), (
        "podman-compose: pip install -r requirements.txt"
    )
    results = owned_by_container_user(tmp_path / "results")
    token_file = tmp_path / "ray_auth_token"
    token = os.urandom(32).hex()
    token_file.write_text(token)
    token_file.chmod(0o600)
    os.chown(token_file, CONTAINER_UID, CONTAINER_UID)
    dashboard_port, tensorboard_port, optuna_port = free_port(), free_port(), free_port()
    env = {
        **engine.env,
        "DASHBOARD_PORT": str(dashboard_port),
        "TENSORBOARD_PORT": str(tensorboard_port),
        "OPTUNA_DASHBOARD_PORT": str(optuna_port),
        "RAY_AUTH_TOKEN_FILE": str(token_file),
        "METALORE_RESULTS": str(results),
        # trials wait at their start until both hold a node's only CPU (one trial per node)
        "METALORE_TRIAL_BARRIER": "/results/barrier",
    }
    project = f"metalore-test-{os.getpid()}"
    pod, head, worker = f"pod_{project}", f"{project}_ray-head_1", f"{project}_ray-worker_1"

    def compose(*argv: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        """``podman-compose -p PROJECT -f docker/compose.yaml ARGV`` (the pinned one)."""
        cmd = [sys.executable, "-m", "podman_compose", "-p", project]
        cmd += ["-f", str(DOCKER / "compose.yaml"), *argv]
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)

    dashboard = f"http://127.0.0.1:{dashboard_port}"
    times: dict[str, float] = {}
    try:
        start = time.monotonic()
        r = compose("up", "-d", "--no-build", "ray-head")
        assert r.returncode == 0, r.stdout + r.stderr
        wait_healthy(engine, head, timeout=300)
        r = compose("up", "-d", "--no-build", "ray-worker", "tensorboard", "optuna-dashboard")
        assert r.returncode == 0, r.stdout + r.stderr

        def alive_nodes() -> list[dict[str, Any]]:
            status, body = get(f"{dashboard}/api/v0/nodes", token)
            nodes = json.loads(body)["data"]["result"]["result"] if status == 200 else []
            alive = [n for n in nodes if n["state"] == "ALIVE"]
            return alive if len(alive) == 2 else []

        nodes = wait_until("head and worker to be alive", alive_nodes, timeout=600)
        assert {n["node_name"] for n in nodes} == {"ray-head", "ray-worker"}
        assert {n["node_ip"] for n in nodes} == {"127.0.0.1"}
        times["stack up"] = time.monotonic() - start

        # One pod holds the four containers.
        inspect = json.loads(engine.podman("pod", "inspect", pod))
        inspect = inspect[0] if isinstance(inspect, list) else inspect
        names = {c["Name"] for c in inspect["Containers"]}
        optuna_dashboard = f"{project}_optuna-dashboard_1"
        assert names == {head, worker, f"{project}_tensorboard_1", optuna_dashboard}, names
        # Token auth on: no token, no access.
        assert get(f"{dashboard}/api/v0/nodes")[0] == 401
        assert get(f"{dashboard}/api/v0/nodes", "0" * 64)[0] == 403  # wrong token
        # Published on the host's 127.0.0.1 only; in the shared namespace only the published
        # ports listen beyond loopback (the port mapping needs them to); Ray stays on loopback.
        bindings = json.loads(
            engine.podman("inspect", "--format", "{{json .HostConfig.PortBindings}}", head)
        )
        # (the image's other EXPOSEd ports have no binding: null)
        published = {(b["HostIp"], b["HostPort"]) for port in bindings.values() for b in port or []}
        ports = (dashboard_port, tensorboard_port, optuna_port)
        assert published == {("127.0.0.1", str(p)) for p in ports}
        # The Optuna dashboard answers on its published port (the cluster's study database).
        studies = wait_until(
            "the Optuna dashboard to answer",
            lambda: get(f"http://127.0.0.1:{optuna_port}/api/studies")[0] == 200,
            timeout=300,
        )
        assert studies
        wide = {p for ip, p in listeners(engine, head) if not is_loopback(ip)}
        assert wide <= {8265, 6006, 8080}, wide

        start = time.monotonic()
        barrier = Barrier(results / "barrier")
        for d in (barrier.directory, barrier.directory / "arrived"):
            os.chown(d, CONTAINER_UID, CONTAINER_UID)  # the trials write their arrivals
        job = subprocess.Popen(
            [sys.executable, "-m", "podman_compose", "-p", project, "-f",
             str(DOCKER / "compose.yaml"), "run", "--rm", "-T", "sweep"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            # Each node has one CPU: with the first trial held at its start, the second can only
            # start on the other node (without the barrier a fast first trial may finish before
            # the second is placed, and both run on the head).
            held = barrier.wait("*@start#0", count=2, timeout=900)
            barrier.open()
            out, _ = job.communicate(timeout=1800)
        finally:
            barrier.open()
            if job.poll() is None:
                job.kill()
                job.wait(timeout=60)
        times["sweep job"] = time.monotonic() - start
        r = subprocess.CompletedProcess(job.args, job.returncode, out, "")
        assert r.returncode == 0, out[-3000:]
        assert "SUCCEEDED" in out, out[-3000:]
        trials = sorted((results / "compose-static-grid").glob("static_*/result.json"))
        assert len(trials) == 2, trials
        hosts = {json.loads(t.read_text().splitlines()[-1])["hostname"] for t in trials}
        # one trial on each node (each container has its own hostname, its id)
        assert hosts == {engine.podman("exec", c, "hostname").strip() for c in (head, worker)}
        assert {a.host for a in held} == hosts

        def runs() -> list[str]:
            status, body = get(f"http://127.0.0.1:{tensorboard_port}/data/runs")
            found = json.loads(body) if status == 200 else []
            return found if len(found) == 2 else []

        shown = wait_until("TensorBoard to list both trials", runs, timeout=120)
        assert all(run.startswith("compose-static-grid/static_") for run in shown)
    finally:
        start = time.monotonic()
        r = compose("down", "--remove-orphans")
        times["down"] = time.monotonic() - start
        report_times("pod", times)
    assert r.returncode == 0, r.stdout + r.stderr
    assert not engine.exists("pod", pod)
    left = engine.podman(
        "ps", "--all", "--quiet", "--filter", f"label=io.podman.compose.project={project}"
    )
    assert not left.strip(), left
