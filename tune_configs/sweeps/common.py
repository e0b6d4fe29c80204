"""What every sweep module shares: budgets, Tuner construction, resume, progress, summaries.

A sweep module in ``tune_configs/`` (``paper_grid``, ``static_grid``, ``optuna_reward``,
``optuna_static``, ``quickstart``) exposes, importable without running anything:

* ``NAME`` (the CLI name), ``DESCRIPTION``, ``METRICS``/``MODES`` (what the sweep optimises or
  reports), ``SPACE`` and ``STOP`` (the paper budget's search space and stop condition),
* ``param_space(budget)``, ``stop(budget)``, and
* ``SETTINGS`` (:mod:`tune_configs.sweeps.settings`): every ``--set`` key, its type and range,
  checked by :func:`check_settings` before anything runs,
* ``build_tuner(budget="small", storage="./results", name=None, resume=False, **options)``
  returning a ``ray.tune.Tuner`` (Ray must be initialised first, see
  :func:`tune_configs.ops.runtime.init_ray`), and ``report(results, exp_dir) -> dict`` (optional).

:func:`make_tuner` builds or restores the Tuner with the common run config: results under
``storage/name``, short trial directories (:func:`tune_configs.trials.trial_dirname`), a crashed
trial retried up to :data:`tune_configs.trials.MAX_FAILURES` times from its last checkpoint,
``verbose=0`` plus the compact :class:`tune_configs.sweeps.progress.ProgressPrinter`.
``resume=True``
continues an interrupted experiment without redoing finished trials (errored ones are retried).
:func:`optuna_tuner` does the same for an Optuna sweep on its stored study
(:mod:`tune_configs.sweeps.study`), and :func:`write_static_front` gives a PPO sweep's experiment
the static front of its scenario.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tune_configs.sweeps.settings import Setting, pick

BUDGETS = ("small", "paper")
DEFAULT_STORAGE = "./results"

# The paper's reward settings (docs/model/cell.md#reward): delta without penalty, then nonzero
# penalties.
PAPER_DELTAS: tuple[float, ...] = (0.9, 0.8, 0.7, 0.6, 0.5, 0.3, 0.1)
PAPER_PENALTIES: tuple[float, ...] = (0.0, -1.0, -5.0)

# The three objectives of every search (served % up, sync delay down, E2E delay down).
OBJECTIVES: tuple[str, ...] = ("eval/served_pct", "eval/sync_delay", "eval/e2e_delay")
OBJECTIVE_MODES: tuple[str, ...] = ("max", "min", "min")
GRID_STEP = 0.1  # the static grid's step (121 splits)

# the settings of every PPO trial of a reward sweep (see ppo_constants)
PPO_SETTINGS: tuple[Setting, ...] = pick(
    "controller",
    "preset",
    "obs_mode",
    "timesteps",
    "eval_episodes",
    "eval_seed",
    "hparams",
    "env",
    "resources",
    "checkpoint_every",
    "tb_replay",
)

# the settings of every Optuna sweep's study (tune_configs.sweeps.study)
STUDY_SETTINGS: tuple[Setting, ...] = pick("optuna_storage", "study", "sampler")


def check_budget(budget: str) -> str:
    if budget not in BUDGETS:
        raise ValueError(f"budget must be one of {BUDGETS}, got {budget!r}")
    return budget


def check_settings(module: Any, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A sweep module's ``--set`` overrides, validated against its ``SETTINGS``."""
    from tune_configs.sweeps.settings import check_overrides

    return check_overrides(module.NAME, module.SETTINGS, overrides)


def preflight(module: Any, budget: str, overrides: Mapping[str, Any]) -> int:
    """Resolve every trial config of a sweep as its trial would (:func:`tune_configs.trials.
    check_trial`), before Ray starts: ``ValueError`` saying what is wrong. Each value of a
    ``grid_search`` is checked once (with the first value of every other grid). Returns the
    number of configs checked."""
    from tune_configs.trials import check_trial

    try:
        space = module.param_space(budget, **overrides)
    except (TypeError, KeyError, AttributeError) as exc:
        raise ValueError(f"invalid settings ({type(exc).__name__}: {exc})") from None
    grids = {k: v["grid_search"] for k, v in space.items()
             if isinstance(v, dict) and "grid_search" in v}  # fmt: skip
    base = {k: (grids[k][0] if grids.get(k) else v) for k, v in space.items()}
    configs = [base] + [{**base, k: value} for k, values in grids.items() for value in values[1:]]
    for config in configs:
        check_trial(config)
    return len(configs)


# an OSError's text when a device is full (ENOSPC), as Python and pyarrow word it
DISK_FULL_WORDS = ("No space left on device", "[Errno 28]", "errno 28")
LOW_SPACE_BYTES = 256 * 1024


def disk_full(exp: str | Path) -> str | None:
    """Why the experiment ``exp`` stopped if its disk is full, naming the path, else None.

    Looks at the trials' ``error.txt`` for an ``ENOSPC`` error (the path that could not be
    written), then at the free space of the file system holding ``exp``.
    """
    d = Path(exp)
    for err in sorted(d.glob("*/error.txt")):
        try:
            text = err.read_text(errors="replace")
        except OSError:
            continue
        lines = [ln.strip() for ln in text.splitlines() if any(w in ln for w in DISK_FULL_WORDS)]
        if lines:
            return f"no space left on the device holding {d}: {lines[-1]}"
    probe = d if d.exists() else d.parent
    try:
        st = os.statvfs(probe)
    except OSError:
        return None
    free = st.f_bavail * st.f_frsize
    if free < LOW_SPACE_BYTES:
        return f"no space left on the device holding {d} ({free:,} bytes free)"
    return None


def experiment_dir(storage: str | Path, name: str) -> Path:
    return Path(storage).expanduser().resolve() / name


def make_tuner(
    *,
    param_space: Mapping[str, Any],
    storage: str | Path,
    name: str,
    resume: bool,
    stop: Mapping[str, Any] | None = None,
    search_alg: Any = None,
    make_search_alg: Callable[[], Any] | None = None,
    num_samples: int = 1,
    max_concurrent_trials: int | None = None,
    total_trials: int | None = None,
    checkpoint_keep: int = 1,
    progress: bool = True,
    reuse_actors: bool = False,
) -> Any:
    """A new ``tune.Tuner`` (or the restored one when ``resume``) with the common run config.

    ``make_search_alg``: builds the search algorithm of a new experiment once its directory is
    known to be empty (an Optuna sweep's study file and database go into it).
    """
    from ray import tune

    from analysis.resultset import command_line
    from tune_configs.ops.runtime import use_tune_env
    from tune_configs.ops.storage import remove_leftovers, whole_file_system
    from tune_configs.ops.sweeplock import has_content
    from tune_configs.ops.tune_state import mend as mend_saved_state
    from tune_configs.trials import MAX_FAILURES, trainable, trial_dirname, trial_name

    use_tune_env()  # legacy output (honours verbose=0); eval/* only in a trial's last report
    # The trials' run.json record the sweep's command line, not the worker's.
    param_space = {**param_space, "driver_command": command_line()}
    exp = experiment_dir(storage, name)
    trainable_fn = trainable()
    # Tune copies its state and every trial's logs into the storage again and again: into a
    # full disk, a plain local copy cuts finished trials' result.json; this one cuts nothing
    # (ops/storage.py).
    fs = whole_file_system()
    if resume:
        # A driver killed while Tune copied its state leaves it cut or mixed: mended, or refused
        # by name (tune_state.StateProblem), before Tune reads it.
        for note in mend_saved_state(exp):
            print(f"resume: {note}", flush=True)
        if n := remove_leftovers(exp):
            print(f"resume: removed {n} file(s) a killed driver was still writing", flush=True)
        if not tune.Tuner.can_restore(str(exp), storage_filesystem=fs):
            raise ValueError(f"nothing to resume in {exp} (no Tune experiment state there)")
        return tune.Tuner.restore(
            str(exp), trainable_fn, resume_unfinished=True, resume_errored=True,
            param_space=dict(param_space), storage_filesystem=fs,
        )  # fmt: skip
    if has_content(exp):
        raise ValueError(
            f"experiment directory {exp} exists already: pass --resume to continue it or "
            "--name for a new experiment"
        )
    if make_search_alg is not None:
        search_alg = make_search_alg()
    from tune_configs.ops.keeper import StateKeeper

    # a whole copy of Tune's newest save, which --resume falls back on (tune_state.keep)
    callbacks: list[Any] = [StateKeeper()]
    if progress:
        from tune_configs.sweeps.progress import ProgressPrinter

        callbacks.append(ProgressPrinter(trial_dirname, MAX_FAILURES, total=total_trials))
    run_config = tune.RunConfig(
        name=name,
        storage_path=str(exp.parent),
        storage_filesystem=fs,
        stop=dict(stop) if stop else None,
        failure_config=tune.FailureConfig(max_failures=MAX_FAILURES),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=checkpoint_keep),
        verbose=0,
        callbacks=callbacks,
    )
    tune_config = tune.TuneConfig(
        search_alg=search_alg,
        num_samples=num_samples,
        max_concurrent_trials=max_concurrent_trials,
        trial_dirname_creator=trial_dirname,
        trial_name_creator=trial_name,
        reuse_actors=reuse_actors,
    )
    return tune.Tuner(
        trainable_fn, param_space=dict(param_space), tune_config=tune_config, run_config=run_config
    )


def grid_size(space: Mapping[str, Any]) -> int:
    """Number of trials a ``grid_search`` space expands to (one sample)."""
    n = 1
    for value in space.values():
        if isinstance(value, dict) and set(value) == {"grid_search"}:
            n *= len(value["grid_search"])
    return n


def results_table(results: Any) -> list[dict[str, Any]]:
    """Per trial: its config's key fields plus the final ``eval/*`` metrics (a list of dicts)."""
    from tune_configs.trials import trial_config

    rows = []
    for res in results:
        if res.metrics is None or not isinstance(res.config, Mapping):
            continue  # a trial that never started (a sweep interrupted with Ctrl-C)
        try:
            cfg = trial_config(res.config)
        except ValueError:
            continue
        row: dict[str, Any] = {"trial": Path(res.path).name, "kind": cfg["kind"]}
        for key in ("delta", "penalty", "seed", "w_b", "w_c", "timesteps"):
            if key in cfg:
                row[key] = cfg[key]
        row.update({k: v for k, v in res.metrics.items() if k.startswith("eval/")})
        if res.error is not None:
            row["error"] = str(res.error).splitlines()[0][:200]
        rows.append(row)
    return rows


def print_table(rows: Sequence[Mapping[str, Any]], out: Any = None) -> None:
    """A compact text table of :func:`results_table` rows that have evaluation metrics."""
    out = out or sys.stdout
    rows = [r for r in rows if "eval/served_pct" in r]
    if not rows:
        return
    head = f"{'trial':<44} {'served %':>9} {'sync':>7} {'e2e':>7} {'w_b':>6} {'w_c':>6}"
    print(head, file=out)
    print("-" * len(head), file=out)
    for r in sorted(rows, key=lambda r: str(r["trial"])):

        def f(key: str, spec: str, r: Mapping[str, Any] = r) -> str:
            v = r.get(key)
            return "n/a" if v is None else format(v, spec)

        print(
            f"{str(r['trial'])[:44]:<44} {f('eval/served_pct', '9.2f')} "
            f"{f('eval/sync_delay', '7.2f')} {f('eval/e2e_delay', '7.2f')} "
            f"{f('eval/mean_w_b', '6.2f')} {f('eval/mean_w_c', '6.2f')}",
            file=out,
        )


def grid_sweep(
    sweep_name: str,
    param_space: Callable[..., dict[str, Any]],
    stop: Callable[..., dict[str, Any] | None],
    *,
    reuse_actors: bool = False,
) -> tuple[Callable[..., int], Callable[..., Any]]:
    """``(total_trials, build_tuner)`` of a grid sweep module from its space and stop condition.

    Both take ``budget`` and the module's budget overrides (``--set``), like the module's own
    ``param_space(budget, **overrides)`` and ``stop(budget, **overrides)``.
    """

    def total_trials(budget: str = "small", **overrides: Any) -> int:
        """Number of trials the sweep runs for a budget."""
        return grid_size(param_space(budget, **overrides))

    def build_tuner(
        budget: str = "small",
        storage: str | Path = "./results",
        name: str | None = None,
        resume: bool = False,
        max_concurrent_trials: int | None = None,
        progress: bool = True,
        **overrides: Any,
    ) -> Any:
        """The Tuner of this sweep (Ray must be initialised)."""
        space = param_space(budget, **overrides)
        return make_tuner(
            param_space=space,
            storage=storage,
            name=name or f"{sweep_name}-{budget}",
            resume=resume,
            stop=stop(budget, **overrides),
            max_concurrent_trials=max_concurrent_trials,
            total_trials=grid_size(space),
            progress=progress,
            reuse_actors=reuse_actors,
        )

    return total_trials, build_tuner


def optuna_samples(budgets: Mapping[str, Mapping[str, Any]], budget: str, **overrides: Any) -> int:
    """Trials (Optuna samples) of an Optuna sweep for a budget (``--set samples=N`` wins)."""
    return int(overrides.get("samples", budgets[check_budget(budget)]["samples"]))


def optuna_searcher(search_space: Mapping[str, Any], spec: Any) -> Any:
    """Tune's OptunaSearch, multi-objective over :data:`OBJECTIVES`, on the stored study of
    ``spec`` (:class:`tune_configs.sweeps.study.StudySpec`: storage, study name, seeded sampler,
    points enqueued first), each Optuna trial linked to its Tune trial
    (:class:`tune_configs.sweeps.searcher.StudySearch`)."""
    import optuna

    from tune_configs.sweeps.searcher import StudySearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return StudySearch(search_space, spec, OBJECTIVES, OBJECTIVE_MODES)


def optuna_tuner(
    module: Any,
    *,
    budget: str,
    storage: str | Path,
    name: str | None,
    resume: bool,
    max_concurrent_trials: int | None,
    progress: bool,
    space: Mapping[str, Any],
    stop: Mapping[str, Any] | None,
    points: Sequence[Mapping[str, float]] = (),
    seed_key: str = "sampler_seed",
    reuse_actors: bool = False,
    **overrides: Any,
) -> Any:
    """The Tuner of an Optuna sweep ``module`` on its stored study (Ray must be initialised).

    A new experiment records its study (:func:`tune_configs.sweeps.study.write_study_file`) and
    creates or joins it; ``resume`` restores Tune's searcher, which reconnects to the same study.
    """
    from tune_configs.sweeps.study import study_spec, write_study_file

    name = name or f"{module.NAME}-{budget}"
    n = optuna_samples(module.BUDGETS, budget, **overrides)
    startup = int(module.BUDGETS[check_budget(budget)]["startup"])
    spec = study_spec(overrides, experiment_dir(storage, name), name, startup, points,
                      seed_key=seed_key)  # fmt: skip

    def make_search_alg() -> Any:
        write_study_file(spec, module.NAME, OBJECTIVES, OBJECTIVE_MODES, space)
        return optuna_searcher(module.SEARCH_SPACE, spec)

    return make_tuner(
        param_space=space, storage=storage, name=name, resume=resume, stop=stop,
        make_search_alg=make_search_alg, num_samples=n, max_concurrent_trials=max_concurrent_trials,
        total_trials=n, progress=progress, reuse_actors=reuse_actors,
    )  # fmt: skip


# --- what the reward sweeps share (paper-grid, quickstart, optuna-reward) and the static grid --
def split_blocks(step: float, n_blocks: int) -> list[list[list[float]]]:
    """The grid's splits in ``n_blocks`` blocks of whole ``w_b`` rows (w_b major)."""
    from envs.core.policies import grid_values

    values = [float(v) for v in grid_values(step)]
    n_blocks = max(1, min(n_blocks, len(values)))
    rows = [[[b, c] for c in values] for b in values]
    size = -(-len(rows) // n_blocks)
    return [[s for row in rows[i : i + size] for s in row] for i in range(0, len(rows), size)]


def ppo_constants(
    budgets: Mapping[str, Mapping[str, Any]], budget: str, **overrides: Any
) -> dict[str, Any]:
    """Non-searched keys of a PPO trial config for a sweep's ``budgets[budget]`` and overrides
    (see :mod:`tune_configs.trials`)."""
    b = {**budgets[check_budget(budget)], **overrides}
    return {
        "kind": "ppo",
        "budget": budget,
        "controller": str(b.get("controller", "single")),
        "preset": b.get("preset", "paper"),
        "obs_mode": b.get("obs_mode", "log1p"),
        "timesteps": int(b["timesteps"]),
        "eval_episodes": int(b["eval_episodes"]),
        "eval_seed": int(b.get("eval_seed", 0)),
        "hparams": dict(b.get("hparams", {})),
        "env": dict(b.get("env", {})),
        "resources": dict(b.get("resources", {})),
        "checkpoint_every": int(b.get("checkpoint_every", 10)),
        "tb_replay": bool(b.get("tb_replay", False)),
    }


def reward_jobs(
    rewards: list[tuple[float, float]],
    seeds: list[int],
    with_static: bool = True,
    grid_step: float | None = None,
    seeds_per_trial: int = 1,
) -> list[dict[str, Any]]:
    """Trial specs: (optionally) one static-grid trial per reward, then PPO per reward x seed,
    ``seeds_per_trial`` training seeds in one trial (trained one after the other in one
    process, :func:`tune_configs.trials.run_trial`: fixed per-trial costs paid once).

    The static trials come first so that, with trials in parallel, the baseline is done before
    (or while) the PPO trials run. Each evaluates the whole 0.1 grid plus the heuristic and
    queue-aware rules under that reward (delays and served % are reward-independent; the return
    is not).
    """
    jobs: list[dict[str, Any]] = []
    if with_static:
        splits = split_blocks(GRID_STEP if grid_step is None else float(grid_step), 1)[0]
        jobs += [
            {"kind": "static", "block": 0, "splits": splits, "baselines": True, "delta": d,
             "penalty": p}
            for d, p in rewards
        ]  # fmt: skip
    k = max(1, int(seeds_per_trial))
    chunks = [[int(s) for s in seeds[i : i + k]] for i in range(0, len(seeds), k)]
    jobs += [
        {"kind": "ppo", "delta": d, "penalty": p,
         **({"seed": c[0]} if len(c) == 1 else {"seeds": c})}
        for d, p in rewards for c in chunks
    ]  # fmt: skip
    return jobs


STATIC_FRONT_DIR = "static_front"


def write_static_front(
    exp_dir: str | Path, constants: Mapping[str, Any], delta: float = 0.9, penalty: float = 0.0
) -> Path:
    """The static grid (0.1 step, 121 splits) and the rule-based baselines of a PPO sweep's
    scenario, evaluated with the batched evaluator on the sweep's evaluation episodes
    (``eval_episodes`` from ``eval_seed``), as a result set in ``<exp_dir>/static_front``: the
    front ``launch report`` places the sweep's policies against. Delays and served % do not
    depend on the reward; the returns are those of ``(delta, penalty)``. Kept if it exists."""
    import time

    from analysis.resultset import run_metadata, write_result_set
    from envs.core.batch import evaluate
    from envs.core.policies import heuristic, queue_aware, static_grid
    from tune_configs.env import params_from_env_config
    from tune_configs.trials import env_config_of

    out = Path(exp_dir) / STATIC_FRONT_DIR
    if (out / "summary.json").is_file():
        return out
    cfg = {"preset": "paper", **dict(constants), "delta": delta, "penalty": penalty}
    env_config = env_config_of(cfg)
    env_config.pop("obs_mode", None)
    params = params_from_env_config(env_config)
    episodes, seed = int(cfg.get("eval_episodes", 100)), int(cfg.get("eval_seed", 0))
    t0 = time.perf_counter()
    result = evaluate(params, [*static_grid(GRID_STEP), heuristic(params), queue_aware()],
                      episodes, seed)  # fmt: skip
    meta = run_metadata(
        "static", params, preset=str(env_config["preset"]), seed=seed, episodes=episodes,
        elapsed_s=round(time.perf_counter() - t0, 3), env_config=env_config,
        grid_step=GRID_STEP, role_in_sweep="static front of an Optuna sweep",
    )  # fmt: skip
    write_result_set(out, meta, result.episode_rows(preset=str(env_config["preset"])))
    return out
