"""The adaptivity study: policies on traffic variants against each variant's own static grid.

The paper's case for DRL is adaptivity: a policy that sees only the two queue lengths should find
a good split when the traffic changes, without an exhaustive search. This module tests that
(:mod:`analysis.adaptivity` classifies the results; ``python -m launch adapt`` is the command):

* :data:`VARIANTS`: the traffic variants. ``paper_dynamic`` (regimes switching within an episode,
  ``docs/model/traffic.md#the-paper_dynamic-preset``) and paper cells with other UE and sensor
  counts, job probabilities, job
  sizes and sensor intervals. :func:`held_out` says, field by field, whether a variant's traffic
  lies outside the ranges a policy was trained on (a randomised training scenario's ``rand_*``
  ranges; a fixed one's own values): a variant is *held out* when at least one of its traffic
  values lies outside them, strictly;
* :func:`run_variant`: one variant. The whole static grid plus the queue-aware rule (its default
  and the tuned :data:`TUNED_RULE`) through the batched evaluator (one result set, kind
  ``static``), then every candidate policy through
  :func:`tune_configs.controllers.evaluate_checkpoint` (one result set each, kind ``eval``), all
  on the episode seeds ``seed .. seed+episodes-1`` with the same reward. Every ``run.json``
  carries ``study: adaptivity``, the variant's name, note, overrides and held-out text, and for a
  policy its candidate name and group (``adaptive``, ``adaptive seed``, ``paper-only``), so
  ``launch report`` finds them;
* :func:`selection_table`: how a checkpoint is chosen, on *tuning* episode seeds only. Criterion
  ``return``: every checkpoint's mean episode return on ``paper_dynamic`` and on the paper cell
  with its traffic drawn per episode from the default ranges (:data:`SELECTION_SCENARIOS`), each
  relative to the best static split of the 0.1 grid on the same episodes, averaged over the two.
  Criterion ``placement`` (the study's own): the placement score against each scenario's static
  front (:func:`analysis.placement.place`) on ``paper_dynamic`` and the tuning variants
  :data:`TUNING_VARIANTS`, whose traffic lies inside the default training ranges, averaged.

Layout of a study directory: ``OUT/<variant>/static`` and ``OUT/<variant>/<candidate>``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from analysis.adaptivity import ADAPTIVE, ADAPTIVE_SEED, PAPER_ONLY, STUDY
from analysis.placement import StaticGrid

__all__ = [
    "ADAPTIVE", "ADAPTIVE_SEED", "CRITERIA", "PAPER_ONLY", "TUNING_VARIANTS", "VARIANTS",
    "Candidate", "StudySettings", "Variant", "get_variants", "held_out", "run_study",
    "run_variant", "selection_table",
]  # fmt: skip
from analysis.resultset import run_metadata, write_result_set
from envs.core.params import EnvParams
from envs.core.presets import make_params
from envs.core.seeds import STUDY_EVALUATION, STUDY_TUNING

# traffic value -> the randomisation range that covers it
# (docs/model/traffic.md#randomisation-across-episodes)
TRAFFIC_RANGES: dict[str, str] = {
    "n_ues": "rand_n_ues",
    "ue_job_prob": "rand_ue_job_prob",
    "ue_data_mean": "rand_ue_data_mean",
    "ue_compute_mean": "rand_ue_compute_mean",
    "sensor_data_mean": "rand_sensor_data_mean",
    "sensor_compute_mean": "rand_sensor_compute_mean",
    "n_sensors": "rand_n_sensors",
    "sensor_interval": "rand_sensor_interval",
}
GROUPS = (ADAPTIVE, ADAPTIVE_SEED, PAPER_ONLY)
DEFAULT_ADAPTIVE = Path("models/paper/adaptive")
PAPER_ONLY_CANDIDATES = (Path("models/paper/d0.9_p0"), Path("models/paper/d0.9"))
# the queue-aware rule tuned on paper_dynamic's tuning seeds, (w_b, lo, hi, k)
# (docs/model/cell.md#learning-options-of-the-single-cell-env):
# the study runs it beside the default rule; the residual policies correct it
TUNED_RULE = (0.3, 0.1, 0.5, 4.0)
TUNING_SEED = STUDY_TUNING  # episode seeds for choosing a checkpoint (envs.core.seeds)
EVAL_SEED = STUDY_EVALUATION  # episode seeds for the claims (never used for training or selection)


@dataclass(frozen=True)
class Variant:
    """A traffic variant: a preset plus flat overrides, and one line saying what it is."""

    name: str
    preset: str
    overrides: tuple[tuple[str, Any], ...] = ()
    note: str = ""

    def params(self, **reward: Any) -> EnvParams:
        return make_params(self.preset, **dict(self.overrides), **reward)

    def overrides_json(self) -> str:
        return json.dumps(dict(self.overrides), sort_keys=True)


def _v(name: str, note: str, preset: str = "paper", **overrides: Any) -> Variant:
    return Variant(name, preset, tuple(overrides.items()), note)


def _sensor(data: float, compute: float) -> dict[str, Any]:
    return {"sensor_data_mean": data, "sensor_compute_mean": compute}


def _regimes(
    n_ues: tuple[int, ...], job_prob: tuple[float, ...], interval: tuple[int, ...]
) -> dict[str, Any]:
    return {"regime_n_ues": n_ues, "regime_ue_job_prob": job_prob,
            "regime_sensor_interval": interval}  # fmt: skip


def is_switching(variant: Variant) -> bool:
    """Whether the variant's traffic switches between regimes within an episode."""
    return variant.params().scenario.has_regimes


# Every stationary held-out variant changes one kind of traffic; values sit outside
# paper_random's ranges. The switching ones (dyn_*) were fixed before any policy was run on them.
VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        _v("paper_dynamic", "4 regimes switching within an episode", preset="paper_dynamic"),
        _v("ues_26", "26 UEs", n_ues=26),
        _v("ues_3", "3 UEs", n_ues=3),
        _v("sensors_6", "6 sensors", n_sensors=6),
        _v("sensors_25", "25 sensors", n_sensors=25),
        _v("job_prob_0.2", "UE job probability 0.2", ue_job_prob=0.2),
        _v("big_ue_jobs", "UE jobs 90 Mbit / 9 units", ue_data_mean=90.0, ue_compute_mean=9.0),
        _v("small_ue_jobs", "UE jobs 20 Mbit / 2 units", ue_data_mean=20.0, ue_compute_mean=2.0),
        _v("big_sensor_updates", "sensor updates 120 Mbit / 12 units", **_sensor(120.0, 12.0)),
        _v("small_sensor_updates", "sensor updates 30 Mbit / 3 units", **_sensor(30.0, 3.0)),
        _v("sensor_interval_3", "a sensor update every 3 steps", sensor_interval=3),
        # held-out traffic that also switches within the episode (regimes held 25 steps on
        # average, as in paper_dynamic); reported apart from the stationary variants above
        _v("dyn_ues", "3 / 10 / 20 active UEs, switching", preset="paper_dynamic", n_ues=20,
           **_regimes(n_ues=(3, 10, 20), job_prob=(0.7,) * 3, interval=(1,) * 3)),
        _v("dyn_job_prob", "UE job probability 0.2 / 0.7 / 1.0, switching",
           preset="paper_dynamic",
           **_regimes(n_ues=(10,) * 3, job_prob=(0.2, 0.7, 1.0), interval=(1,) * 3)),
        _v("dyn_interval", "a sensor update every 1 / 3 steps, switching",
           preset="paper_dynamic", **_regimes(n_ues=(10,) * 2, job_prob=(0.7,) * 2,
                                              interval=(1, 3))),
        _v("dyn_mixed", "4 regimes: 3 UEs; job prob. 0.2; 20 UEs at 0.9; interval 3",
           preset="paper_dynamic", n_ues=20,
           **_regimes(n_ues=(3, 10, 20, 10), job_prob=(0.7, 0.2, 0.9, 0.7),
                      interval=(1, 1, 1, 3))),
    )
}  # fmt: skip


def get_variants(names: Sequence[str] | None = None) -> list[Variant]:
    """The named variants (all of :data:`VARIANTS` for None); ``ValueError`` for unknown ones."""
    if not names:
        return list(VARIANTS.values())
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(VARIANTS)}")
    return [VARIANTS[n] for n in names]


# --- held out -----------------------------------------------------------------------------------
def traffic_values(params: EnvParams) -> dict[str, tuple[float, ...]]:
    """Every value each traffic quantity takes in a scenario (one per regime with regimes)."""
    s = params.scenario
    base: dict[str, float] = {
        "n_ues": s.n_ues, "ue_job_prob": s.ue_job_prob, "ue_data_mean": s.ue_data_mean,
        "ue_compute_mean": s.ue_compute_mean, "sensor_data_mean": s.sensor_data_mean,
        "sensor_compute_mean": s.sensor_compute_mean, "n_sensors": s.n_sensors_total,
        "sensor_interval": s.sensor_interval,
    }  # fmt: skip
    out: dict[str, tuple[float, ...]] = {k: (float(v),) for k, v in base.items()}
    for name, key in (("regime_n_ues", "n_ues"), ("regime_ue_job_prob", "ue_job_prob"),
                      ("regime_sensor_interval", "sensor_interval")):  # fmt: skip
        values = getattr(s, name)
        if values:
            out[key] = tuple(float(v) for v in values)
    return out


def traffic_ranges(params: EnvParams) -> dict[str, tuple[float, float]]:
    """The closed range of each traffic quantity a policy trained on ``params`` has seen."""
    s = params.scenario
    if s.traffic_randomize:
        return {k: (float(getattr(s, r)[0]), float(getattr(s, r)[1]))
                for k, r in TRAFFIC_RANGES.items()}  # fmt: skip
    return {k: (min(v), max(v)) for k, v in traffic_values(params).items()}


def held_out(variant: EnvParams, trained: EnvParams) -> dict[str, Any]:
    """Which traffic values of ``variant`` lie outside what ``trained`` covers.

    Returns ``outside`` (field -> (values, range)), ``inside`` (the same for the others) and
    ``text``: ``"n_ues 26 outside [4, 20]; ..."`` or ``"no: every traffic value inside ..."``.
    """
    ranges = traffic_ranges(trained)
    outside: dict[str, Any] = {}
    inside: dict[str, Any] = {}
    for key, values in traffic_values(variant).items():
        lo, hi = ranges[key]
        (outside if any(v < lo or v > hi for v in values) else inside)[key] = (values, (lo, hi))
    if outside:
        text = "; ".join(
            f"{k} {'/'.join(f'{v:g}' for v in vals)} outside [{lo:g}, {hi:g}]"
            for k, (vals, (lo, hi)) in outside.items()
        )
    else:
        text = "no: every traffic value inside the training ranges"
    return {"outside": outside, "inside": inside, "text": text}


# --- candidates ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Candidate:
    """A learned policy of the study: a checkpoint or shipped directory, its name and group."""

    name: str
    group: str
    path: Path

    def __post_init__(self) -> None:
        if self.group not in GROUPS:
            raise ValueError(f"candidate group {self.group!r} not in {GROUPS}")
        if not self.name or "/" in self.name or self.name == "static":
            raise ValueError(f"bad candidate name {self.name!r}")


def trained_params(path: str | Path) -> EnvParams:
    """The scenario a checkpoint or shipped policy was trained on."""
    from tune_configs.policies.single import load_policy

    return load_policy(path).params


def default_paper_only(root: str | Path = ".") -> Path | None:
    """The shipped paper-only policy (delta 0.9, penalty 0) if one is present."""
    for rel in PAPER_ONLY_CANDIDATES:
        p = Path(root) / rel
        if (p / "policy.json").is_file():
            return p
    return None


# --- one variant ----------------------------------------------------------------------------
@dataclass
class StudySettings:
    episodes: int = 100
    seed: int = EVAL_SEED
    grid_step: float = 0.1
    delta: float = 0.9
    penalty: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)  # more run.json keys


def variant_overrides(variant: Variant, settings: StudySettings) -> dict[str, Any]:
    """What to change in a policy's training env config to evaluate it on ``variant``: the
    preset, the variant's overrides, the reward, and ``traffic_randomize`` off (a policy trained
    with ``--set traffic_randomize=true`` would otherwise keep drawing its traffic)."""
    return {
        "preset": variant.preset, "traffic_randomize": False, **dict(variant.overrides),
        "delta": settings.delta, "penalty": settings.penalty,
    }  # fmt: skip


def run_variant(
    variant: Variant,
    candidates: Sequence[Candidate],
    out_dir: str | Path,
    settings: StudySettings,
    reference: EnvParams | None = None,
    say: Callable[[str], None] = print,
) -> list[Path]:
    """Evaluate one variant's static grid, the queue-aware rule and every candidate (see the
    module docstring); ``reference``: the training scenario held-out is judged against."""
    from envs.core.batch import evaluate
    from envs.core.policies import queue_aware, static_grid
    from tune_configs.controllers import evaluate_checkpoint

    out = Path(out_dir) / variant.name
    params = variant.params(delta=settings.delta, penalty=settings.penalty)
    ho = held_out(params, reference)["text"] if reference is not None else ""
    meta_extra = {
        "study": STUDY, "variant": variant.name, "variant_note": variant.note,
        "variant_preset": variant.preset, "variant_overrides": variant.overrides_json(),
        "held_out": ho, "variant_order": list(VARIANTS).index(variant.name)
        if variant.name in VARIANTS else None, **settings.extra,
    }  # fmt: skip
    written: list[Path] = []
    t0 = time.perf_counter()
    policies = [*static_grid(settings.grid_step), queue_aware(), queue_aware(*TUNED_RULE)]
    res = evaluate(params, policies, settings.episodes, settings.seed)
    meta = run_metadata(
        "static", params, preset=variant.preset, seed=settings.seed, episodes=settings.episodes,
        grid_step=settings.grid_step, elapsed_s=round(time.perf_counter() - t0, 3), **meta_extra,
    )  # fmt: skip
    written.append(out / "static")
    write_result_set(written[-1], meta, res.episode_rows(preset=variant.preset))
    say(f"  {variant.name}: {len(policies)} static policies x {settings.episodes} episodes "
        f"({time.perf_counter() - t0:.1f} s)")  # fmt: skip
    for c in candidates:
        t1 = time.perf_counter()
        extra = {**meta_extra, "candidate": c.name, "candidate_group": c.group,
                 "candidate_path": str(c.path)}  # fmt: skip
        evaluate_checkpoint(
            c.path, settings.episodes, settings.seed, out / c.name, extra=extra,
            **variant_overrides(variant, settings),
        )  # fmt: skip
        written.append(out / c.name)
        say(f"  {variant.name}: {c.name} ({time.perf_counter() - t1:.1f} s)")
    return written


def run_study(
    variants: Sequence[Variant],
    candidates: Sequence[Candidate],
    out_dir: str | Path,
    settings: StudySettings,
    say: Callable[[str], None] = print,
) -> list[Path]:
    """:func:`run_variant` for every variant; held-out is judged against the training scenario
    of the first ``adaptive`` candidate (else of the first ``adaptive seed`` one)."""
    ref_cand = next((c for g in (ADAPTIVE, ADAPTIVE_SEED) for c in candidates if c.group == g),
                    None)  # fmt: skip
    reference = trained_params(ref_cand.path) if ref_cand is not None else None
    written: list[Path] = []
    for v in variants:
        written += run_variant(v, candidates, out_dir, settings, reference, say)
    return written


# --- choosing the shipped checkpoint --------------------------------------------------------
# name -> scenario (preset + overrides): the switching traffic and the paper cell's traffic drawn
# per episode from the default ranges (inside paper_random's ranges too)
SELECTION_SCENARIOS: dict[str, dict[str, Any]] = {
    "paper_dynamic": {"preset": "paper_dynamic", "traffic_randomize": False},
    "paper_randomised": {"preset": "paper", "traffic_randomize": True},
}
# The placement criterion's scenarios: paper_dynamic and paper cells whose traffic changes one
# kind of traffic to a value INSIDE the default training ranges (never a held-out variant).
TUNING_VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        VARIANTS["paper_dynamic"],
        _v("tune_ues_5", "5 UEs", n_ues=5),
        _v("tune_sensors_9", "9 sensors", n_sensors=9),
        _v("tune_job_prob_0.4", "UE job probability 0.4", ue_job_prob=0.4),
        _v("tune_big_ue_jobs", "UE jobs 65 Mbit / 6.5 units", ue_data_mean=65.0,
           ue_compute_mean=6.5),
        _v("tune_small_ue_jobs", "UE jobs 35 Mbit / 3.5 units", ue_data_mean=35.0,
           ue_compute_mean=3.5),
        _v("tune_big_sensor_updates", "sensor updates 95 Mbit / 9.5 units", **_sensor(95.0, 9.5)),
        _v("tune_small_sensor_updates", "sensor updates 45 Mbit / 4.5 units",
           **_sensor(45.0, 4.5)),
        _v("tune_sensor_interval_2", "a sensor update every 2 steps", sensor_interval=2),
    )
}  # fmt: skip
CRITERIA = ("return", "placement")


def variant_grid(
    variant: Variant, settings: StudySettings
) -> tuple[StaticGrid, list[tuple[float, float]]]:
    """The variant's static grid (``settings``: step, episodes, seeds, reward) through the batched
    evaluator, and its front splits ``(w_b, w_c)``."""
    from envs.core.batch import evaluate
    from envs.core.policies import static_grid

    splits = static_grid(settings.grid_step)
    params = variant.params(delta=settings.delta, penalty=settings.penalty)
    m = evaluate(params, splits, settings.episodes, settings.seed).metrics
    grid = StaticGrid([p.label for p in splits], m["sync_delay"], m["served_pct"],
                      m["episode_return"])  # fmt: skip
    front = [(p.prm[0], p.prm[1]) for p, f in zip(splits, grid.front, strict=True) if f]
    return grid, front


def _placement_scores(
    checkpoints: Sequence[str | Path],
    variants: Sequence[Variant],
    episodes: int,
    seed: int,
    delta: float,
    penalty: float,
    say: Callable[[str], None],
) -> list[dict[str, Any]]:
    """The placement criterion: per scenario, the policy's :meth:`Placement.score` against the
    scenario's own 0.1 grid on the tuning episodes (lead if beyond, minus the gap if behind, in
    noise units); ``score`` is the mean over the scenarios, ``worst`` the smallest."""
    from analysis.placement import place
    from tune_configs.policies.single import evaluate_policy, load_policy

    settings = StudySettings(episodes, seed, 0.1, delta, penalty)
    grids: dict[str, StaticGrid] = {}
    for v in variants:
        grids[v.name], _ = variant_grid(v, settings)
        say(f"  {v.name}: static grid ({len(grids[v.name].labels)} splits x {episodes} episodes)")

    def score(path: Path, row: dict[str, Any]) -> str:
        scores = []
        for v in variants:
            pol = load_policy(path, **variant_overrides(v, settings))
            ep = evaluate_policy(pol, episodes, seed)
            values = {k: np.array([np.nan if e[k] is None else e[k] for e in ep], dtype=float)
                      for k in ("sync_delay", "served_pct", "episode_return")}  # fmt: skip
            pl = place(grids[v.name], values["sync_delay"], values["served_pct"],
                       values["episode_return"])  # fmt: skip
            row[f"{v.name}_score"] = pl.score
            row[f"{v.name}_verdict"] = pl.verdict
            row[f"{v.name}_regret_pct"] = pl.return_regret_pct
            scores.append(pl.score)
        row["score"] = float(np.mean(scores))
        row["worst"] = float(np.min(scores))
        row["behind"] = sum(row[f"{v.name}_verdict"] == "behind" for v in variants)
        row["beyond"] = sum(row[f"{v.name}_verdict"] == "beyond" for v in variants)
        return (f"score {row['score']:.3f} (worst {row['worst']:.2f}, beyond {row['beyond']}, "
                f"behind {row['behind']} of {len(variants)})")  # fmt: skip

    return _rank(checkpoints, score, say)


def selection_table(
    checkpoints: Sequence[str | Path],
    episodes: int = 100,
    seed: int = TUNING_SEED,
    scenarios: Mapping[str, Mapping[str, Any]] | None = None,
    delta: float = 0.9,
    penalty: float = 0.0,
    say: Callable[[str], None] = print,
    criterion: str = "return",
    variants: Sequence[Variant] | None = None,
) -> list[dict[str, Any]]:
    """Score every checkpoint on tuning episodes (see the module docstring); best first.

    ``criterion="return"``: each row holds the checkpoint, its training seed and env steps
    (from the run record next to it), per scenario of :data:`SELECTION_SCENARIOS` the policy's
    mean return, the best static split's and their ratio, and ``score``: the mean ratio.
    ``criterion="placement"`` (the study's own criterion): per variant of ``variants`` (default
    :data:`TUNING_VARIANTS`, none of them held out) the placement score against the variant's
    static front, its verdict and return regret; ``score`` is their mean, ``worst`` the
    smallest, ``beyond`` / ``behind`` the counts.
    """
    from envs.core.batch import evaluate
    from envs.core.policies import static_grid
    from tune_configs.policies.single import evaluate_policy, load_policy

    if criterion not in CRITERIA:
        raise ValueError(f"unknown selection criterion {criterion!r}; choose one of {CRITERIA}")
    if criterion == "placement":
        chosen = list(variants) if variants is not None else list(TUNING_VARIANTS.values())
        return _placement_scores(checkpoints, chosen, episodes, seed, delta, penalty, say)
    scenarios = dict(scenarios or SELECTION_SCENARIOS)
    best: dict[str, tuple[str, float]] = {}
    grid = static_grid(0.1)
    for name, spec in scenarios.items():
        rest = {k: v for k, v in spec.items() if k != "preset"}
        params = make_params(str(spec["preset"]), delta=delta, penalty=penalty, **rest)
        ret = evaluate(params, grid, episodes, seed).metrics["episode_return"].mean(axis=1)
        i = int(np.argmax(ret))
        best[name] = (grid[i].label, float(ret[i]))
        say(f"  {name}: best static split {grid[i].label}, return {ret[i]:.1f}")

    def score(path: Path, row: dict[str, Any]) -> str:
        ratios = []
        for name, spec in scenarios.items():
            pol = load_policy(path, delta=delta, penalty=penalty, **dict(spec))
            r = float(np.mean([e["episode_return"] for e in evaluate_policy(pol, episodes, seed)]))
            row[f"{name}_return"] = r
            row[f"{name}_best_static"] = best[name][1]
            row[f"{name}_ratio"] = r / best[name][1]
            ratios.append(r / best[name][1])
        row["score"] = float(np.mean(ratios))
        return f"score {row['score']:.4f}"

    return _rank(checkpoints, score, say)


def _rank(
    checkpoints: Sequence[str | Path],
    score: Callable[[Path, dict[str, Any]], str],
    say: Callable[[str], None],
) -> list[dict[str, Any]]:
    """One row per checkpoint (:func:`_candidate_row`, filled in by ``score``, which returns a
    progress text), best ``score`` first."""
    rows: list[dict[str, Any]] = []
    for ckpt in checkpoints:
        path = Path(ckpt)
        row = _candidate_row(path)
        say(f"  {path}: {score(path, row)}")
        rows.append(row)
    rows.sort(key=lambda r: -r["score"])
    return rows


def _candidate_row(path: Path) -> dict[str, Any]:
    """A selection row's identity: the checkpoint, its training seed and env steps if known."""
    from tune_configs.policies.single import read_checkpoint_info

    row: dict[str, Any] = {"checkpoint": str(path)}
    try:
        info = read_checkpoint_info(path)
        row["train_seed"] = info.get("seed")
        row["timesteps"] = info.get("timesteps") or _steps_of(path)
    except ValueError:
        pass
    return row


def _steps_of(ckpt: Path) -> int | None:
    """Env steps of an intermediate checkpoint ``checkpoint_<iteration>`` from progress.csv."""
    import csv

    name = ckpt.name
    if not name.startswith("checkpoint_"):
        return None
    try:
        it = int(name.split("_", 1)[1])
        with (ckpt.parent / "progress.csv").open() as fh:
            for row in csv.DictReader(fh):
                if int(float(row.get("training_iteration", -1))) == it:
                    return int(float(row["timesteps"]))
    except (OSError, ValueError, KeyError):
        return None
    return None


def describe_variants(reference: EnvParams | None) -> list[dict[str, Any]]:
    """Every variant with its overrides and, against ``reference``, its held-out text."""
    rows = []
    for v in VARIANTS.values():
        p = v.params()
        rows.append({
            "variant": v.name, "preset": v.preset, "overrides": dict(v.overrides),
            "note": v.note,
            "held_out": held_out(p, reference)["text"] if reference is not None else "",
        })  # fmt: skip
    return rows


def reference_from(path: str | Path | None, fallback: Mapping[str, Any] | None = None) -> EnvParams:
    """The training scenario of a policy, or ``paper_random`` when ``path`` is missing."""
    if path is not None and Path(path).exists():
        return trained_params(path)
    return make_params(str((fallback or {}).get("preset", "paper_random")))
