"""Argument helpers shared by the subcommands (scenario selection, shares, output)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from envs.core.params import EnvParams
from envs.core.presets import PRESETS, make_params

MAX_INT = 2**53  # the largest whole number a command takes (seeds, counts; exact in JSON)
MAX_EPISODES = 1_000_000  # episodes per policy of one evaluation


def _int_at_least(text: str, lowest: int, highest: int = MAX_INT) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < lowest:
        raise argparse.ArgumentTypeError(f"must be >= {lowest}, got {value}")
    if value > highest:
        raise argparse.ArgumentTypeError(f"must be <= {highest:,}, got {value}")
    return value


def positive_int(text: str) -> int:
    return _int_at_least(text, 1)


def nonneg_int(text: str) -> int:
    return _int_at_least(text, 0)


def episode_count(text: str) -> int:
    """A number of episodes: 1 to :data:`MAX_EPISODES`."""
    return _int_at_least(text, 1, MAX_EPISODES)


def positive_float(text: str) -> float:
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
    return value


def finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def split_pair(text: str) -> tuple[float, float]:
    """``"0.3,0.4"`` -> (w_b, w_c), both shares in [0, 1]."""
    parts = text.split(",")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected W_B,W_C (e.g. 0.3,0.4), got {text!r}")
    values = tuple(finite_float(p.strip()) for p in parts)
    if not all(0.0 <= v <= 1.0 for v in values):
        raise argparse.ArgumentTypeError(f"shares must lie in [0, 1], got {text!r}")
    return values[0], values[1]


def key_value(text: str) -> tuple[str, Any]:
    """``name=value`` with the value parsed as JSON when possible (numbers, lists), else text."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    name, raw = text.split("=", 1)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return name.strip(), value


def add_set_argument(p: Any, help: str) -> None:
    """``--set NAME=VALUE`` (repeatable; values parsed as JSON), collected in ``overrides``."""
    p.add_argument("--set", dest="overrides", action="append", type=key_value, default=[],
                   metavar="NAME=VALUE", help=help)  # fmt: skip


def add_episode_arguments(p: argparse.ArgumentParser, what: str = "episodes per policy") -> None:
    """``--episodes N`` (default 100) and ``--seed S``: the episode seeds ``S .. S+N-1``."""
    p.add_argument("--episodes", type=episode_count, default=100, help=f"{what} (default 100)")
    p.add_argument("--seed", type=nonneg_int, default=0, help="episode seeds seed..seed+N-1")


def add_scenario_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("scenario")
    g.add_argument("--preset", default="paper", choices=sorted(PRESETS), help="scenario preset")
    add_reward_arguments(g, "reward discount per step of AoSI (0, 1]",
                         "reward per late UE job (<= 0)")  # fmt: skip
    add_set_argument(g, "override any parameter, e.g. --set n_ues=20 (repeatable)")


def add_reward_arguments(p: Any, delta_help: str, penalty_help: str) -> None:
    """``--delta`` and ``--penalty``: finite numbers, None when not given."""
    p.add_argument("--delta", type=finite_float, help=delta_help)
    p.add_argument("--penalty", type=finite_float, help=penalty_help)


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The ``--set`` overrides, with ``--delta`` and ``--penalty`` where given."""
    overrides = dict(args.overrides)
    if args.delta is not None:
        overrides["delta"] = args.delta
    if args.penalty is not None:
        overrides["penalty"] = args.penalty
    return overrides


def scenario_from_args(args: argparse.Namespace) -> EnvParams:
    return make_params(args.preset, **overrides_from_args(args))


def check_out_dir(path: str | None, flag: str = "--out") -> None:
    """``UsageError`` unless ``path`` (an output directory, None: not given) is a directory or
    can be created as one: checked before any work, so a bad path wastes nothing."""
    from launch.cli import UsageError

    if path is None:
        return
    p = Path(path).expanduser()
    for q in (p, *p.parents):
        if q.exists():
            if not q.is_dir():
                raise UsageError(f"{flag} {path}: {q} exists and is not a directory")
            return


def print_json(obj: Any) -> None:
    from analysis.resultset import clean_json

    json.dump(clean_json(obj), sys.stdout, indent=2, allow_nan=False)
    sys.stdout.write("\n")


def fmt_pm(mean: float | None, std: float | None, digits: int = 2) -> str:
    if mean is None:
        return "n/a"
    return f"{mean:.{digits}f} ± {0.0 if std is None else std:.{digits}f}"


def progress_bar(total: int, desc: str, disable: bool = False) -> Any:
    """A tqdm bar on stderr (silent when stderr is not a terminal or ``disable``)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="ep", file=sys.stderr,
                disable=True if disable else None, leave=False)  # fmt: skip
