"""Determinism canaries: fixed-seed fingerprints of the platform's numbers, kept in the repository.

Each case runs one piece of the platform on fixed seeds and reduces its output to numbers; the
fingerprint (:mod:`tests.helpers.fingerprint`) is a SHA-256 over those numbers rounded to a few
significant digits (6 for the simulator, whose float64 numbers agree to far more digits between
CPUs; 4 for the training run, whose float32 network updates go through CPU-specific BLAS kernels),
plus a short hash per metric name, so a failure names what changed. The golden records are in
``tests/golden/canaries.json``; ``tests/test_canaries.py`` checks them in the default suite.

Cases:

* ``static_grid``: the exhaustive static grid of the paper cell, 0.2 grid (36 splits) x 10
  episodes, batched evaluator, summaries per split;
* ``batched_evaluation``: the heuristic, the queue-aware rule and one static split on
  ``paper_dynamic``, 12 episodes each, every episode's metrics;
* ``episode_MetaLore-v0``, ``episode_MetaLorePool-v0``, ``episode_MultiCellPoolEnv``: one episode
  of each env (the single cell ``paper``, the credit pool ``three_cell_hetero`` and its per-cell
  multi-agent view) with seeded uniform random actions: every observation, reward, episode end
  and numeric info value (nothing of rendering);
* ``launch_train``: ``python -m launch train`` for 2,000 env steps (two iterations), then its
  5-episode evaluation: every iteration's metrics and losses, and the evaluation's summary.

A change that moves a number on purpose updates the golden file with one command (every case, or
the named ones) and says why in its commit::

    python -m tests.canaries --update [CASE ...]

Run ``python -m tests.canaries --update`` from the repository root with the project's venv
(about 20 s).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tests.helpers import fingerprint

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "canaries.json"
SIM_DIGITS = 6
TRAIN_DIGITS = 4


@dataclass(frozen=True)
class Case:
    run: Callable[[], Any]  # the output, any JSON-like value (numpy arrays allowed)
    digits: int = SIM_DIGITS
    ray: bool = False  # needs RLlib (a `ray` test)


def static_grid(params: Any = None) -> Any:
    from envs.core.batch import evaluate
    from envs.core.policies import static_grid as grid
    from envs.core.presets import make_params

    res = evaluate(params or make_params("paper"), grid(0.2), episodes=10, seed=4242)
    return res.summaries()


def batched_evaluation(params: Any = None) -> Any:
    from envs.core.batch import evaluate
    from envs.core.policies import heuristic, queue_aware, static
    from envs.core.presets import make_params

    p = params or make_params("paper_dynamic")
    res = evaluate(p, [heuristic(p), queue_aware(), static(0.3, 0.4)], episodes=12, seed=99)
    return res.episode_rows()


def _uniform(space: Any, rng: np.random.Generator) -> Any:
    return rng.uniform(space.low, space.high).astype(space.dtype)


def single_episode(env: Any, seed: int) -> dict[str, Any]:
    """One episode of a Gymnasium env with seeded uniform random actions."""
    rng = np.random.default_rng(seed)
    obs, info = env.reset(seed=seed)
    first = {"obs": obs, "info": info}
    steps: list[dict[str, Any]] = []
    done = False
    while not done:
        obs, reward, terminated, truncated, info = env.step(_uniform(env.action_space, rng))
        done = terminated or truncated
        steps.append({"obs": obs, "reward": reward, "end": int(done), "info": info})
    return {"reset": first, "steps": steps}


def multi_agent_episode(env: Any, seed: int) -> dict[str, Any]:
    """One episode of the parallel multi-agent env, every agent acting at random."""
    rng = np.random.default_rng(seed)
    obs, info = env.reset(seed=seed)
    first = {"obs": obs, "info": info}
    steps: list[dict[str, Any]] = []
    while env.agents:
        acts = {a: _uniform(env.action_space(a), rng) for a in env.possible_agents}
        obs, rewards, terms, truncs, info = env.step(acts)
        end = int(bool(terms.get("__all__")) or bool(truncs.get("__all__")))
        steps.append({"obs": obs, "reward": rewards, "end": end, "info": info})
        if end:
            break
    return {"reset": first, "steps": steps}


def episode_metalore(**overrides: Any) -> Any:
    import gymnasium as gym

    import envs  # noqa: F401  (registers the ids)

    with gym.make("MetaLore-v0", preset="paper", **overrides) as env:
        return single_episode(env.unwrapped, 11)


def episode_pool(**overrides: Any) -> Any:
    import gymnasium as gym

    import envs  # noqa: F401

    with gym.make("MetaLorePool-v0", preset="three_cell_hetero", **overrides) as env:
        return single_episode(env.unwrapped, 12)


def episode_multi_agent(**overrides: Any) -> Any:
    from envs.pool.multiagent import MultiCellPoolEnv

    return multi_agent_episode(MultiCellPoolEnv(preset="three_cell_hetero", **overrides), 13)


TRAIN_ARGS = [
    "train", "--timesteps", "2000", "--seed", "0", "--quiet", "--envs-per-runner", "8",
    "--hp", "train_batch_size=1000", "--hp", "minibatch_size=250", "--hp", "num_epochs=2",
    "--eval-episodes", "5", "--eval-seed", "500",
]  # fmt: skip
# progress.csv columns that measure time, not learning
_TIME_COLUMNS = ("time_this_iter_s", "time_total_s")


def launch_train(*extra: str) -> Any:
    """``python -m launch train`` (a subprocess, as users run it): per-iteration metrics and the
    final evaluation's summary."""
    import csv

    with tempfile.TemporaryDirectory(prefix="canary-train-") as tmp:
        out = Path(tmp) / "run"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get(
            "PYTHONPATH", "")]).rstrip(os.pathsep)}  # fmt: skip
        r = subprocess.run(
            [sys.executable, "-m", "launch", *TRAIN_ARGS, *extra, "--out", str(out)],
            cwd=ROOT, capture_output=True, text=True, timeout=600, env=env,
        )  # fmt: skip
        if r.returncode != 0:
            raise RuntimeError(f"launch train exited {r.returncode}:\n{r.stderr[-3000:]}")
        with (out / "progress.csv").open() as fh:
            iterations = [
                {k: float(v) for k, v in row.items() if k not in _TIME_COLUMNS and v != ""}
                for row in csv.DictReader(fh)
            ]
        summary = json.loads((out / "eval" / "summary.json").read_text())
    for s in summary:
        s.pop("episodes_sha256", None)  # a hash of the CSV's text, not a number
    return {"iterations": iterations, "evaluation": summary}


CASES: dict[str, Case] = {
    "static_grid": Case(static_grid),
    "batched_evaluation": Case(batched_evaluation),
    "episode_MetaLore-v0": Case(episode_metalore),
    "episode_MetaLorePool-v0": Case(episode_pool),
    "episode_MultiCellPoolEnv": Case(episode_multi_agent),
    "launch_train": Case(launch_train, digits=TRAIN_DIGITS, ray=True),
}


def measure(name: str, keys: Any = None) -> dict[str, Any]:
    """The fingerprint of case ``name`` (over the metric names ``keys``, default all)."""
    case = CASES[name]
    return fingerprint.digest(case.run(), keys, digits=case.digits)


def check(name: str, golden: Mapping[str, Any], output: Any) -> list[str]:
    """The differences of ``output`` (case ``name``'s) from its golden record, with the command
    that updates it; empty when the fingerprint is the golden one."""
    expected = golden[name]
    got = fingerprint.digest(output, expected["keys"], digits=CASES[name].digits)
    diff = fingerprint.differences({name: expected}, {name: got}, lambda n: f"canary {n}")
    if diff:
        diff.append(
            f"If on purpose: python -m tests.canaries --update {name}, and say why in the commit."
        )
    return diff


if __name__ == "__main__":
    fingerprint.update_main(GOLDEN, list(CASES), measure, "tests.canaries")
