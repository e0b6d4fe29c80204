"""The chaos soak: the paper study on a local 2-node cluster while a seeded killer keeps killing.

Run by the slow test ``tests/tune_configs/ops/test_chaos_soak.py`` at the CI budget, and by hand
at any budget (the results go to ``docs/studies/chaos-soak.md``)::

    python -m tests.helpers.chaos --budget ci --kills 3 --out /tmp/soak-ci
    python -m tests.helpers.chaos --budget grid --kills 5 --seed 1 --out /tmp/soak-grid
    python -m tests.helpers.chaos --budget paper --kills 5 --out /tmp/soak-paper

What happens (:func:`soak`):

1. ``launch cluster up --workers 1`` (head + one worker, one CPU each, loopback, token auth), its
   nodes started with a trial barrier (:mod:`tune_configs.ops.barrier`) in their environment.
2. **Calm run**: the study (``launch sweep paper-grid ...``, :data:`STUDIES`) with the barrier
   open, to completion. Its arrivals at the barrier tell how many barrier points the study has.
3. **Chaos run**: the same study under another experiment name with the barrier closed. The
   killer (:class:`Killer`) looks at every arrival of a trial at a barrier point (a trial's start,
   each training seed done, its end) and, drawing from a seeded generator, either lets it pass
   or kills, before letting anything else pass:

   * ``driver``: SIGKILL of the sweep driver's process group (the driver and its Tune trials go);
     the driver is started again with ``--resume``;
   * ``worker``: every process of the worker node (``cluster down --node worker-1 --force``), the
     node then started again (``cluster restart``) while the study goes on on the head; allowed
     only while a trial runs on the worker;
   * ``trial``: SIGKILL of the Ray worker process running the arriving trial; Tune retries it
     from its last checkpoint.

   Each kind is killed ``kills`` times at arrival numbers drawn before the run (:class:`Killer`);
   a trial is hit by at most ``MAX_FAILURES`` (2) trial or worker kills, the retries Tune grants
   it (a driver kill is no failure of a trial: ``--resume`` restarts it).
4. **Comparison** (:func:`compare`): trials matched by their label (reward setting and seeds),
   every result set's ``episodes.csv`` compared byte for byte; a result set whose training resumed
   from a mid-run checkpoint (``run.json``'s ``resumed_from_steps`` > 0) may differ and is
   counted as flagged; ``launch report`` of the chaos run lists every result set once, with no
   duplicated row.

Choice for the paper study: its trials train several seeds one after the other and checkpoint
the list of seeds done, so a trial cut off mid-seed trains that seed again from scratch (same
seed, same run): every row is expected identical, none flagged. Single-seed trials with mid-run
checkpoints (``checkpoint_every``) resume mid-training and are flagged instead.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tests.helpers.drills import (
    ROOT,
    client_env,
    experiment_trials,
    launch,
    local_cluster,
    tail,
)
from tune_configs.ops.barrier import Arrival, Barrier
from tune_configs.ops.cluster import (
    ClusterState,
    load_state,
    node_processes,
)
from tune_configs.trials import MAX_FAILURES

KINDS = ("driver", "worker", "trial")
PLAN_SHARE = 0.7  # the kills are planned over this share of the calm run's arrivals
WORKER = "worker-1"

# The paper study (``paper-grid --budget paper``: 21 reward settings, 10 seeds, 5 per trial,
# 60k steps); ``ci``, reduced to fit CI: 6 settings, 6 seeds in trials of 3, 8k steps, 20
# evaluation episodes (static and PPO); ``grid``: the same on all 21 settings (room for more
# kills).
STUDIES: dict[str, list[str]] = {
    "paper": ["paper-grid", "--budget", "paper"],
    "ci": [
        "paper-grid", "--budget", "paper",
        "--set", "deltas=[0.9, 0.5, 0.1]", "--set", "penalties=[0, -5]",
        "--set", "seeds=[0, 1, 2, 3, 4, 5]", "--set", "seeds_per_trial=3",
        "--set", "timesteps=8000", "--set", "eval_episodes=20", "--set", "episodes=20",
    ],
    "grid": [
        "paper-grid", "--budget", "paper",
        "--set", "seeds=[0, 1, 2, 3, 4, 5]", "--set", "seeds_per_trial=3",
        "--set", "timesteps=8000", "--set", "eval_episodes=20", "--set", "episodes=20",
    ],
}  # fmt: skip


@dataclass
class Kill:
    kind: str
    at: str  # the arrival key (trial@event#n)
    t: float  # seconds since the chaos run started
    trials: list[str] = field(default_factory=list)  # trials hit (driver: every running one)


@dataclass
class SoakResult:
    study: str
    seed: int
    kills_per_kind: int
    calm_s: float = 0.0
    chaos_s: float = 0.0
    calm_arrivals: int = 0
    chaos_arrivals: int = 0
    kills: list[Kill] = field(default_factory=list)
    driver_starts: int = 0
    worker_restarts: int = 0
    comparison: dict[str, Any] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {k: sum(1 for x in self.kills if x.kind == k) for k in KINDS}

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "kill_counts": self.counts()}


# ------------------------------------------------------------------------------------------
# The cluster


# ------------------------------------------------------------------------------------------
# The killer


class Driver:
    """The sweep's driver process (own session), started again with ``--resume`` after a kill."""

    def __init__(self, args: list[str], env: dict[str, str], logs: Path) -> None:
        self.args, self.env, self.logs = args, env, logs
        self.starts = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.logs / f"driver-{self.starts}.log"

    def start(self) -> None:
        extra = ["--resume"] if self.starts else []
        self.starts += 1
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "launch", *self.args, *extra], cwd=ROOT, env=self.env,
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    def kill(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=120)

    def poll(self) -> int | None:
        return None if self.proc is None else self.proc.poll()


def worker_pids(state: ClusterState) -> set[int]:
    """Pids of the worker node's processes now (its record is re-read: a restart changes it)."""
    current = load_state(Path(state.directory)) or state
    return {p.pid for p in node_processes(current.node(WORKER))}


class Killer:
    """Decides, for every arrival at the barrier, whether to let it pass or to kill.

    The plan is drawn from a seeded generator before the run: ``kills`` kills of each kind, in a
    shuffled order, at distinct arrival numbers spread over the first :data:`PLAN_SHARE` of the
    arrivals the calm run had. A planned kill that is not possible when its turn comes (a trial
    kill of a trial that took its ``MAX_FAILURES`` already; a worker kill while no trial runs on
    the worker) waits for the next arrival at which it is, so every planned kill happens unless
    the study ends first (then the soak reports the kills it could not do); meanwhile the kills
    due after it may go first.
    """

    def __init__(
        self, kills: int, expected: int, seed: int, state: ClusterState,
        say: Callable[[str], None],
    ) -> None:  # fmt: skip
        rng = random.Random(seed)
        kinds = [k for k in KINDS for _ in range(kills)]
        rng.shuffle(kinds)
        span = max(int(expected * PLAN_SHARE), len(kinds) + 1)
        at = sorted(rng.sample(range(1, span + 1), len(kinds)))
        self.plan: list[tuple[int, str]] = list(zip(at, kinds, strict=True))
        self.state = state
        self.say = say
        self.hits: Counter[str] = Counter()  # trial -> trial or worker kills it took

    def _possible(self, kind: str, arrival: Arrival, running: dict[str, Arrival]) -> bool:
        if kind == "driver":
            return True
        if kind == "trial":
            return self.hits[arrival.trial] < MAX_FAILURES
        on_worker = worker_pids(self.state)
        hit = [a for a in running.values() if a.pid in on_worker]
        return bool(hit) and all(self.hits[a.trial] < MAX_FAILURES for a in hit)

    def choose(
        self, arrival: Arrival, seen: int, running: dict[str, Arrival], restarting: bool
    ) -> str | None:
        """The kind of kill at this arrival (the ``seen``-th), or None (let it pass): the first
        kill due by the plan that is possible now (no worker kill while the worker restarts)."""
        for i, (at, kind) in enumerate(self.plan):
            if at > seen:
                break
            if (kind != "worker" or not restarting) and self._possible(kind, arrival, running):
                del self.plan[i]
                return kind
        return None


def chaos_run(
    state: ClusterState, barrier: Barrier, args: list[str], exp: Path, logs: Path,
    killer: Killer, result: SoakResult, timeout: float,
) -> None:  # fmt: skip
    """Run the study under ``killer`` until the driver ends cleanly (see the module docstring)."""
    barrier.reset()
    driver = Driver(args, client_env(state), logs)
    restart: subprocess.Popen[bytes] | None = None
    handled: set[str] = set()
    running: dict[str, Arrival] = {}  # trial -> its latest arrival (held or let through)
    t0 = time.monotonic()
    driver.start()
    try:
        while True:
            if time.monotonic() - t0 > timeout:
                raise AssertionError(f"chaos run over {timeout:.0f} s:\n{tail(driver.log)}")
            rc = driver.poll()
            if rc is not None:
                if rc == 0:
                    break
                raise AssertionError(f"the driver failed ({rc}):\n{tail(driver.log)}")
            if restart is not None and restart.poll() is not None:
                if restart.returncode != 0:
                    raise AssertionError(f"cluster restart failed:\n{tail(logs / 'restart.log')}")
                restart = None
                result.worker_restarts += 1
            if running:  # forget trials that ended (Tune's saved experiment state)
                states = experiment_trials(exp)
                for t in [t for t in running if states.get(t, {}).get("status") == "TERMINATED"]:
                    del running[t]
            for arrival in barrier.arrivals():
                if arrival.key in handled:
                    continue
                handled.add(arrival.key)
                running[arrival.trial] = arrival
                kind = killer.choose(arrival, len(handled), running, restart is not None)
                if kind is None:
                    barrier.release(arrival)
                    continue
                kill = Kill(kind, arrival.key, round(time.monotonic() - t0, 1))
                if kind == "driver":
                    kill.trials = sorted(running)
                    driver.kill()
                    running.clear()
                    driver.start()
                elif kind == "worker":
                    doomed = worker_pids(state)
                    kill.trials = sorted(t for t, a in running.items() if a.pid in doomed)
                    down = launch("cluster", "down", "--node", WORKER, "--force",
                                  "--dir", state.directory)  # fmt: skip
                    assert down.returncode == 0, down.stdout + down.stderr
                    with open(logs / "restart.log", "ab") as out:
                        restart = subprocess.Popen(
                            [sys.executable, "-m", "launch", "cluster", "restart", "--node",
                             WORKER, "--dir", state.directory],
                            cwd=ROOT, env={**os.environ, **barrier.env()},
                            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                        )  # fmt: skip
                    for t in kill.trials:
                        running.pop(t, None)
                        killer.hits[t] += 1
                    barrier.release(arrival)  # if it was on the head, it goes on
                else:
                    kill.trials = [arrival.trial]
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(arrival.pid, signal.SIGKILL)
                    running.pop(arrival.trial, None)
                    killer.hits[arrival.trial] += 1
                result.kills.append(kill)
                killer.say(f"[{kill.t:7.1f} s] kill {kind:<6} at {arrival.key} -> {kill.trials}")
            time.sleep(0.1)
        if restart is not None:  # let the worker come back before the calm checks
            restart.wait(timeout=300)
            result.worker_restarts += 1
    finally:
        driver.kill()
        if restart is not None and restart.poll() is None:
            restart.kill()
            restart.wait()
        barrier.open()
    result.chaos_s = round(time.monotonic() - t0, 1)
    result.chaos_arrivals = len(handled)
    result.driver_starts = driver.starts


# ------------------------------------------------------------------------------------------
# Comparison


TRIAL_ID = re.compile(r"_[0-9a-f]{5}_[0-9]{5}$")


def trial_label(trial_dir: Path) -> str:
    """The trial's directory name without Tune's trial id (``<label>_<experiment>_<index>``)."""
    return TRIAL_ID.sub("", trial_dir.name)


def result_sets(trial_dir: Path) -> dict[str, Path]:
    """Relative path (``.`` or ``seed_<k>``) -> directory, for every result set of a trial."""
    return {
        str(p.parent.relative_to(trial_dir)): p.parent
        for p in sorted(trial_dir.rglob("run.json"))
        if "checkpoint" not in p.parts
    }


def trials_by_label(exp: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for d in sorted(p for p in exp.iterdir() if p.is_dir() and result_sets(p)):
        label = trial_label(d)
        if label in out:
            raise AssertionError(
                f"two trials labelled {label} in {exp}: {out[label].name}, {d.name}"
            )
        out[label] = d
    return out


def compare(calm: Path, chaos: Path) -> dict[str, Any]:
    """Result sets of the two runs of one study: identical, flagged (resumed) or different."""
    a, b = trials_by_label(calm), trials_by_label(chaos)
    out: dict[str, Any] = {
        "trials": len(a), "missing": sorted(set(a) - set(b)), "extra": sorted(set(b) - set(a)),
        "result_sets": 0, "identical": 0, "flagged": [], "different": [],
    }  # fmt: skip
    for label in sorted(set(a) & set(b)):
        sa, sb = result_sets(a[label]), result_sets(b[label])
        if set(sa) != set(sb):
            out["different"].append(f"{label}: result sets {sorted(sa)} vs {sorted(sb)}")
            continue
        for rel in sorted(sa):
            out["result_sets"] += 1
            same = (sa[rel] / "episodes.csv").read_bytes() == (
                sb[rel] / "episodes.csv"
            ).read_bytes()
            resumed = json.loads((sb[rel] / "run.json").read_text()).get("resumed_from_steps", 0)
            if same:
                out["identical"] += 1
            elif resumed:
                out["flagged"].append(f"{label}/{rel}")
            else:
                out["different"].append(f"{label}/{rel}")
    return out


def check_report(exp: Path, env: dict[str, str]) -> dict[str, Any]:
    """``launch report`` of a run: every result set read once, no duplicated row."""
    import pandas as pd

    r = launch("report", str(exp), env=env)
    if r.returncode != 0:
        raise AssertionError(f"launch report failed:\n{r.stdout}\n{r.stderr}")
    rows = pd.read_csv(exp / "results.csv", low_memory=False)
    dup = int(rows.duplicated(subset=["source", "policy", "seed"]).sum())
    return {"rows": len(rows), "sources": int(rows["source"].nunique()), "duplicated_rows": dup}


# ------------------------------------------------------------------------------------------
# The soak


def soak(
    study: str, kills: int, seed: int, out: Path, say: Callable[[str], None] = print,
    timeout: float = 3600.0,
) -> SoakResult:  # fmt: skip
    """Calm run, chaos run and their comparison (module docstring); writes ``out/soak.json``."""
    if study not in STUDIES:
        raise ValueError(f"unknown study {study!r}: choose one of {sorted(STUDIES)}")
    out.mkdir(parents=True, exist_ok=True)
    result = SoakResult(study=study, seed=seed, kills_per_kind=kills)
    # Short paths: Ray's unix sockets live below the cluster's temp dir.
    work = Path(tempfile.mkdtemp(prefix="mlr-soak-", dir="/tmp"))
    try:
        _soak_on_cluster(study, kills, seed, out, work, result, say, timeout)
    except BaseException:
        say(f"soak failed: its experiments (calm, chaos) are kept in {work}/cluster/storage")
        raise
    shutil.rmtree(work, ignore_errors=True)
    (out / "soak.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    say(summary(result))
    return result


def _soak_on_cluster(
    study: str, kills: int, seed: int, out: Path, work: Path, result: SoakResult,
    say: Callable[[str], None], timeout: float,
) -> None:  # fmt: skip
    barrier = Barrier(work / "barrier")
    barrier.open()
    env = {**os.environ, **barrier.env()}  # the nodes' trials see the barrier
    with local_cluster(work / "cluster", env, before_down=barrier.open) as state:
        storage = Path(state.storage)
        env = client_env(state)

        def sweep(name: str) -> list[str]:
            return ["sweep", *STUDIES[study], "--address", state.gcs_address,
                    "--storage", str(storage), "--name", name]  # fmt: skip

        say(f"calm run of the {study} study ...")
        t0 = time.monotonic()
        calm = launch(*sweep("calm"), env=env, timeout=timeout)
        if calm.returncode != 0:
            raise AssertionError(f"calm run failed:\n{calm.stdout[-3000:]}\n{calm.stderr[-3000:]}")
        result.calm_s = round(time.monotonic() - t0, 1)
        result.calm_arrivals = len(barrier.arrivals())
        say(f"  {result.calm_s:.0f} s, {result.calm_arrivals} barrier points")
        say(f"chaos run: {kills} kill(s) of each kind {KINDS}, seed {seed} ...")
        killer = Killer(kills, result.calm_arrivals, seed, state, say)
        chaos_run(state, barrier, sweep("chaos"), storage / "chaos", out, killer, result, timeout)
        say(f"  {result.chaos_s:.0f} s, kills {result.counts()}, driver starts "
            f"{result.driver_starts}, worker restarts {result.worker_restarts}")  # fmt: skip
        comparison = compare(storage / "calm", storage / "chaos")
        comparison["report_calm"] = check_report(storage / "calm", env)
        comparison["report_chaos"] = check_report(storage / "chaos", env)
        result.comparison = comparison


def summary(r: SoakResult) -> str:
    c = r.comparison
    return (
        f"chaos soak ({r.study}, seed {r.seed}): kills {r.counts()}, driver starts "
        f"{r.driver_starts}, worker restarts {r.worker_restarts}; calm {r.calm_s:.0f} s, chaos "
        f"{r.chaos_s:.0f} s; {c.get('trials')} trials, {c.get('result_sets')} result sets: "
        f"{c.get('identical')} identical, {len(c.get('flagged', []))} flagged (resumed), "
        f"{len(c.get('different', []))} different; missing {c.get('missing')}, extra "
        f"{c.get('extra')}; rows calm {c.get('report_calm', {}).get('rows')}, chaos "
        f"{c.get('report_chaos', {}).get('rows')} "
        f"({c.get('report_chaos', {}).get('duplicated_rows')} duplicated)"
    )


def main(argv: list[str] | None = None) -> int:
    doc = (__doc__ or "").split("\n")[0]
    p = argparse.ArgumentParser(prog="python -m tests.helpers.chaos", description=doc)
    p.add_argument("--budget", choices=sorted(STUDIES), default="ci", help="the study (default ci)")
    p.add_argument("--kills", type=int, default=3, help="kills of each kind (default 3)")
    p.add_argument("--seed", type=int, default=0, help="the killer's seed (default 0)")
    p.add_argument("--out", type=Path, required=True, help="directory for soak.json and logs")
    args = p.parse_args(argv)
    if args.kills < 0:
        p.error("--kills must be >= 0")
    r = soak(args.budget, args.kills, args.seed, args.out)
    c = r.comparison
    ok = not (c["missing"] or c["extra"] or c["different"] or c["report_chaos"]["duplicated_rows"])
    return 0 if ok and all(v >= args.kills for v in r.counts().values()) else 1


if __name__ == "__main__":
    sys.exit(main())
