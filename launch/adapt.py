"""``python -m launch adapt``: the adaptivity study (where DRL pays: traffic that changes).

Examples::

    python -m launch adapt variants                     # the traffic variants, held out or not
    python -m launch adapt select results/adapt/runs/*/checkpoint* --seed 5000
    python -m launch adapt study --out results/adapt/study --episodes 100 --seed 20000
    python -m launch report results/adapt/study        # the report's "Adaptivity" section
    python -m launch adapt reach --out results/adapt/reach   # what a rule tuned per variant reaches

* ``variants``: every traffic variant of :data:`tune_configs.studies.adaptivity.VARIANTS` and which
  of its
  traffic values lie outside the training ranges of ``--reference`` (default: the shipped
  adaptive policy ``models/paper/adaptive``, else the ``paper_random`` preset);
* ``select``: scores checkpoints on *tuning* episode seeds (default 5000..5099), prints them
  best first. ``--criterion return`` (default): mean episode return on ``paper_dynamic`` and on
  the paper cell with per-episode random traffic (default ranges), each relative to the best
  static split of the 0.1 grid on the same episodes, averaged. ``--criterion placement``: the
  study's own criterion, the mean placement score (lead if beyond, minus the gap if behind, in
  noise units) against each scenario's static front over ``paper_dynamic`` and the tuning
  variants of ``tune_configs.studies.adaptivity.TUNING_VARIANTS`` (traffic inside the training
  ranges,
  never a held-out variant);
* ``study``: for every variant (default all), the variant's static grid (``--grid``, default 0.1)
  and the queue-aware rule (batched evaluator), then the shipped adaptive policy (``--adaptive``),
  the other training seeds' policies (``--seed-policy NAME=PATH``, repeatable) and the policy
  trained on the paper scenario only (``--paper-only``, default ``models/paper/d0.9_p0`` when
  present; ``none`` to leave it out), all on episode seeds ``seed .. seed+episodes-1`` (default
  20000..20099: never used for training or selection). Writes result sets under ``OUT/<variant>/``
  and prints the table (on / behind / beyond the variant's front, gap, lead, return regret) and
  the acceptance checks of ``docs/studies/adaptivity.md#acceptance-checks``
  (:mod:`analysis.adaptivity`); ``--report`` also writes ``OUT/report.md``.

* ``reach``: for every variant (default all) and family of controllers (``--families``, default
  ``queue_aware,backlog,horizon``; :mod:`tune_configs.studies.reach`), the member with the best
  placement
  against the variant's own front on tuning episode seeds (``--tune-seed``, default 5000..5099),
  then placed on ``--seed`` (default 20000..20099); prints the table and, per family, in how many
  held-out variants it is beyond the front; writes ``OUT/reach.json``.

About 10-25 s per variant on a busy 2-core machine for the 0.1 grid x 100 episodes, plus about
a second per policy.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from envs.core.seeds import STUDY_EVALUATION, STUDY_TUNING
from launch.cli import UsageError
from launch.common import check_out_dir, episode_count, finite_float, nonneg_int, print_json

HELP = "adaptivity study: policies on traffic variants against each variant's static front"


def _named_path(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {text!r}")
    name, path = text.split("=", 1)
    return name.strip(), path.strip()


def _names(text: str | None) -> list[str] | None:
    """A comma-separated list of names (None: not given)."""
    return [n.strip() for n in text.split(",") if n.strip()] if text else None


ALL_VARIANTS = "variants to run (default all; see `launch adapt variants`)"


def _runs(p: argparse.ArgumentParser, seed: int, seed_help: str, variants_help: str) -> None:
    """The options every evaluating action has: episodes, first episode seed, variants."""
    p.add_argument("--episodes", type=episode_count, default=100, help="episodes (default 100)")
    p.add_argument("--seed", type=nonneg_int, default=seed, help=f"{seed_help} (default {seed})")
    p.add_argument("--variants", default=None, metavar="A,B,...", help=variants_help)


def _reference(p: argparse.ArgumentParser) -> None:
    p.add_argument("--reference", default=None, metavar="POLICY",
                   help="policy whose training ranges define held out (default: the shipped "
                        "adaptive policy, else the paper_random preset)")  # fmt: skip


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="<action>")
    sub.required = True
    v = sub.add_parser("variants", help="list the traffic variants and whether they are held out")
    _reference(v)
    v.add_argument("--json", action="store_true", help="print JSON")
    s = sub.add_parser("select", help="score checkpoints on tuning episode seeds, best first")
    s.add_argument("checkpoints", nargs="+", metavar="CHECKPOINT")
    _runs(s, STUDY_TUNING, "first tuning episode seed",
          "placement only: score against these variants instead of the tuning variants (e.g. a "
          "policy trained on one variant itself)")  # fmt: skip
    s.add_argument("--criterion", choices=("return", "placement"), default="return",
                   help="return: mean return relative to the best static split on paper_dynamic "
                        "and the randomised paper cell (default); placement: the study's own "
                        "criterion, the placement against each scenario's static front on "
                        "paper_dynamic and the tuning variants (none held out)")  # fmt: skip
    s.add_argument("--json", action="store_true", help="print JSON")
    st = sub.add_parser("study", help="run the study into OUT (result sets + table)")
    st.add_argument("--out", required=True, metavar="DIR", help="output directory")
    _runs(st, STUDY_EVALUATION, "first episode seed, never used to train or select", ALL_VARIANTS)
    st.add_argument("--grid", type=finite_float, default=0.1, metavar="STEP",
                    help="static grid step (default 0.1)")  # fmt: skip
    st.add_argument("--adaptive", default="models/paper/adaptive", metavar="POLICY",
                    help="the shipped traffic-randomised policy (default "
                         "models/paper/adaptive; 'none' to leave it out)")  # fmt: skip
    st.add_argument("--seed-policy", action="append", type=_named_path, default=[],
                    metavar="NAME=POLICY",
                    help="another training seed's policy (repeatable)")  # fmt: skip
    st.add_argument("--paper-only", default=None, metavar="POLICY",
                    help="policy trained on the paper scenario only (default models/paper/"
                         "d0.9_p0 if present; 'none' to leave it out)")  # fmt: skip
    st.add_argument("--report", action="store_true", help="also write OUT/report.md")
    r = sub.add_parser(
        "reach",
        help="per variant, how far beyond its front a controller tuned "
        "knowing the variant gets (the reference for 'beyond')",
    )
    r.add_argument("--out", required=True, metavar="DIR", help="output directory (reach.json)")
    _runs(r, STUDY_EVALUATION, "first episode seed the chosen members are placed on", ALL_VARIANTS)
    r.add_argument("--tune-seed", type=nonneg_int, default=STUDY_TUNING,
                   help="first tuning episode seed, to choose each family's member (default "
                        "5000)")  # fmt: skip
    r.add_argument(
        "--families",
        default="queue_aware,backlog,horizon",
        metavar="A,B,...",
        help="families (default queue_aware,backlog,horizon; see docs/studies/adaptivity.md)",
    )
    _reference(r)


def run(args: argparse.Namespace) -> int:
    return {"variants": _variants, "select": _select, "study": _study,
            "reach": _reach}[args.action](args)  # fmt: skip


def _variants(args: argparse.Namespace) -> int:
    from tune_configs.studies.adaptivity import DEFAULT_ADAPTIVE, describe_variants, reference_from

    ref_path = args.reference or (DEFAULT_ADAPTIVE if DEFAULT_ADAPTIVE.exists() else None)
    if args.reference and not Path(args.reference).exists():
        raise UsageError(f"--reference {args.reference} does not exist")
    rows = describe_variants(reference_from(ref_path))
    if args.json:
        print_json(rows)
        return 0
    print(f"held out relative to: {ref_path or 'the paper_random preset'}")
    width = max(len(r["note"]) for r in rows) + 2
    for r in rows:
        print(f"{r['variant']:<22} {r['note']:<{width}}{r['held_out']}")
    return 0


def _select(args: argparse.Namespace) -> int:
    from tune_configs.studies.adaptivity import get_variants, selection_table

    for c in args.checkpoints:
        if not Path(c).is_dir():
            raise UsageError(f"checkpoint {c!r} is not a directory")
    variants = None
    if args.variants:
        if args.criterion != "placement":
            raise UsageError("--variants needs --criterion placement")
        variants = get_variants(_names(args.variants))
    rows = selection_table(args.checkpoints, args.episodes, args.seed,
                           say=lambda msg: print(msg, file=sys.stderr, flush=True),
                           criterion=args.criterion, variants=variants)  # fmt: skip
    if args.json:
        print_json(rows)
        return 0
    if args.criterion == "placement":
        print(f"{'score':>7} {'worst':>7} {'dynamic':>8} {'beyond':>6} {'behind':>6} "
              f"{'steps':>9} {'seed':>5}  checkpoint")  # fmt: skip
        for r in rows:
            steps, seed = r.get("timesteps") or "", r.get("train_seed", "")
            dyn = r.get("paper_dynamic_score", float("nan"))
            print(f"{r['score']:7.3f} {r['worst']:7.2f} {dyn:8.2f} "
                  f"{r['beyond']:>6} {r['behind']:>6} {steps:>9} {seed:>5}  "
                  f"{r['checkpoint']}")  # fmt: skip
    else:
        print(f"{'score':>7} {'dynamic':>8} {'random':>8} {'steps':>9} {'seed':>5}  checkpoint")
        for r in rows:
            steps, seed = r.get("timesteps") or "", r.get("train_seed", "")
            ratios = f"{r['paper_dynamic_ratio']:8.4f} {r['paper_randomised_ratio']:8.4f}"
            print(f"{r['score']:7.4f} {ratios} {steps:>9} {seed:>5}  {r['checkpoint']}")
    last = args.seed + args.episodes - 1
    print(f"chosen: {rows[0]['checkpoint']} (tuning episode seeds {args.seed}..{last})")
    return 0


def _study(args: argparse.Namespace) -> int:
    check_out_dir(args.out)
    from tune_configs.studies.adaptivity import (
        ADAPTIVE,
        ADAPTIVE_SEED,
        PAPER_ONLY,
        Candidate,
        StudySettings,
        default_paper_only,
        get_variants,
        run_study,
    )

    variants = get_variants(_names(args.variants))
    candidates: list[Candidate] = []

    def add(name: str, group: str, path: Any) -> None:
        p = Path(path)
        if not p.exists():
            raise UsageError(f"{group} policy {path} does not exist")
        candidates.append(Candidate(name, group, p))

    if args.adaptive.lower() != "none":
        add("adaptive", ADAPTIVE, args.adaptive)
    for name, path in args.seed_policy:
        add(name, ADAPTIVE_SEED, path)
    paper_only = args.paper_only
    if paper_only is None:
        found = default_paper_only()
        paper_only = str(found) if found is not None else "none"
        if found is None:
            print("note: no shipped paper-only policy found (models/paper/d0.9_p0); pass "
                  "--paper-only PATH to include one")  # fmt: skip
    if paper_only.lower() != "none":
        add("paper-only", PAPER_ONLY, paper_only)
    if len({c.name for c in candidates}) != len(candidates):
        raise UsageError("candidate names must be unique")
    out = Path(args.out)
    settings = StudySettings(args.episodes, args.seed, args.grid)
    print(f"adaptivity study: {len(variants)} variants, {len(candidates)} policies, episode "
          f"seeds {args.seed}..{args.seed + args.episodes - 1} -> {out}")  # fmt: skip
    run_study(variants, candidates, out, settings)
    _print_table(out)
    if args.report:
        from analysis.report import write_report

        print(f"report: {write_report(out)}")
    return 0


def _reach(args: argparse.Namespace) -> int:
    check_out_dir(args.out)
    from analysis.adaptivity import reach_summary
    from tune_configs.studies.adaptivity import DEFAULT_ADAPTIVE, get_variants, reference_from
    from tune_configs.studies.reach import FAMILIES, ReachSettings, run_reach, write_reach

    if args.seed < args.tune_seed + args.episodes and args.tune_seed < args.seed + args.episodes:
        raise UsageError("--seed and --tune-seed episode ranges overlap: the chosen members "
                         "must be placed on episodes not used to choose them")  # fmt: skip
    families = _names(args.families) or []
    unknown = [f for f in families if f not in FAMILIES]
    if unknown or not families:
        raise UsageError(f"unknown families {unknown or args.families!r}; known: "
                         f"{', '.join(FAMILIES)}")  # fmt: skip
    if args.reference and not Path(args.reference).exists():
        raise UsageError(f"--reference {args.reference} does not exist")
    ref_path = args.reference or (DEFAULT_ADAPTIVE if DEFAULT_ADAPTIVE.exists() else None)
    variants = get_variants(_names(args.variants))
    settings = ReachSettings(episodes=args.episodes, seed=args.seed, tune_seed=args.tune_seed)
    print(f"reach: {len(variants)} variants x {', '.join(families)}; tuned on episode seeds "
          f"{args.tune_seed}..{args.tune_seed + args.episodes - 1}, placed on "
          f"{args.seed}..{args.seed + args.episodes - 1}; held out relative to "
          f"{ref_path or 'the paper_random preset'}", flush=True)  # fmt: skip
    rows = run_reach(variants, families, settings, reference_from(ref_path),
                     say=lambda m: print(m, flush=True))  # fmt: skip
    path = write_reach(rows, args.out, settings, {"reference": str(ref_path or "paper_random")})
    print(f"\n{'variant':<21}{'family':<13}{'verdict':<8}{'score':>7}{'sync':>7}{'served':>8}"
          f"  parameters")  # fmt: skip
    for r in rows:
        prm = ", ".join(f"{k}={v:g}" for k, v in r["params"].items())
        print(f"{r['variant']:<21}{r['family']:<13}{r['verdict']:<8}{r['score']:7.2f}"
              f"{r['sync_delay']:7.2f}{r['served_pct']:8.2f}  {prm}")  # fmt: skip
    print()
    for line in reach_summary(rows):
        print(line)
    print(f"written: {path}")
    return 0


def _print_table(out: Path) -> None:
    from analysis.adaptivity import study_table, verdicts
    from analysis.collect import collect

    table = study_table(collect(out, write=False).episodes)
    print(f"\n{'variant':<21}{'candidate':<16}{'sync':>7}{'served':>8}{'return':>8}  "
          f"{'verdict':<8}{'gap':>7}{'lead':>7}{'regret%':>9}")  # fmt: skip
    for _, r in table.iterrows():
        print(f"{r['variant']:<21}{r['candidate']:<16}{r['sync_delay']:7.2f}"
              f"{r['served_pct']:8.2f}{r['episode_return']:8.0f}  {r['verdict']:<8}"
              f"{r['gap']:7.2f}{r['lead']:7.2f}{r['return_regret_pct']:9.1f}")  # fmt: skip
    print()
    for line in verdicts(table):
        print(line)
