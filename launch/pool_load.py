"""``python -m launch pool-load``: demand against capacity, per class of cells, of a multi-cell
scenario (the load check behind the city presets' numbers, :mod:`envs.core.pool.load`)::

    python -m launch pool-load --scenario city_19                # 20 episodes from seed 0
    python -m launch pool-load --scenario city_49 --episodes 50 --set city_capacities=[60,140]

Build a city of your own with ``--set city_...`` and check here that its short cells sit next to
cells with room before trusting it to show what the pool does (``docs/model/city.md``).
"""

from __future__ import annotations

import argparse

from launch.cli import UsageError
from launch.common import add_set_argument, episode_count, nonneg_int, print_json

HELP = "demand against capacity per class of cells of a multi-cell scenario (city load check)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scenario", default="city_19",
                   help="multi-cell preset (default city_19); a city takes --set city_rings=3 "
                   "etc. (docs/model/city.md)")  # fmt: skip
    p.add_argument("--episodes", type=episode_count, default=20, help="episodes (default 20)")
    p.add_argument("--seed", type=nonneg_int, default=0, help="episode seeds seed..seed+N-1")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_set_argument(p, "override a scenario parameter (repeatable)")


def run(args: argparse.Namespace) -> int:
    from envs.core.pool.load import cell_load, load_text
    from envs.core.pool.scenarios import SCENARIOS
    from envs.core.presets import make_params

    if args.scenario not in SCENARIOS:
        raise UsageError(
            f"unknown multi-cell scenario {args.scenario!r}; known: {', '.join(SCENARIOS)}"
        )
    try:
        params = make_params(args.scenario, **dict(args.overrides))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    load = cell_load(params, args.episodes, args.seed)
    if args.json:
        print_json(load)
        return 0
    print(f"{args.scenario}: {args.episodes} episodes from seed {args.seed}")
    print(load_text(load))
    return 0
