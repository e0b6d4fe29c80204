"""Private Ray names are used in exactly one module, and that module still matches Ray.

If an upgrade of Ray renames or moves any of them, ``test_private_ray_names_still_exist`` fails
with the list of what changed (see :mod:`tune_configs.ops.ray_internals`). The embedded default of
every command (a new local Ray, never another cluster found on the machine) and the one place
of Ray's environment variables (:mod:`tune_configs.ops.runtime`) are checked here too.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tune_configs.ops import runtime
from tune_configs.ops.ray_internals import describe_problems, problems

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("envs", "analysis", "tune_configs", "launch")
THE_MODULE = ROOT / "tune_configs" / "ops" / "ray_internals.py"


@pytest.mark.ray
def test_private_ray_names_still_exist() -> None:
    found = problems()
    assert found == [], describe_problems(found)


def _private_uses(path: Path) -> list[str]:
    """``file:line what`` for every private Ray module or attribute the file touches."""
    tree = ast.parse(path.read_text(), str(path))
    out = []

    def private_ray(dotted: str) -> bool:
        parts = dotted.split(".")
        return parts[0] == "ray" and any(p.startswith("_") for p in parts[1:])

    inner = {
        id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Attribute)
    }  # a.b of a.b.c: only the whole chain counts
    for node in ast.walk(tree):
        what = None
        if id(node) in inner:
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names if private_ray(a.name)]
            what = ", ".join(names) or None
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if private_ray(node.module):
                what = node.module
        elif isinstance(node, ast.Attribute):
            chain = []
            cur: ast.expr = node
            while isinstance(cur, ast.Attribute):
                chain.append(cur.attr)
                cur = cur.value
            if isinstance(cur, ast.Name) and cur.id == "ray":
                dotted = ".".join(["ray", *reversed(chain)])
                what = dotted if private_ray(dotted) else None
            elif node.attr == "get_storage":  # Tune's internal StorageContext
                what = "TuneContext.get_storage()"
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            what = node.value if private_ray(node.value) else None  # import_module("ray._x")
        if what:
            where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
            out.append(f"{where}:{getattr(node, 'lineno', '?')} {what}")
    return out


def test_no_other_module_touches_private_ray_names() -> None:
    offenders = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path == THE_MODULE:
                continue
            offenders += [
                use
                for use in _private_uses(path)
                # A logger name only selects log records; it touches no Ray code.
                if not use.endswith("ray._common.deprecation")
            ]
    assert offenders == [], (
        "private Ray names outside tune_configs/ops/ray_internals.py (move them there):\n"
        + "\n".join(offenders)
    )


def test_scan_finds_private_names(tmp_path: Path) -> None:
    """The scan itself works (it must be able to fail)."""
    bad = tmp_path / "uses.py"
    bad.write_text(
        "import importlib\n"
        "import ray._private.services\n"
        "from ray._raylet import GcsClient\n"
        "import ray\n"
        "x = ray._private.worker\n"
        "y = importlib.import_module('ray._raylet')\n"
        "def f(ctx):\n    return ctx.get_storage()\n"
    )
    assert len(_private_uses(bad)) == 5, _private_uses(bad)


def _python(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter from the repository root (Ray not yet imported)."""
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


@pytest.mark.ray
def test_patches_act_in_a_worker_starting_process() -> None:
    """allow_loopback_worker pins the node address and lifts the single-node check; only there."""
    code = (
        "import os\n"
        "os.environ['RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER'] = '0'\n"
        "from ray._private import ray_constants, services\n"
        "assert ray_constants.ENABLE_RAY_CLUSTER is False\n"
        "from tune_configs.ops import ray_internals\n"
        "ray_internals.allow_loopback_worker()\n"
        "assert ray_constants.ENABLE_RAY_CLUSTER is True\n"
        "assert services.get_node_ip_address() == '127.0.0.1'\n"
        "ray_internals.keep_single_node()\n"
        "assert ray_constants.ENABLE_RAY_CLUSTER is False\n"
        "print('ok')\n"
    )
    r = _python(code)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_without_ray_refuses_remote_actors() -> None:
    from types import SimpleNamespace

    from tune_configs.ops.ray_internals import without_ray

    for remote in ("num_env_runners", "num_learners", "evaluation_num_env_runners"):
        config = SimpleNamespace(
            **{"num_env_runners": 0, "num_learners": 0, "evaluation_num_env_runners": 0, remote: 1}
        )
        with pytest.raises(ValueError, match=remote), without_ray(config):
            pass


@pytest.mark.ray
def test_without_ray_keeps_ray_down_and_restores_the_module() -> None:
    """Inside the block RLlib's object-store puts stay local and any other use of Ray fails
    instead of starting a node; afterwards everything is as before."""
    code = (
        "from types import SimpleNamespace\n"
        "import ray\n"
        "from ray._private import auto_init_hook\n"
        "from ray.rllib.env import env_runner_group as erg\n"
        "from tune_configs.ops.ray_internals import without_ray\n"
        "cfg = SimpleNamespace(num_env_runners=0, num_learners=0, evaluation_num_env_runners=0)\n"
        "with without_ray(cfg):\n"
        "    value = {'w': 1}\n"
        "    assert erg.ray.put(value) is value\n"
        "    try:\n"
        "        ray.put(1)\n"
        "    except Exception as exc:\n"
        "        print('refused', type(exc).__name__)\n"
        "    assert not ray.is_initialized()\n"
        "assert erg.ray is ray and auto_init_hook.enable_auto_connect is True\n"
        "print('ok')\n"
    )
    r = _python(code)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.split() == ["refused", "RaySystemError", "ok"], r.stdout


def test_start_worker_refuses_without_loopback_setting() -> None:
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1"}
    r = subprocess.run(
        [sys.executable, "-m", "tune_configs.ops.cluster", "start-worker", "--address=127.0.0.1:1"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 2 and "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0" in r.stderr


# ------------------------------------------------------------------------------------------
# Ray's environment, in one place


def test_embedded_env_drops_other_clusters_and_keeps_user_choices() -> None:
    base = {
        "RAY_ADDRESS": "127.0.0.1:6379", "RAY_API_SERVER_ADDRESS": "http://127.0.0.1:8265",
        "RAY_AUTH_MODE": "token", "PYTHONPATH": "/x", "METALORE_TRIAL_BARRIER": "/b",
    }  # fmt: skip
    env = runtime.embedded_env(base)
    assert "RAY_ADDRESS" not in env and "RAY_API_SERVER_ADDRESS" not in env
    assert env["RAY_AUTH_MODE"] == "token"  # an explicit choice is kept
    assert env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] == "0"
    assert env["RAY_USAGE_STATS_ENABLED"] == "0"
    assert env["PYTHONPATH"].split(os.pathsep) == [str(ROOT), "/x"]
    assert env["METALORE_TRIAL_BARRIER"] == "/b"
    assert runtime.embedded_env({})["RAY_AUTH_MODE"] == "disabled"


def test_embedded_init_is_always_a_new_local_instance() -> None:
    kwargs = runtime.embedded_init_kwargs(2, 10**8)
    assert kwargs["address"] == "local" and kwargs["include_dashboard"] is False
    assert kwargs["num_cpus"] == 2 and kwargs["object_store_memory"] == 10**8


def test_node_and_client_env() -> None:
    base = {"PATH": "/usr/bin", "RAY_ADDRESS": "10.0.0.1:6379", "RAY_AUTH_TOKEN": "leak",
            "METALORE_TRIAL_BARRIER": "/b"}  # fmt: skip
    env = runtime.node_env("token", "/t", "/venv/bin/python", base)
    assert env["RAY_AUTH_MODE"] == "token" and env["RAY_AUTH_TOKEN_PATH"] == "/t"
    assert "RAY_ADDRESS" not in env and "RAY_AUTH_TOKEN" not in env
    assert env["PATH"].split(os.pathsep)[0] == "/venv/bin"
    assert env["METALORE_TRIAL_BARRIER"] == "/b"  # reaches the trials on every node
    client = runtime.client_env("127.0.0.1:1", "http://127.0.0.1:2", "disabled", "/t")
    assert client == {
        "RAY_ADDRESS": "127.0.0.1:1", "RAY_API_SERVER_ADDRESS": "http://127.0.0.1:2",
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled",
    }  # fmt: skip


def test_use_auth_replaces_all_auth_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_AUTH_TOKEN", "stale")
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    runtime.use_auth("disabled", None)
    assert os.environ["RAY_AUTH_MODE"] == "disabled"
    assert "RAY_AUTH_TOKEN" not in os.environ and "RAY_AUTH_TOKEN_PATH" not in os.environ


@pytest.mark.parametrize(
    ("address", "loopback"),
    [("127.0.0.1:6390", True), ("localhost:1", True), ("http://127.3.0.1:8265", True),
     ("[::1]:6379", True), ("10.0.0.1:6379", False), ("auto", False)],
)  # fmt: skip
def test_is_loopback_address(address: str, loopback: bool) -> None:
    assert runtime.is_loopback_address(address) is loopback


def test_only_runtime_sets_ray_variables() -> None:
    """Ray's variables are assigned in tune_configs/ops/runtime.py only (tests and docs aside)."""
    offenders = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path == ROOT / "tune_configs" / "ops" / "runtime.py":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.Call | ast.Subscript):
                    continue
                text = ast.unparse(node)
                if "environ" not in text or not any(
                    s in text for s in ('"RAY_', "'RAY_", '"TUNE_', "'TUNE_")
                ):
                    continue
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                    if node.func.attr in ("setdefault", "update", "pop"):
                        offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {text[:80]}")
                elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {text[:80]}")
    assert offenders == [], (
        "Ray environment set outside tune_configs/ops/runtime.py:\n" + "\n".join(offenders)
    )


@pytest.mark.ray
def test_session_ray_is_its_own(ray_session: Any) -> None:
    """The fixture's Ray is a new local one (2 CPUs, 1 node) even if another Ray is found
    (``tests/tune_configs/ops/test_fault_drills.py`` runs this test beside an unrelated cluster)."""
    ray = ray_session
    assert len(ray.nodes()) == 1 and ray.cluster_resources().get("CPU") == 2
    assert "RAY_ADDRESS" not in os.environ
