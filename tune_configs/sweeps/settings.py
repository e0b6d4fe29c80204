"""Typed sweep settings: what ``--set NAME=VALUE`` may change, checked before anything runs.

Every sweep module declares ``SETTINGS``, a tuple of :class:`Setting` (name, type, allowed range,
help); its budgets (``BUDGETS``) give the defaults. :func:`check_overrides` validates a sweep's
overrides against them and returns the normalised values, raising ``ValueError`` that names the
key (with a did-you-mean) for an unknown name, a wrong type or a value out of range. ``launch
sweep`` and ``launch submit`` call it before starting Ray or contacting a cluster, so a typo fails
at once with exit status 2.

The common settings are defined once here (:data:`COMMON`) and picked by name with :func:`pick`.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from envs.core.presets import PRESETS

KINDS = ("int", "float", "str", "bool", "ints", "floats", "strs", "pairs", "dict")
MAX_LIST = 10_000  # entries of a list setting (seeds, deltas, ...)


@dataclass(frozen=True)
class Setting:
    """One ``--set`` key of a sweep: its type, range and meaning.

    ``kind``: ``int``, ``float``, ``str``, ``bool``, ``ints`` / ``floats`` / ``strs`` (non-empty
    lists),
    ``pairs`` (a list of ``[a, b]`` number pairs) or ``dict`` (a JSON object). ``low``/``high``
    bound every number (inclusive); ``choices`` lists the allowed strings.
    """

    name: str
    kind: str
    help: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"setting {self.name}: kind must be one of {KINDS}")

    def describe(self) -> str:
        rng = ""
        if self.choices:
            rng = " in {" + ", ".join(self.choices) + "}"
        elif self.low is not None or self.high is not None:
            lo = "-inf" if self.low is None else f"{self.low:g}"
            hi = "inf" if self.high is None else f"{self.high:g}"
            rng = f" in [{lo}, {hi}]"
        return f"{self.name} ({self.kind}{rng}): {self.help}"

    def _number(self, value: Any, integer: bool) -> float | int:
        ok = isinstance(value, int) if integer else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok or not math.isfinite(float(value)):
            what = "an integer" if integer else "a finite number"
            raise ValueError(f"--set {self.name}={value!r}: must be {what}")
        if (self.low is not None and value < self.low) or (
            self.high is not None and value > self.high
        ):
            raise ValueError(f"--set {self.name}={value!r}: out of range; {self.describe()}")
        return int(value) if integer else float(value)

    def _string(self, value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"--set {self.name}={value!r}: must be a string")
        if self.choices and value not in self.choices:
            raise ValueError(f"--set {self.name}={value!r}: {self.describe()}")
        return value

    def check(self, value: Any) -> Any:
        """The normalised value, or ``ValueError`` naming this setting."""
        if self.kind in ("int", "float"):
            return self._number(value, self.kind == "int")
        if self.kind == "str":
            return self._string(value)
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise ValueError(f"--set {self.name}={value!r}: must be true or false")
            return value
        if self.kind == "dict":
            if not isinstance(value, dict):
                raise ValueError(f"--set {self.name}={value!r}: must be a JSON object")
            return value
        if not isinstance(value, (list, tuple)) or not 1 <= len(value) <= MAX_LIST:
            raise ValueError(
                f"--set {self.name}={value!r}: must be a non-empty list of at most {MAX_LIST}"
            )
        if self.kind == "strs":
            return [self._string(v) for v in value]
        if self.kind == "pairs":
            if not all(isinstance(v, (list, tuple)) and len(v) == 2 for v in value):
                raise ValueError(f"--set {self.name}={value!r}: must be a list of [a, b] pairs")
            return [[self._number(x, False) for x in v] for v in value]
        return [self._number(v, self.kind == "ints") for v in value]


COMMON: dict[str, Setting] = {
    s.name: s
    for s in (
        Setting("preset", "str", "scenario preset", choices=tuple(PRESETS)),
        Setting("obs_mode", "str", "observation transform", choices=("raw", "log1p", "scaled")),
        Setting(
            "controller",
            "str",
            "learned controller: single (default) or the module:attr "
            "of one outside the package (tune_configs.controllers)",
        ),
        Setting("timesteps", "int", "env steps per PPO trial", low=1),
        Setting("eval_episodes", "int", "evaluation episodes per trained policy", low=1),
        Setting("eval_seed", "int", "first evaluation episode seed", low=0),
        Setting("episodes", "int", "evaluation episodes per static split", low=1),
        Setting("hparams", "dict", "PPO hyper-parameters (tune_configs.ppo.DEFAULT_HPARAMS)"),
        Setting(
            "env",
            "dict",
            "env overrides of the PPO trials by flat name, e.g. "
            '{"reward_scale": 0.01} (metrics are never scaled)',
        ),
        Setting("resources", "dict", "PPO resources (tune_configs.ppo.Resources fields)"),
        Setting("checkpoint_every", "int", "iterations between Tune checkpoints", low=0),
        Setting(
            "tb_replay",
            "bool",
            "log a replay of each trained policy (timeline figure and animated episode, "
            "tune_configs.replay) to its TensorBoard run at the final evaluation (a few seconds "
            "per training run)",
        ),
        Setting("seed", "int", "one training seed", low=0),
        Setting("seeds", "ints", "training seeds", low=0),
        Setting(
            "seeds_per_trial",
            "int",
            "training seeds trained one after the other in one "
            "trial (fixed per-trial costs paid once)",
            low=1,
        ),
        Setting("deltas", "floats", "reward discounts delta", low=0.0, high=1.0),
        Setting("penalties", "floats", "delay penalties (<= 0)", high=0.0),
        Setting("delta", "float", "reward discount delta", low=0.0, high=1.0),
        Setting("penalty", "float", "delay penalty (<= 0)", high=0.0),
        Setting("rewards", "pairs", "reward settings [[delta, penalty], ...]"),
        Setting("with_static", "bool", "also run the static grid per reward setting"),
        Setting("grid_step", "float", "static grid step", low=0.01, high=1.0),
        Setting("samples", "int", "Optuna trials", low=1),
        Setting("blocks", "int", "static grid blocks (one trial each)", low=1),
        # the Optuna sweeps' study (tune_configs.sweeps.study)
        Setting(
            "optuna_storage",
            "str",
            "SQLAlchemy URL of the Optuna study's database (default: sqlite in the experiment, "
            "DIR/optuna.db; e.g. postgresql+psycopg://user@127.0.0.1:5432/optuna)",
        ),
        Setting("study", "str", "Optuna study name (default: the experiment name)"),
        Setting("sampler", "str", "Optuna multi-objective sampler", choices=("tpe", "nsga2")),
        Setting("sampler_seed", "int", "seed of the Optuna sampler", low=0),
        Setting(
            "start_from_grid",
            "bool",
            "enqueue the paper's 21 reward settings (7 deltas x 3 penalties) first",
        ),
    )
}


def pick(*names: str) -> tuple[Setting, ...]:
    """The common settings called ``names``."""
    return tuple(COMMON[n] for n in names)


def check_overrides(
    sweep: str, settings: Sequence[Setting], overrides: Mapping[str, Any]
) -> dict[str, Any]:
    """Validated, normalised overrides of a sweep (``ValueError`` naming the bad key)."""
    by_name = {s.name: s for s in settings}
    out: dict[str, Any] = {}
    for key, value in overrides.items():
        if key not in by_name:
            close = difflib.get_close_matches(key, list(by_name), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(
                f"unknown --set key {key!r} for sweep {sweep}{hint}; known: "
                + ", ".join(sorted(by_name))
            )
        out[key] = by_name[key].check(value)
    return out


def settings_help(settings: Iterable[Setting]) -> str:
    """One line per setting (for ``launch sweep NAME --list-settings``)."""
    return "\n".join(s.describe() for s in sorted(settings, key=lambda s: s.name))
