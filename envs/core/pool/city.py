"""A city of cells: the layout generator of the city presets (``docs/model/city.md``).

:class:`CityLayout` describes a city by a few numbers and :meth:`CityLayout.params` turns it into
the model's :class:`envs.core.params.EnvParams`:

* **Sites**: a hexagonal lattice of BSs ``spacing_m`` apart. With ``cluster_rings = 0`` the city is
  a hexagon of ``rings`` rings around a centre BS (1, 7, 19, 37, ... cells); with
  ``cluster_rings = m > 0`` every site of that hexagon becomes a *cluster*, itself a hexagon of
  ``m`` rings, and the clusters tile the plane without gaps (the cellular reuse clusters: the
  centre of the next cluster lies ``(m + 1, m)`` lattice steps away). ``rings=2`` gives 19 cells,
  ``rings=1, cluster_rings=1`` 49 (seven clusters of seven). Cells are numbered by distance from
  the centre (cell 0 is the centre), ties by angle. The square area holds the layout with
  ``margin_m`` to spare on every side.
* **Cells**: each is the paper's cell model (100 MHz, the paper's radio and job sizes) with
  ``sensors_per_cell`` sensors; MEC capacities follow the lattice's three-colouring
  (``(q - r) mod 3`` in axial coordinates), class ``k`` getting ``capacities[k % len]``: every
  cell's six neighbours are three of each other class, so a small MEC always has larger ones
  next to it.
* **UEs**: ``ues_per_cell`` per cell roam the whole area, plus ``hotspots`` moving hotspots of
  ``hotspot_ues`` UEs each. Hotspot ``k`` starts at the BS nearest to the point at angle
  ``360 k / hotspots + 30`` degrees from the centre BS, at half the distance of the outermost BS
  (at least ``spacing_m``), a BS no other hotspot starts at, and drifts
  at ``hotspot_speed`` m/step, heading ``90`` degrees further (tangentially: the hotspots circle
  the centre instead of meeting there), reflecting off the area's edges.
* **Regional surge**: from ``surge_step`` the UEs attached to the cells within ``surge_rings``
  lattice steps of the centre send a job every step (``surge_job_prob``; 0 rings: no surge).

Every field is validated (a ``ValueError`` names it); the flat names are the fields with a
``city_`` prefix (``city_rings=3``), accepted by :func:`envs.core.presets.make_params` for a city
preset (``--set city_rings=3`` on the command line). Model fields given next to them override
the generated values.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from envs.core.params import MAX_CELLS, MAX_DEVICES, MAX_EPISODE_STEPS, EnvParams

PREFIX = "city_"


def _check(cond: bool, name: str, allowed: str, value: Any) -> None:
    if not cond:
        raise ValueError(f"invalid parameter {PREFIX}{name}={value!r}: must be {allowed}")


def _whole(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def hexagon(rings: int) -> list[tuple[int, int]]:
    """Axial coordinates ``(q, r)`` of a hexagon of ``rings`` rings of cells around (0, 0)."""
    return [
        (q, r)
        for q in range(-rings, rings + 1)
        for r in range(-rings, rings + 1)
        if abs(q + r) <= rings
    ]


def city_sites(rings: int, cluster_rings: int = 0) -> list[tuple[int, int]]:
    """Axial coordinates of every cell: a hexagon of ``rings`` rings of clusters, each a hexagon
    of ``cluster_rings`` rings of cells; ordered by distance from the centre, then angle."""
    m = cluster_rings
    t1 = (m + 1, m)  # the next cluster's centre; t2 is t1 turned by 60 degrees
    t2 = (-m, 2 * m + 1)
    sites = [
        (a * t1[0] + b * t2[0] + q, a * t1[1] + b * t2[1] + r)
        for a, b in hexagon(rings)
        for q, r in hexagon(m)
    ]

    def key(s: tuple[int, int]) -> tuple[float, float]:
        x, y = s[0] + s[1] / 2, s[1] * math.sqrt(3) / 2
        return round(math.hypot(x, y), 9), round(math.atan2(y, x) % (2 * math.pi), 9)

    return sorted(sites, key=key)


@dataclass(frozen=True)
class CityLayout:
    """A city of cells (see the module docstring); ``params()`` builds its model parameters."""

    rings: int = 2  # rings of clusters around the centre one
    cluster_rings: int = 0  # rings of cells in a cluster (0: a cluster is one cell)
    spacing_m: float = 120.0  # distance between neighbouring BSs [m]
    margin_m: float = 80.0  # from the outermost BSs to the area's edges [m]
    capacities: tuple[float, ...] = (70.0, 100.0, 130.0)  # MEC capacity per colour class [units]
    sensors_per_cell: int = 7  # sensors of every cell
    ues_per_cell: float = 5.0  # UEs roaming the whole area, per cell (rounded in total)
    hotspots: int = 3  # moving hotspots
    hotspot_ues: int = 10  # UEs per hotspot
    hotspot_speed: float = 3.0  # drift of the hotspots [m/step]
    hotspot_radius_m: float = 50.0  # half side of a hotspot's square [m]
    surge_rings: int = 1  # regional surge: the cells this many lattice steps from the centre
    surge_step: int = 50  # first step of the surge (-1: none)
    surge_job_prob: float = 1.0  # UE job probability in the surge region during the surge
    episode_steps: int = 100  # horizon [steps]

    def __post_init__(self) -> None:
        for name, lo in (("rings", 0), ("cluster_rings", 0), ("sensors_per_cell", 1),
                         ("hotspots", 0), ("hotspot_ues", 1), ("surge_rings", 0),
                         ("episode_steps", 1)):  # fmt: skip
            v = getattr(self, name)
            _check(_whole(v) and v >= lo, name, f"an integer >= {lo}", v)
        for name, most in (("sensors_per_cell", MAX_DEVICES), ("hotspot_ues", MAX_DEVICES),
                           ("episode_steps", MAX_EPISODE_STEPS), ("rings", MAX_CELLS),
                           ("cluster_rings", MAX_CELLS)):  # fmt: skip
            v = getattr(self, name)
            _check(v <= most, name, f"an integer <= {most}", v)
        n = self.n_cells
        _check(2 <= n <= MAX_CELLS, "rings",
               f"a size giving 2 to {MAX_CELLS} cells (rings={self.rings}, "
               f"cluster_rings={self.cluster_rings} give {n})", self.rings)  # fmt: skip
        for name in ("spacing_m", "hotspot_radius_m", "margin_m"):
            v = getattr(self, name)
            _check(_finite(v) and v > 0, name, "a finite number > 0 [m]", v)
        _check(self.margin_m >= self.hotspot_radius_m, "margin_m",
               f">= hotspot_radius_m={self.hotspot_radius_m} (a hotspot starts around a BS and "
               "its square must fit in the area)", self.margin_m)  # fmt: skip
        caps = self.capacities
        _check(isinstance(caps, tuple) and 1 <= len(caps) <= 3, "capacities",
               "1 to 3 capacities, one per colour class [units]", caps)  # fmt: skip
        for i, c in enumerate(caps):
            _check(_finite(c) and c > 0, f"capacities[{i}]", "a finite number > 0 [units]", c)
        _check(_finite(self.ues_per_cell) and self.ues_per_cell >= 0, "ues_per_cell",
               "a finite number >= 0", self.ues_per_cell)  # fmt: skip
        _check(self.hotspots <= n, "hotspots", f"at most one per cell ({n})", self.hotspots)
        _check(self.ues_per_cell <= MAX_DEVICES, "ues_per_cell", f"<= {MAX_DEVICES}",
               self.ues_per_cell)  # fmt: skip
        _check(1 <= self.n_ues <= MAX_DEVICES, "ues_per_cell",
               f"> 0 when there are no hotspots, and at most {MAX_DEVICES} UEs in all "
               f"({self.n_ues} with the hotspots')", self.ues_per_cell)  # fmt: skip
        room = self.area_m - 2 * self.hotspot_radius_m
        _check(_finite(self.hotspot_speed) and 0 <= self.hotspot_speed <= room, "hotspot_speed",
               f"a number in [0, area - 2 hotspot_radius_m = {room:g}] [m/step]",
               self.hotspot_speed)  # fmt: skip
        _check(_whole(self.surge_step) and self.surge_step >= -1, "surge_step",
               "-1 (no surge) or a step index >= 0", self.surge_step)  # fmt: skip
        _check(_finite(self.surge_job_prob) and 0 <= self.surge_job_prob <= 1, "surge_job_prob",
               "in [0, 1]", self.surge_job_prob)  # fmt: skip

    # --- derived ---------------------------------------------------------------------------
    @property
    def n_cells(self) -> int:
        return (3 * self.rings * (self.rings + 1) + 1) * (
            3 * self.cluster_rings * (self.cluster_rings + 1) + 1
        )

    @property
    def n_ues(self) -> int:
        return round(self.ues_per_cell * self.n_cells) + self.hotspots * self.hotspot_ues

    def _axial(self) -> list[tuple[int, int]]:
        return city_sites(self.rings, self.cluster_rings)

    def _raw_xy(self) -> list[tuple[float, float]]:
        d = self.spacing_m
        return [(d * (q + r / 2), d * r * math.sqrt(3) / 2) for q, r in self._axial()]

    @property
    def area_m(self) -> float:
        xy = self._raw_xy()
        span = max(max(p[i] for p in xy) - min(p[i] for p in xy) for i in (0, 1))
        return round(span + 2 * self.margin_m, 6)

    def positions(self) -> tuple[tuple[float, float], ...]:
        """BS sites [m], the layout centred in the square area."""
        xy = self._raw_xy()
        half = self.area_m / 2
        return tuple((round(x + half, 6), round(y + half, 6)) for x, y in xy)

    def colours(self) -> tuple[int, ...]:
        """Colour class (0, 1, 2) of every cell: no two neighbours share one."""
        return tuple((q - r) % 3 for q, r in self._axial())

    def hotspot_plan(self) -> tuple[tuple[int, ...], tuple[float, ...]]:
        """Start cell and heading [deg] of every hotspot (see the module docstring)."""
        pos = self.positions()
        c0 = pos[0]
        rho = max(max(math.hypot(x - c0[0], y - c0[1]) for x, y in pos) / 2, self.spacing_m)
        cells: list[int] = []
        heads: list[float] = []
        for k in range(self.hotspots):
            ang = 360.0 * k / self.hotspots + 30.0
            px = c0[0] + rho * math.cos(math.radians(ang))
            py = c0[1] + rho * math.sin(math.radians(ang))
            order = sorted(range(len(pos)), key=lambda i: math.hypot(pos[i][0] - px,
                                                                     pos[i][1] - py))  # fmt: skip
            cells.append(next(i for i in order if i not in cells))
            heads.append(round((ang + 90.0) % 360.0, 6))
        return tuple(cells), tuple(heads)

    def surge_radius_m(self) -> float:
        """Distance from the centre BS covering ``surge_rings`` lattice steps (0: no region)."""
        return 0.0 if self.surge_rings == 0 else round(self.surge_rings * self.spacing_m * 1.01, 6)

    def params(self, base: EnvParams) -> EnvParams:
        """The city's parameters on top of ``base`` (radio, job sizes, reward of the paper)."""
        n = self.n_cells
        cells, heads = self.hotspot_plan()
        caps = self.capacities
        surge = self.surge_step if self.surge_rings > 0 else -1
        return replace(
            base,
            scenario=replace(
                base.scenario,
                area_m=self.area_m,
                bs_positions=self.positions(),
                bandwidth_hz=(100e6,) * n,
                mec_capacity=tuple(float(caps[c % len(caps)]) for c in self.colours()),
                n_sensors=(self.sensors_per_cell,) * n,
                n_ues=self.n_ues,
                ue_hotspot_cell=-1,
                ue_hotspot_fraction=0.0,
                ue_hotspot_radius_m=self.hotspot_radius_m,
                hotspot_cells=cells,
                hotspot_heading_deg=heads,
                hotspot_ues=self.hotspot_ues if cells else 0,
                hotspot_speed=self.hotspot_speed,
                surge_step=surge,
                surge_cell=0,
                surge_job_prob=self.surge_job_prob,
                surge_radius_m=self.surge_radius_m(),
                episode_steps=self.episode_steps,
            ),
        )

    def to_flat(self) -> dict[str, Any]:
        """``{city_<field>: value}`` (plain types)."""
        return {PREFIX + k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


CITY_FIELDS = frozenset(PREFIX + f.name for f in fields(CityLayout))


def city_layout(base: CityLayout, **flat: Any) -> CityLayout:
    """``base`` with flat ``city_*`` overrides (``city_rings=3``); unknown names raise."""
    changes: dict[str, Any] = {}
    for name, value in flat.items():
        if name not in CITY_FIELDS:
            raise ValueError(
                f"unknown city parameter {name!r}; known: {', '.join(sorted(CITY_FIELDS))}"
            )
        field = name[len(PREFIX) :]
        if field == "capacities":
            value = tuple(value) if isinstance(value, (list, tuple)) else (value,)
            value = tuple(float(v) if _finite(v) else v for v in value)
        elif (
            isinstance(value, float)
            and value.is_integer()
            and isinstance(getattr(base, field), int)
        ):
            value = int(value)
        changes[field] = value
    return replace(base, **changes)


# the two shipped cities (docs/model/city.md#the-city-presets)
CITY_PRESETS: dict[str, CityLayout] = {
    "city_19": CityLayout(rings=2),
    "city_49": CityLayout(rings=1, cluster_rings=1, hotspots=7),
}
