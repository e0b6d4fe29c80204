"""The only module that touches private Ray names (checked against Ray 2.60.0).

Everything else in the project uses Ray's public API. What is private, and why it is needed:

* ``ray._private.ray_constants.ENABLE_RAY_CLUSTER``: the flag Ray derives at import time from
  ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER``. With the variable at ``0`` every address stays on
  127.0.0.1, but ``ray start --address`` then refuses to add a node. :func:`allow_loopback_worker`
  lifts that one check in the process that starts a worker node of a local cluster;
  :func:`keep_single_node` puts the flag back in a driver that imported Ray before the variable
  was set.
* ``ray._private.services.get_node_ip_address``: what ``ray start`` asks for the node's address;
  pinned to 127.0.0.1 for a worker node of a local cluster.
* ``ray.scripts.scripts.main`` (and its click group ``cli``): the ``ray`` command line, run
  in-process after the two patches.
* ``ray._raylet.GcsClient``: a bare GCS client, to check that a cluster's GCS refuses a wrong
  token (:func:`gcs_accepts`).
* ``ray.train._internal.storage.StorageContext`` (what ``tune.get_context().get_storage()``
  returns): where a trial's directory lives in the experiment storage
  (:func:`trial_storage_dir`).
* ``ray.rllib.env.env_runner_group`` (its module global ``ray``) and
  ``ray._private.auto_init_hook.enable_auto_connect``: :func:`without_ray` trains in the driver
  without starting Ray at all. An RLlib algorithm with no remote env runners and no remote
  learners uses Ray for exactly one thing: ``EnvRunnerGroup`` puts its config and, every
  iteration, the weights into the object store for remote env runners it does not have. Starting
  and stopping a Ray node for that costs about 4 s of a 12 s ``launch train`` (2-core machine).
* Tune's saved grid search state (``BasicVariantGenerator``: its ``_iterators`` with their
  ``uuid_prefix`` and ``counter``, ``_live_trials``, ``max_concurrent``; trial ids numbered
  ``uuid_prefix + counter``): :func:`grid_handed_out`, :func:`grid_live` and
  :func:`grid_brought_forward`, with
  which :mod:`tune_configs.ops.tune_state` mends a state cut by a killed driver.

:func:`problems` lists what no longer matches in the installed Ray; ``tests/test_ray_internals.py``
fails with that list when an upgrade of Ray changes any of these names, and
:func:`allow_loopback_worker` refuses to start a node in that case.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"
TESTED_RAY = "2.60.0"
ENABLE_CLUSTER_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def _source(obj: Any) -> str:
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):
        return ""


def problems() -> list[str]:
    """What the installed Ray no longer provides of the private names used here (empty: fine)."""
    found: list[str] = []
    try:
        from ray._private import ray_constants, services
        from ray.scripts import scripts
    except ImportError as exc:
        return [f"cannot import ray._private.ray_constants/services or ray.scripts: {exc}"]
    if not isinstance(getattr(ray_constants, "ENABLE_RAY_CLUSTER", None), bool):
        found.append("ray._private.ray_constants.ENABLE_RAY_CLUSTER is not a bool any more")
    if getattr(ray_constants, "ENABLE_RAY_CLUSTERS_ENV_VAR", None) != ENABLE_CLUSTER_ENV:
        found.append(f"ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR is not {ENABLE_CLUSTER_ENV!r}")
    get_ip = getattr(services, "get_node_ip_address", None)
    if not callable(get_ip) or "address" not in inspect.signature(get_ip).parameters:
        found.append("ray._private.services.get_node_ip_address(address=None) is gone")
    # The patches work only if `ray start` reads both names from their modules at call time.
    start_src = _source(getattr(getattr(scripts, "start", None), "callback", None))
    if "ray_constants.ENABLE_RAY_CLUSTER" not in start_src:
        found.append("`ray start` no longer reads ray_constants.ENABLE_RAY_CLUSTER")
    if "services.get_node_ip_address(" not in start_src:
        found.append("`ray start` no longer calls services.get_node_ip_address")
    commands = getattr(getattr(scripts, "cli", None), "commands", {})
    if not callable(getattr(scripts, "main", None)) or "start" not in commands:
        found.append("ray.scripts.scripts.main / cli has no `start` command")
    else:
        options = {opt for p in commands["start"].params for opt in getattr(p, "opts", [])}
        needed = {
            "--address", "--node-ip-address", "--num-cpus", "--object-store-memory",
            "--dashboard-agent-listen-port", "--min-worker-port", "--max-worker-port",
            "--temp-dir", "--node-name", "--disable-usage-stats",
        }  # fmt: skip
        missing = sorted(needed - options)
        if missing:
            found.append(f"`ray start` lacks the options {missing}")
    raylet = importlib.import_module("ray._raylet")  # compiled, no type information
    if not callable(getattr(raylet, "GcsClient", None)) or not hasattr(
        getattr(raylet, "InnerGcsClient", None), "internal_kv_get"
    ):
        found.append("ray._raylet.GcsClient(...).internal_kv_get is gone")
    try:
        from ray.train._internal.storage import StorageContext

        init_src = _source(StorageContext)
        if not isinstance(getattr(StorageContext, "trial_fs_path", None), property):
            found.append("StorageContext.trial_fs_path is not a property any more")
        if "self.storage_filesystem" not in init_src:
            found.append("StorageContext.storage_filesystem is gone")
    except ImportError:
        found.append("ray.train._internal.storage.StorageContext is gone")
    found.extend(_without_ray_problems())
    found.extend(_tune_state_problems())
    return found


def _without_ray_problems() -> list[str]:
    try:
        from ray._private import auto_init_hook
        from ray.rllib.env import env_runner_group
    except ImportError as exc:
        return [f"cannot import ray.rllib.env.env_runner_group / auto_init_hook: {exc}"]
    found = []
    if getattr(env_runner_group, "ray", None) is not sys.modules.get("ray"):
        found.append("ray.rllib.env.env_runner_group no longer reaches Ray as its global `ray`")
    if not isinstance(getattr(auto_init_hook, "enable_auto_connect", None), bool):
        found.append("ray._private.auto_init_hook.enable_auto_connect is not a bool any more")
    return found


def _ray_version() -> str:
    try:
        import ray

        return str(ray.__version__)
    except ImportError:
        return "not installed"


def describe_problems(found: list[str]) -> str:
    return (
        f"Ray {_ray_version()} changed private names this project relies on (tested with "
        f"{TESTED_RAY}); update tune_configs/ops/ray_internals.py:\n  - " + "\n  - ".join(found)
    )


class _LocalObjectStore:
    """Stands in for the module ``ray`` inside ``env_runner_group``: ``put`` keeps the object
    itself (nothing remote will ever read it); every other name is Ray's own."""

    def __init__(self, ray_module: Any) -> None:
        self._ray = ray_module

    def put(self, value: Any, **_kwargs: Any) -> Any:
        if self._ray.is_initialized():
            return self._ray.put(value, **_kwargs)
        return value

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ray, name)


@contextlib.contextmanager
def without_ray(config: Any) -> Iterator[None]:
    """Build and train an RLlib algorithm in this process without starting Ray.

    ``config`` (an ``AlgorithmConfig``) must sample in the driver (no remote env runners, no
    remote evaluation runners) and learn in the driver (no remote learners); ValueError
    otherwise. Inside the block Ray's automatic ``ray.init`` is off, so any other use of Ray
    fails loudly ("Ray has not been started") instead of silently starting a node. Raises
    RuntimeError naming what changed if the installed Ray no longer matches.
    """
    remote = {
        "num_env_runners": getattr(config, "num_env_runners", 0),
        "num_learners": getattr(config, "num_learners", 0),
        "evaluation_num_env_runners": getattr(config, "evaluation_num_env_runners", 0),
    }
    if any(remote.values()):
        raise ValueError(f"training without Ray needs no remote actors, got {remote}")
    found = _without_ray_problems()
    if found:
        raise RuntimeError(describe_problems(found))
    import ray
    from ray._private import auto_init_hook
    from ray.rllib.env import env_runner_group

    if ray.is_initialized():  # Ray is there anyway: nothing to avoid
        yield
        return
    saved = auto_init_hook.enable_auto_connect
    auto_init_hook.enable_auto_connect = False
    module: Any = env_runner_group
    module.ray = _LocalObjectStore(ray)
    try:
        yield
    finally:
        module.ray = ray
        auto_init_hook.enable_auto_connect = saved


def keep_single_node() -> None:
    """Honour ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` although Ray was imported before it was set.

    Ray reads the variable once, at import; a driver that imported Ray earlier would advertise
    the interface address instead of 127.0.0.1. No effect if Ray is not imported yet.
    """
    if "ray" not in sys.modules:
        return
    from ray._private import ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False


def allow_loopback_worker() -> None:
    """In this process only: let ``ray start --address`` add a node whose address is 127.0.0.1.

    Raises RuntimeError (naming what changed) if the installed Ray does not match.
    """
    found = problems()
    if found:
        raise RuntimeError(describe_problems(found))
    from ray._private import ray_constants, services

    ray_constants.ENABLE_RAY_CLUSTER = True

    def loopback_node_ip(address: str | None = None) -> str:
        return LOOPBACK

    services.get_node_ip_address = loopback_node_ip


def run_ray_cli(argv: list[str]) -> int:
    """Run the ``ray`` command line in this process (``argv`` without the leading ``ray``)."""
    from ray.scripts import scripts

    ray_main: Any = scripts.main  # click group, untyped
    sys.argv = ["ray", *argv]
    try:
        return int(ray_main() or 0)
    except SystemExit as exc:  # click exits by itself
        return exc.code if isinstance(exc.code, int) else 1


def gcs_accepts(address: str, timeout: float = 5.0) -> str:
    """``"accepted"`` if the GCS at ``address`` answers a key-value read with this process's auth
    settings, else the exception's class name (``"AuthenticationError"`` for a wrong token)."""
    gcs_client = importlib.import_module("ray._raylet").GcsClient
    try:
        gcs_client(address=address).internal_kv_get(b"metalore-probe", None, timeout=timeout)
    except Exception as exc:
        return type(exc).__name__
    return "accepted"


def trial_storage_dir() -> Path | None:
    """The running trial's directory in the experiment storage if that storage is a local
    filesystem (what every node of a one-machine cluster sees), else None. Call inside a trial."""
    from ray import tune

    from tune_configs.ops.storage import is_whole_local

    storage = tune.get_context().get_storage()
    fs = getattr(storage, "storage_filesystem", None)
    if fs is not None and (type(fs).__name__ == "LocalFileSystem" or is_whole_local(fs)):
        return Path(storage.trial_fs_path)
    return None


# Tune's saved grid search state (what tune_configs.ops.tune_state mends before a resume).
_GRID_TRIAL_ID = 'self.uuid_prefix + ("%05d" % self.counter)'


def grid_handed_out(state: Any) -> list[str] | None:
    """Trial ids a saved ``BasicVariantGenerator`` state (Tune's grid and random search of one
    experiment) has handed out, in order; ``None`` for any other state."""
    iterators = state.get("_iterators") if isinstance(state, dict) else None
    if not isinstance(iterators, list) or len(iterators) != 1:
        return None
    prefix = getattr(iterators[0], "uuid_prefix", None)
    counter = getattr(iterators[0], "counter", None)
    if not isinstance(prefix, str) or not isinstance(counter, int):
        return None
    return [f"{prefix}{n:05d}" for n in range(counter)]


def grid_live(state: Any) -> set[str] | None:
    """Trial ids a saved ``BasicVariantGenerator`` state counts as running; ``None`` for any
    other state."""
    live = state.get("_live_trials") if isinstance(state, dict) else None
    return set(live) if isinstance(live, set) else None


def grid_brought_forward(state: Any, ids: list[str], accept: Any, live: set[str]) -> Any | None:
    """A ``BasicVariantGenerator`` restored from ``state`` and brought forward, by handing out
    trials as Tune would, until it has handed out exactly ``ids``; ``accept(trial)`` checks each
    trial it hands out. ``live``: the trials it then counts as running (Tune tells it when each
    ends). ``None`` when ``state`` cannot get there."""
    from ray.tune.search.basic_variant import BasicVariantGenerator

    given = grid_handed_out(state)
    if given is None or not set(given) <= set(ids):
        return None
    missing = sorted(set(ids) - set(given))  # zero-padded numbers: the order they were handed out
    generator = BasicVariantGenerator()
    generator.set_state(dict(state))  # type: ignore[no-untyped-call]
    limit, generator.max_concurrent = generator.max_concurrent, 0
    for expected in missing:
        trial = generator.next_trial()  # type: ignore[no-untyped-call]
        if trial is None or trial.trial_id != expected or not accept(trial):
            return None
    generator.max_concurrent = limit
    generator._live_trials = set(live)
    return generator


def _tune_state_problems() -> list[str]:
    try:
        from ray.tune.search.basic_variant import BasicVariantGenerator, _TrialIterator
    except ImportError as exc:
        return [f"cannot import Tune's grid search algorithm: {exc}"]
    found = []
    if _GRID_TRIAL_ID not in _source(_TrialIterator.create_trial):
        found.append("Tune's grid trial ids are not uuid_prefix + counter any more")
    src = _source(BasicVariantGenerator.next_trial)
    if "self._live_trials" not in src or "self.max_concurrent" not in src:
        found.append("BasicVariantGenerator no longer counts _live_trials against max_concurrent")
    return found
