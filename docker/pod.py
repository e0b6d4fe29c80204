"""Run docker/compose.yaml's services in one podman pod: the podman path to the compose stack.

``docker compose -f docker/compose.yaml up`` is the usual way; with podman (no compose plugin
needed) the same file runs as one pod::

    python docker/pod.py up                       # pod + every service, detached
    python docker/pod.py up ray-head ray-worker   # only these (and what they depend on)
    python docker/pod.py run sweep                # a one-shot service, in the foreground
    python docker/pod.py logs -f sweep
    python docker/pod.py ps
    python docker/pod.py down [--volumes]

The containers of a pod share one network namespace, as the services do in the compose file
(``network_mode: service:ray-head``): they talk over the pod's loopback, and the pod publishes
the services' ports (``127.0.0.1:...`` only in our compose file). Names follow compose: pod
``PROJECT`` (the file's ``name``, or ``-p``), containers ``PROJECT-SERVICE``, named volumes
``PROJECT_VOLUME``; each container's hostname is its service name. ``depends_on`` conditions are
honoured (``service_healthy`` runs the healthcheck with ``podman exec``), ``${VAR}`` and
``${VAR:-default}`` are taken from the environment as compose does. The image must exist (build
it with ``podman build``, see docker/RUNNING.md); ``build:`` entries are not used here.

Only the compose features the project uses are understood; anything else is an error, never
silently dropped. ``--dry-run`` prints the podman commands instead of running them.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
DEFAULT_FILE = HERE / "compose.yaml"

SERVICE_KEYS = {
    "image",
    "build",
    "command",
    "environment",
    "secrets",
    "volumes",
    "shm_size",
    "ports",
    "healthcheck",
    "depends_on",
    "network_mode",
    "restart",
    "init",
}
TOP_KEYS = {"name", "services", "volumes", "secrets"}
CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")
_VAR = re.compile(r"\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


class ComposeError(Exception):
    """The compose file uses something this runner does not understand, or is inconsistent."""


# --------------------------------------------------------------------------------------------
# Reading the compose file


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Compose-style ``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``$$``."""
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            if m.group(0) == "$$":
                return "$"
            name = m.group(1) or m.group(3)
            default = m.group(2)
            got = env.get(name)
            if default is not None:
                colon = m.group(0).startswith("${" + name + ":-")
                if got is None or (colon and got == ""):
                    return default
            return got or ""

        return _VAR.sub(sub, value)
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    return value


def parse_size(text: str | int) -> int:
    """``1gb``, ``512m``, ``65536k``, bytes -> bytes."""
    if isinstance(text, int):
        return text
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([bkmg]?)b?\s*", str(text).lower())
    if not m:
        raise ComposeError(f"unreadable size {text!r}")
    scale = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[m.group(2)]
    return int(float(m.group(1)) * scale)


def as_argv(command: Any) -> list[str]:
    if command is None:
        return []
    return [str(c) for c in command] if isinstance(command, list) else shlex.split(str(command))


@dataclass
class Service:
    name: str
    image: str
    command: list[str]
    environment: dict[str, str]
    secrets: list[str]
    volumes: list[str]
    ports: list[str]
    shm_size: int | None
    healthcheck: dict[str, Any] | None
    depends_on: dict[str, str]
    restart: str | None
    network_mode: str | None
    init: bool = False


@dataclass
class Project:
    name: str
    directory: Path
    services: dict[str, Service]
    volumes: set[str] = field(default_factory=set)
    secrets: dict[str, Path] = field(default_factory=dict)

    @property
    def pod(self) -> str:
        return self.name

    def container(self, service: str) -> str:
        return f"{self.name}-{service}"

    def volume(self, name: str) -> str:
        return f"{self.name}_{name}"


def load(path: Path, env: Mapping[str, str] | None = None, name: str | None = None) -> Project:
    """Read and check a compose file (with ``env`` for ``${VAR}``, default the environment)."""
    raw = yaml.safe_load(path.read_text())
    data = interpolate(raw, os.environ if env is None else env)
    unknown = {k for k in data if not k.startswith("x-")} - TOP_KEYS  # x-*: extension fields
    if unknown:
        raise ComposeError(f"unsupported top-level keys {sorted(unknown)}")
    project = Project(
        name=name or data.get("name") or path.resolve().parent.name,
        directory=path.resolve().parent,
        services={},
        volumes=set(data.get("volumes") or {}),
    )
    for key, spec in (data.get("secrets") or {}).items():
        if set(spec) != {"file"}:
            raise ComposeError(f"secret {key}: only `file:` secrets are supported")
        project.secrets[key] = (project.directory / spec["file"]).resolve()
    for sname, spec in data["services"].items():
        unknown = set(spec) - SERVICE_KEYS
        if unknown:
            raise ComposeError(f"service {sname}: unsupported keys {sorted(unknown)}")
        env_spec = spec.get("environment") or {}
        if isinstance(env_spec, list):
            env_spec = dict(item.split("=", 1) for item in env_spec)
        deps = spec.get("depends_on") or {}
        if isinstance(deps, list):
            deps = {d: {"condition": "service_started"} for d in deps}
        depends = {d: (c or {}).get("condition", "service_started") for d, c in deps.items()}
        for dep, cond in depends.items():
            if cond not in CONDITIONS:
                raise ComposeError(f"service {sname}: unknown condition {cond!r} for {dep}")
        project.services[sname] = Service(
            name=sname,
            image=str(spec["image"]),
            command=as_argv(spec.get("command")),
            environment={str(k): str(v) for k, v in env_spec.items()},
            secrets=[str(s) for s in spec.get("secrets") or []],
            volumes=[str(v) for v in spec.get("volumes") or []],
            ports=[str(p) for p in spec.get("ports") or []],
            shm_size=parse_size(spec["shm_size"]) if "shm_size" in spec else None,
            healthcheck=spec.get("healthcheck"),
            depends_on=depends,
            restart=spec.get("restart"),
            network_mode=spec.get("network_mode"),
            init=bool(spec.get("init", False)),
        )
    check(project)
    return project


def check(project: Project) -> None:
    owners = [s.name for s in project.services.values() if s.network_mode is None]
    for s in project.services.values():
        for dep in s.depends_on:
            if dep not in project.services:
                raise ComposeError(f"service {s.name} depends on unknown service {dep}")
        for secret in s.secrets:
            if secret not in project.secrets:
                raise ComposeError(f"service {s.name}: undeclared secret {secret}")
        for vol in s.volumes:
            source = vol.split(":")[0]
            if not _is_path(source) and source not in project.volumes:
                raise ComposeError(f"service {s.name}: undeclared volume {source}")
        if s.network_mode is not None:
            # One pod = one network namespace: only "share another service's" makes sense.
            target = s.network_mode.removeprefix("service:")
            if not s.network_mode.startswith("service:") or target not in project.services:
                raise ComposeError(f"service {s.name}: network_mode {s.network_mode!r}")
    if len(owners) > 1:
        raise ComposeError(f"services {owners} would need separate networks: not one pod")
    order(project, list(project.services))  # no cycles


def _is_path(source: str) -> bool:
    return source.startswith(("/", "./", "../", "~"))


def order(project: Project, wanted: Sequence[str]) -> list[str]:
    """``wanted`` and everything they depend on, dependencies first."""
    out: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in out:
            return
        if name in visiting:
            raise ComposeError(f"dependency cycle through {name}")
        if name not in project.services:
            raise ComposeError(f"no service {name!r} (services: {', '.join(project.services)})")
        visiting.add(name)
        for dep in project.services[name].depends_on:
            visit(dep)
        visiting.discard(name)
        out.append(name)

    for name in wanted:
        visit(name)
    return out


# --------------------------------------------------------------------------------------------
# podman command lines


def pod_create_argv(project: Project) -> list[str]:
    """One pod: shared network namespace (not hostname, so nodes keep their own), all ports."""
    argv = ["pod", "create", "--name", project.pod, "--share", "net"]
    shm = [s.shm_size for s in project.services.values() if s.shm_size]
    if shm:
        # podman gives a pod's containers the pod's /dev/shm size.
        argv += ["--shm-size", f"{max(shm) // (1024 * 1024)}m"]
    for s in project.services.values():
        for port in s.ports:
            argv += ["--publish", port]
    return argv


def run_argv(project: Project, service: str, *, detach: bool, name: str | None = None) -> list[str]:
    s = project.services[service]
    argv = ["run", "--pod", project.pod, "--name", name or project.container(service)]
    argv += ["--hostname", service]
    argv += ["--detach"] if detach else ["--rm"]
    if s.init:
        argv.append("--init")
    if s.restart and s.restart != "no":
        argv += ["--restart", s.restart]
    for key, value in s.environment.items():
        argv += ["--env", f"{key}={value}"]
    for secret in s.secrets:
        argv += ["--volume", f"{project.secrets[secret]}:/run/secrets/{secret}:ro"]
    for vol in s.volumes:
        parts = vol.split(":")
        source = parts[0]
        if _is_path(source):
            source = str((project.directory / Path(source).expanduser()).resolve())
        else:
            source = project.volume(source)
        argv += ["--volume", ":".join([source, *parts[1:]])]
    argv.append(s.image)
    argv += s.command
    return argv


def health_argv(project: Project, service: str) -> list[str]:
    test = as_argv((project.services[service].healthcheck or {}).get("test"))
    if not test or test[0] not in ("CMD", "CMD-SHELL"):
        raise ComposeError(f"service {service}: healthcheck test must start with CMD or CMD-SHELL")
    inner = test[1:] if test[0] == "CMD" else ["/bin/sh", "-c", " ".join(test[1:])]
    return ["exec", project.container(service), *inner]


def duration(text: Any, default: float) -> float:
    if text is None:
        return default
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", str(text)):
        total += float(number) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    return total


# --------------------------------------------------------------------------------------------
# Running


class Runner:
    def __init__(self, project: Project, engine: str = "podman", dry_run: bool = False):
        self.project = project
        self.engine = engine
        self.dry_run = dry_run

    def call(self, argv: list[str], check: bool = True, quiet: bool = False) -> int:
        full = [self.engine, *argv]
        if self.dry_run:
            print(shlex.join(full))
            return 0
        r = subprocess.run(full, capture_output=quiet, text=True)
        if check and r.returncode != 0:
            why = f"\n{r.stderr.strip()}" if quiet else ""
            raise ComposeError(f"failed ({r.returncode}): {shlex.join(full)}{why}")
        return r.returncode

    def output(self, argv: list[str]) -> str:
        r = subprocess.run([self.engine, *argv], capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else ""

    def exists(self, kind: str, name: str) -> bool:
        if self.dry_run:
            return False
        r = subprocess.run([self.engine, kind, "exists", name], capture_output=True)
        return r.returncode == 0

    def state(self, service: str) -> str:
        return self.output(
            ["inspect", "--format", "{{.State.Status}}", self.project.container(service)]
        )

    def ensure_pod(self) -> None:
        for key, path in self.project.secrets.items():
            if not self.dry_run and not path.is_file():
                raise ComposeError(
                    f"secret {key}: no file {path} (make one: umask 077; python3 -c "
                    f"'import secrets; print(secrets.token_hex(32))' > {path})"
                )
        if not self.exists("pod", self.project.pod):
            self.call(pod_create_argv(self.project), quiet=True)

    def start(self, service: str) -> None:
        name = self.project.container(service)
        if self.exists("container", name):
            if self.state(service) != "running":
                self.call(["start", name], quiet=True)
            return
        self.call(run_argv(self.project, service, detach=True), quiet=True)

    def wait_for(self, service: str, condition: str) -> None:
        if self.dry_run and condition == "service_healthy":
            self.call(health_argv(self.project, service))  # printed: what would be polled
        if condition == "service_started" or self.dry_run:
            return
        name = self.project.container(service)
        if condition == "service_completed_successfully":
            code = self.output(["wait", name])
            if code != "0":
                raise ComposeError(f"{service} exited with {code or 'an error'}")
            return
        hc = self.project.services[service].healthcheck or {}
        interval = duration(hc.get("interval"), 30.0)
        timeout = duration(hc.get("timeout"), 30.0)
        retries = int(hc.get("retries", 3))
        deadline = time.monotonic() + duration(hc.get("start_period"), 0.0)
        failures = 0
        argv = [self.engine, *health_argv(self.project, service)]
        while True:
            if self.state(service) not in ("running", "created", "configured"):
                raise ComposeError(
                    f"{service} stopped before it was healthy: {self.logs_tail(service)}"
                )
            try:
                rc = subprocess.run(argv, capture_output=True, timeout=timeout).returncode
            except subprocess.TimeoutExpired:
                rc = -1
            if rc == 0:
                return
            if time.monotonic() >= deadline:
                failures += 1
                if failures >= retries:
                    raise ComposeError(f"{service} is unhealthy: {self.logs_tail(service)}")
            time.sleep(interval)

    def logs_tail(self, service: str) -> str:
        r = subprocess.run(
            [self.engine, "logs", "--tail", "20", self.project.container(service)],
            capture_output=True,
            text=True,
        )
        return "\n" + (r.stdout + r.stderr).strip()

    def up(self, services: Sequence[str]) -> None:
        names = order(self.project, services or list(self.project.services))
        self.ensure_pod()
        for name in names:
            for dep, cond in self.project.services[name].depends_on.items():
                self.wait_for(dep, cond)
            self.start(name)
            print(f"{self.project.container(name)} started", file=sys.stderr)

    def run(self, service: str) -> int:
        deps = order(self.project, [service])[:-1]
        if deps:
            self.up(deps)
        else:
            self.ensure_pod()
        for dep, cond in self.project.services[service].depends_on.items():
            self.wait_for(dep, cond)
        name = f"{self.project.container(service)}-run-{os.getpid()}"
        return self.call(run_argv(self.project, service, detach=False, name=name), check=False)

    def down(self, volumes: bool) -> None:
        if self.dry_run or self.exists("pod", self.project.pod):
            self.call(["pod", "rm", "--force", "--time", "20", self.project.pod], quiet=True)
        if volumes:
            for vol in sorted(self.project.volumes):
                if self.dry_run or self.exists("volume", self.project.volume(vol)):
                    self.call(["volume", "rm", "--force", self.project.volume(vol)], quiet=True)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="pod.py", description=__doc__.split("\n\n")[0])
    p.add_argument("-f", "--file", type=Path, default=DEFAULT_FILE, help="compose file")
    p.add_argument("-p", "--project-name", default=None, help="pod name (default: the file's)")
    p.add_argument("--engine", default=os.environ.get("PODMAN", "podman"), help="podman binary")
    p.add_argument("--dry-run", action="store_true", help="print the podman commands only")
    sub = p.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="create the pod, start services (default all), detached")
    up.add_argument("services", nargs="*")
    run = sub.add_parser("run", help="run one service in the pod in the foreground")
    run.add_argument("service")
    logs = sub.add_parser("logs", help="a service's output")
    logs.add_argument("service")
    logs.add_argument("-f", "--follow", action="store_true")
    sub.add_parser("ps", help="the pod's containers")
    down = sub.add_parser("down", help="remove the pod and its containers")
    down.add_argument("--volumes", action="store_true", help="also remove the named volumes")
    args = p.parse_args(argv)
    try:
        project = load(args.file, name=args.project_name)
        runner = Runner(project, engine=args.engine, dry_run=args.dry_run)
        if args.cmd == "up":
            runner.up(args.services)
        elif args.cmd == "run":
            return runner.run(args.service)
        elif args.cmd == "logs":
            extra = ["--follow"] if args.follow else []
            return runner.call(["logs", *extra, project.container(args.service)], check=False)
        elif args.cmd == "ps":
            return runner.call(["ps", "--all", "--filter", f"pod={project.pod}"], check=False)
        else:
            runner.down(args.volumes)
    except ComposeError as exc:
        print(f"pod.py: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
