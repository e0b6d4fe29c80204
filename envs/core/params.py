"""Frozen, validated parameters of the MetaLore model.

Source: ``docs/model/cell.md`` (parameters, radio, presets), which restates the MetaLore paper
(Ohri et al., "MetaLore: Learning to Orchestrate Communication and Computation for Metaverse
Synchronization") with every value filled in from the authors' paper-era simulator.

Units: one step = 1 s; data in Mbit; compute in units; bandwidth in Hz; distances in m.

Three groups, each a frozen dataclass validated in ``__post_init__``:

* :class:`ScenarioParams`: the physical world (cells, radio, devices, traffic, mobility, horizon);
* :class:`RewardParams`: the reward (``docs/model/cell.md#reward``);
* :class:`EnvParams`: both, plus the observation mode.

Per-cell fields are tuples with one entry per cell (``n_cells = len(bs_positions)``). Derived
quantities are properties, never stored. ``EnvParams.to_dict``/``from_dict`` use plain types so
RLlib env configs, Tune ``params.json`` files and search spaces can carry them, and
:func:`envs.core.presets.make_params` applies flat overrides (``delta=0.5``) to the right group.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

OBS_MODES = ("raw", "log1p", "scaled")
ACTION_MODES = ("direct", "residual")
JOB_SIZES = ("poisson", "fixed")


def _check(cond: bool, name: str, allowed: str, value: Any) -> None:
    if not cond:
        raise ValueError(f"invalid parameter {name}={value!r}: must be {allowed}")


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _whole(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


# traffic regimes: the per-regime tuples (see ScenarioParams)
REGIME_FIELDS = ("regime_ue_job_prob", "regime_n_ues", "regime_sensor_interval")
# traffic randomisation: range field -> (smallest lo, largest hi, whole numbers, bounds in words)
RAND_RANGES: dict[str, tuple[float, float, bool, str]] = {
    "rand_n_ues": (1, math.inf, True, ">= 1"),
    "rand_ue_job_prob": (0.0, 1.0, False, "within [0, 1]"),
    "rand_ue_data_mean": (1e-9, 1e4, False, "within (0, 10000]"),
    "rand_ue_compute_mean": (1e-9, 1e4, False, "within (0, 10000]"),
    "rand_sensor_data_mean": (1e-9, 1e4, False, "within (0, 10000]"),
    "rand_sensor_compute_mean": (1e-9, 1e4, False, "within (0, 10000]"),
    "rand_n_sensors": (1, math.inf, True, ">= 1"),
    "rand_sensor_interval": (1, math.inf, True, ">= 1"),
}


# Upper bounds of the sizes (a scenario beyond them would exhaust memory or never end; the
# largest preset uses a small fraction of each).
MAX_CELLS = 64
MAX_DEVICES = 10_000  # UEs, and sensors per cell
MAX_EPISODE_STEPS = 1_000_000


@dataclass(frozen=True)
class ScenarioParams:
    """The physical scenario: cells, radio, devices, traffic, mobility and horizon."""

    # --- area and cells (one entry per cell) -------------------------------------------------
    area_m: float = 200.0  # side of the square area [m]; positions lie in [0, area_m]^2
    bs_positions: tuple[tuple[float, float], ...] = ((100.0, 100.0),)  # BS (and MEC) sites [m]
    bandwidth_hz: tuple[float, ...] = (100e6,)  # BS bandwidth B per cell [Hz]
    mec_capacity: tuple[float, ...] = (100.0,)  # MEC capacity C per cell [units/step]
    n_sensors: tuple[int, ...] = (15,)  # static sensors per cell
    # --- radio (Okumura-Hata, docs/model/cell.md#radio) ---------------------------------------
    carrier_mhz: float = 3500.0  # carrier frequency f [MHz]
    tx_power_dbm: float = 40.0  # transmit power [dBm] (used as in the authors' code)
    bs_height_m: float = 40.0  # BS antenna height h_b [m]
    device_height_m: float = 1.5  # UE and sensor antenna height h_m [m]
    noise: float = 1e-9  # noise power [mW-equivalent, see docs/model/cell.md#radio]
    snr_threshold: float = 2e-8  # linear SNR below which a device gets no rate
    min_distance_m: float = 1.0  # distances are clamped to this before the path loss [m]
    # --- UEs ---------------------------------------------------------------------------------
    n_ues: int = 10  # mobile UEs roaming the whole area
    ue_speed: float = 1.5  # random-waypoint speed [m/step]
    ue_job_prob: float = 0.7  # Bernoulli job probability per UE and step
    ue_data_mean: float = 50.0  # UE job data ~ max(Poisson(mean), 1) [Mbit]
    ue_compute_mean: float = 5.0  # UE job compute ~ max(Poisson(mean), 1) [units]
    # --- sensors -----------------------------------------------------------------------------
    sensor_interval: int = 1  # a sensor update every this many steps
    sensor_data_mean: float = 70.0  # sensor update data ~ max(Poisson(mean), 1) [Mbit]
    sensor_compute_mean: float = 7.0  # sensor update compute ~ max(Poisson(mean), 1) [units]
    job_sizes: str = "poisson"  # "poisson" (the model) or "fixed": each size is its (whole) mean
    sensor_min_bs_dist: float = 20.0  # placement: distance to own BS >= this [m]
    sensor_max_bs_dist: float = 90.0  # placement: distance to own BS <= this [m]
    sensor_min_spacing: float = 20.0  # placement: distance to every placed sensor >= this [m]
    # --- heterogeneity and surges (multi-cell scenarios; defaults switch them off) ----------
    ue_hotspot_cell: int = -1  # cell whose surroundings hold the hotspot UEs (-1: no hotspot)
    ue_hotspot_fraction: float = 0.0  # share of UEs (lowest ids first) roaming the hotspot only
    ue_hotspot_radius_m: float = 50.0  # hotspot: square of this half-side around the BS [m]
    surge_step: int = -1  # from this step on the surge cell's UEs send more jobs (-1: never)
    surge_cell: int = 0  # cell of the surge
    surge_job_prob: float = 1.0  # UE job probability in the surge cell during the surge
    surge_radius_m: float = 0.0  # regional surge: every cell whose BS is this close to the surge
    # cell's BS surges too [m] (0: the surge cell only)
    # --- moving hotspots (docs/model/city.md#moving-hotspots; empty tuple: none) -------------
    # Hotspot k holds hotspot_ues UEs (ids k*hotspot_ues .. (k+1)*hotspot_ues - 1) whose positions
    # and waypoints stay in a square of half side ue_hotspot_radius_m that starts centred on the BS
    # of hotspot_cells[k] and drifts hotspot_speed m per step along hotspot_heading_deg[k],
    # reflecting off the area's edges. Excludes the static hotspot (ue_hotspot_cell).
    hotspot_cells: tuple[int, ...] = ()  # start cell of each moving hotspot
    hotspot_heading_deg: tuple[float, ...] = ()  # direction of each hotspot [deg, 0 = +x, 90 = +y]
    hotspot_ues: int = 0  # UEs per moving hotspot
    hotspot_speed: float = 0.0  # drift of every hotspot [m/step]
    # --- horizon -----------------------------------------------------------------------------
    episode_steps: int = 100  # truncation horizon [steps]
    # --- traffic regimes (docs/model/traffic.md#regimes-within-an-episode; empty tuples: off) ----
    # One entry per regime; an empty tuple keeps the base value (ue_job_prob, n_ues,
    # sensor_interval) in every regime. Non-empty tuples share one length, the regime count (>= 2).
    regime_ue_job_prob: tuple[float, ...] = ()  # UE job probability in each regime
    regime_n_ues: tuple[int, ...] = ()  # active UEs (ids 0 .. k-1) in each regime
    regime_sensor_interval: tuple[int, ...] = ()  # sensor update interval per regime [steps]
    regime_hold_steps: float = 25.0  # mean (geometric) holding time of a regime [steps], >= 1
    # --- randomisation (docs/model/traffic.md#randomisation-across-episodes; off by default) -----
    # Each episode draws its traffic at reset, uniformly from these closed (lo, hi) ranges
    # (counts: whole numbers). n_ues and n_sensors are then the device slots: an episode
    # activates the lowest ids. One cell only; excludes regimes.
    traffic_randomize: bool = False
    rand_n_ues: tuple[int, int] = (4, 10)  # active UEs, <= n_ues
    rand_ue_job_prob: tuple[float, float] = (0.3, 1.0)  # UE job probability
    rand_ue_data_mean: tuple[float, float] = (30.0, 70.0)  # UE job data mean [Mbit]
    rand_ue_compute_mean: tuple[float, float] = (3.0, 7.0)  # UE job compute mean [units]
    rand_sensor_data_mean: tuple[float, float] = (40.0, 100.0)  # sensor update data mean [Mbit]
    rand_sensor_compute_mean: tuple[float, float] = (4.0, 10.0)  # sensor compute mean [units]
    rand_n_sensors: tuple[int, int] = (8, 15)  # active sensors, <= n_sensors
    rand_sensor_interval: tuple[int, int] = (1, 2)  # sensor update interval [steps]

    def __post_init__(self) -> None:
        _check(
            _finite(self.area_m) and self.area_m > 0, "area_m", "a finite number > 0", self.area_m
        )
        _check(
            isinstance(self.bs_positions, tuple) and 1 <= len(self.bs_positions) <= MAX_CELLS,
            "bs_positions",
            f"1 to {MAX_CELLS} (x, y) sites",
            self.bs_positions,
        )
        for i, p in enumerate(self.bs_positions):
            ok = isinstance(p, tuple) and len(p) == 2
            ok = ok and all(_finite(v) and 0 <= v <= self.area_m for v in p)
            _check(
                ok,
                f"bs_positions[{i}]",
                f"an (x, y) pair inside [0, area_m] = [0, {self.area_m}]",
                p,
            )
        n = self.n_cells
        for name in ("bandwidth_hz", "mec_capacity", "n_sensors"):
            value = getattr(self, name)
            _check(isinstance(value, tuple) and len(value) == n, name,
                   f"a tuple with one entry per cell ({n})", value)  # fmt: skip
        for i, b in enumerate(self.bandwidth_hz):
            _check(_finite(b) and b > 0, f"bandwidth_hz[{i}]", "a finite number > 0 [Hz]", b)
        for i, c in enumerate(self.mec_capacity):
            _check(_finite(c) and c > 0, f"mec_capacity[{i}]", "a finite number > 0 [units]", c)
        for i, s in enumerate(self.n_sensors):
            _check(_whole(s) and 1 <= s <= MAX_DEVICES, f"n_sensors[{i}]",
                   f"an integer in [1, {MAX_DEVICES}]", s)  # fmt: skip
        positive = (
            "carrier_mhz", "bs_height_m", "device_height_m", "noise", "ue_speed", "min_distance_m",
            "ue_data_mean", "ue_compute_mean", "sensor_data_mean", "sensor_compute_mean",
        )  # fmt: skip
        for name in positive:
            v = getattr(self, name)
            _check(_finite(v) and v > 0, name, "a finite number > 0", v)
        _check(
            _finite(self.tx_power_dbm), "tx_power_dbm", "a finite number [dBm]", self.tx_power_dbm
        )
        _check(
            _finite(self.snr_threshold) and self.snr_threshold >= 0,
            "snr_threshold", "a finite number >= 0", self.snr_threshold,
        )  # fmt: skip
        _check(
            _finite(self.ue_job_prob) and 0.0 <= self.ue_job_prob <= 1.0,
            "ue_job_prob", "a probability in [0, 1]", self.ue_job_prob,
        )  # fmt: skip
        for name, most in (("n_ues", MAX_DEVICES), ("sensor_interval", MAX_EPISODE_STEPS),
                           ("episode_steps", MAX_EPISODE_STEPS)):  # fmt: skip
            v = getattr(self, name)
            _check(_whole(v) and 1 <= v <= most, name, f"an integer in [1, {most}]", v)
        for name in ("sensor_min_bs_dist", "sensor_max_bs_dist", "sensor_min_spacing"):
            v = getattr(self, name)
            _check(_finite(v) and v >= 0, name, "a finite number >= 0 [m]", v)
        _check(
            self.sensor_max_bs_dist > self.sensor_min_bs_dist,
            "sensor_max_bs_dist", f"> sensor_min_bs_dist ({self.sensor_min_bs_dist})",
            self.sensor_max_bs_dist,
        )  # fmt: skip
        _check(
            isinstance(self.ue_hotspot_cell, int) and -1 <= self.ue_hotspot_cell < n,
            "ue_hotspot_cell", f"-1 (none) or a cell index in [0, {n - 1}]", self.ue_hotspot_cell,
        )  # fmt: skip
        for name in ("ue_hotspot_fraction", "surge_job_prob"):
            v = getattr(self, name)
            _check(_finite(v) and 0.0 <= v <= 1.0, name, "in [0, 1]", v)
        r = self.ue_hotspot_radius_m
        _check(_finite(r) and r > 0, "ue_hotspot_radius_m", "a finite number > 0 [m]", r)
        _check(isinstance(self.surge_step, int) and self.surge_step >= -1, "surge_step",
               "-1 (no surge) or a step index >= 0", self.surge_step)  # fmt: skip
        _check(isinstance(self.surge_cell, int) and 0 <= self.surge_cell < n, "surge_cell",
               f"a cell index in [0, {n - 1}]", self.surge_cell)  # fmt: skip
        _check(_finite(self.surge_radius_m) and self.surge_radius_m >= 0, "surge_radius_m",
               "a finite number >= 0 [m]", self.surge_radius_m)  # fmt: skip
        self._check_moving_hotspots()
        _check(self.job_sizes in JOB_SIZES, "job_sizes", f"one of {JOB_SIZES}", self.job_sizes)
        for name in ("ue_data_mean", "ue_compute_mean", "sensor_data_mean", "sensor_compute_mean"):
            v = getattr(self, name)
            if self.job_sizes == "fixed":
                _check(float(v).is_integer(), name, "a whole number with job_sizes='fixed'", v)
            _check(v <= 1e4, name, "<= 10000 (Poisson tables are built up to mean + 40 sd)", v)

        self._check_traffic_variation()

    def _check_moving_hotspots(self) -> None:
        n, cells, heads = self.n_cells, self.hotspot_cells, self.hotspot_heading_deg
        _check(isinstance(cells, tuple) and len(cells) <= self.n_ues, "hotspot_cells",
               "a tuple with one start cell per moving hotspot", cells)  # fmt: skip
        for i, c in enumerate(cells):
            _check(_whole(c) and 0 <= c < n, f"hotspot_cells[{i}]", f"a cell index in [0, {n - 1}]",
                   c)  # fmt: skip
        _check(isinstance(heads, tuple) and len(heads) == len(cells), "hotspot_heading_deg",
               f"a tuple with one heading per moving hotspot ({len(cells)}, as hotspot_cells)",
               heads)  # fmt: skip
        for i, h in enumerate(heads):
            _check(_finite(h), f"hotspot_heading_deg[{i}]", "a finite number [deg]", h)
        k = self.hotspot_ues
        _check(
            _whole(k) and k >= 0 and len(cells) * k <= self.n_ues,
            "hotspot_ues",
            f"an integer >= 0 with len(hotspot_cells) x hotspot_ues <= n_ues={self.n_ues}",
            k,
        )
        v = self.hotspot_speed
        _check(_finite(v) and v >= 0, "hotspot_speed", "a finite number >= 0 [m/step]", v)
        if not cells:
            return
        _check(k >= 1, "hotspot_ues", "an integer >= 1 when hotspot_cells is set", k)
        _check(self.ue_hotspot_cell == -1, "ue_hotspot_cell",
               "-1 when moving hotspots (hotspot_cells) are set: the two exclude each other",
               self.ue_hotspot_cell)  # fmt: skip
        r, a = self.ue_hotspot_radius_m, self.area_m
        for i, c in enumerate(cells):
            bx, by = self.bs_positions[c]
            _check(r <= bx <= a - r and r <= by <= a - r, f"hotspot_cells[{i}]",
                   f"a cell whose BS lies at least ue_hotspot_radius_m={r} from the area's edges "
                   f"(a moving hotspot's square starts around it; BS {c} is at ({bx}, {by}))",
                   c)  # fmt: skip
        _check(v <= a - 2 * r, "hotspot_speed",
               f"<= area_m - 2 ue_hotspot_radius_m = {a - 2 * r} [m/step] (the room a hotspot's "
               "square moves in)", v)  # fmt: skip

    def _check_traffic_variation(self) -> None:
        regimes = {name: getattr(self, name) for name in REGIME_FIELDS}
        for name, values in regimes.items():
            _check(isinstance(values, tuple), name, "a tuple with one entry per regime", values)
        for i, p in enumerate(self.regime_ue_job_prob):
            _check(_finite(p) and 0.0 <= p <= 1.0, f"regime_ue_job_prob[{i}]", "in [0, 1]", p)
        for i, k in enumerate(self.regime_n_ues):
            _check(_whole(k) and 1 <= k <= self.n_ues, f"regime_n_ues[{i}]",
                   f"an integer in [1, n_ues={self.n_ues}]", k)  # fmt: skip
        for i, k in enumerate(self.regime_sensor_interval):
            _check(_whole(k) and k >= 1, f"regime_sensor_interval[{i}]", "an integer >= 1", k)
        lengths = {len(v) for v in regimes.values() if v}
        for name, values in regimes.items():
            if values:
                given = ", ".join(f"{k} {len(v)}" for k, v in regimes.items() if v)
                _check(len(values) >= 2 and len(lengths) == 1, name,
                       "a tuple of at least 2 entries, as long as the other non-empty "
                       f"regime_* tuples (lengths: {given})", values)  # fmt: skip
        h = self.regime_hold_steps
        _check(_finite(h) and h >= 1.0, "regime_hold_steps", "a finite number >= 1 [steps]", h)
        _check(isinstance(self.traffic_randomize, bool), "traffic_randomize", "true or false",
               self.traffic_randomize)  # fmt: skip
        for name, (lo_min, hi_max, whole, bounds) in RAND_RANGES.items():
            lo_hi = getattr(self, name)
            ok = isinstance(lo_hi, tuple) and len(lo_hi) == 2
            ok = ok and all((_whole(v) if whole else _finite(v)) for v in lo_hi)
            _check(ok and lo_hi[0] <= lo_hi[1], name, "a (lo, hi) pair with lo <= hi"
                   + (" (whole numbers)" if whole else ""), lo_hi)  # fmt: skip
            _check(lo_hi[0] >= lo_min and lo_hi[1] <= hi_max, name, bounds, lo_hi)
        if not self.traffic_randomize:
            return
        _check(
            not self.has_regimes,
            "traffic_randomize",
            "false when traffic regimes are set (regime_*): the two exclude each other",
            True,
        )
        _check(self.n_cells == 1, "traffic_randomize", "used with one cell only", True)
        _check(self.job_sizes == "poisson", "traffic_randomize",
               "used with job_sizes='poisson' only", True)  # fmt: skip
        _check(self.rand_n_ues[1] <= self.n_ues, "rand_n_ues",
               f"<= n_ues={self.n_ues} (the UE slots)", self.rand_n_ues)  # fmt: skip
        _check(
            self.rand_n_sensors[1] <= self.n_sensors[0],
            "rand_n_sensors",
            f"<= n_sensors={self.n_sensors[0]} (the sensor sites)",
            self.rand_n_sensors,
        )

    # --- derived quantities (never stored) --------------------------------------------------
    @property
    def n_cells(self) -> int:
        return len(self.bs_positions)

    @property
    def n_regimes(self) -> int:
        """Number of traffic regimes (0: traffic does not switch within an episode)."""
        return max(len(getattr(self, name)) for name in REGIME_FIELDS)

    @property
    def has_regimes(self) -> bool:
        return self.n_regimes > 0

    def regime_table(self) -> tuple[tuple[float, int, int], ...]:
        """Per regime: (UE job probability, active UEs, sensor update interval)."""
        return tuple(
            (
                self.regime_ue_job_prob[r] if self.regime_ue_job_prob else self.ue_job_prob,
                self.regime_n_ues[r] if self.regime_n_ues else self.n_ues,
                self.regime_sensor_interval[r]
                if self.regime_sensor_interval
                else self.sensor_interval,
            )
            for r in range(self.n_regimes)
        )

    @property
    def n_sensors_total(self) -> int:
        return sum(self.n_sensors)

    @property
    def sensor_cell_start(self) -> tuple[int, ...]:
        """Index of the first sensor of each cell, plus the total (sensors are grouped by cell)."""
        out = [0]
        for s in self.n_sensors:
            out.append(out[-1] + s)
        return tuple(out)

    @property
    def n_hotspot_ues(self) -> int:
        """UEs held by the moving hotspots (the lowest ids)."""
        return len(self.hotspot_cells) * self.hotspot_ues

    def ue_drift(self) -> tuple[tuple[float, float], ...]:
        """Per UE, the drift (vx, vy) of its region [m/step]: its moving hotspot's, else 0."""
        out = []
        for h in self.hotspot_heading_deg:
            rad = math.radians(h)
            v = (self.hotspot_speed * math.cos(rad), self.hotspot_speed * math.sin(rad))
            out += [v] * self.hotspot_ues
        return tuple(out) + ((0.0, 0.0),) * (self.n_ues - len(out))

    def ue_regions(self) -> tuple[tuple[float, float, float, float], ...]:
        """Per UE, the rectangle (x0, y0, width, height) of its positions and waypoints (for a
        moving hotspot's UEs: at the start of the episode)."""
        whole = (0.0, 0.0, self.area_m, self.area_m)
        if self.hotspot_cells:
            r = self.ue_hotspot_radius_m
            moving = []
            for c in self.hotspot_cells:
                bx, by = self.bs_positions[c]
                moving += [(bx - r, by - r, 2 * r, 2 * r)] * self.hotspot_ues
            return tuple(moving) + (whole,) * (self.n_ues - len(moving))
        if self.ue_hotspot_cell < 0:
            return (whole,) * self.n_ues
        bx, by = self.bs_positions[self.ue_hotspot_cell]
        r = self.ue_hotspot_radius_m
        x0, y0 = max(bx - r, 0.0), max(by - r, 0.0)
        hot = (x0, y0, min(bx + r, self.area_m) - x0, min(by + r, self.area_m) - y0)
        n_hot = round(self.ue_hotspot_fraction * self.n_ues)
        return (hot,) * n_hot + (whole,) * (self.n_ues - n_hot)

    @property
    def ue_compute_demand(self) -> float:
        """Mean UE compute offered per step [units].

        Load check: ``docs/model/cell.md#derived-quantities-and-the-load-they-imply``.
        """
        return self.n_ues * self.ue_job_prob * self.ue_compute_mean

    @property
    def sensor_compute_demand(self) -> float:
        """Mean sensor compute offered per step [units]."""
        return self.n_sensors_total * self.sensor_compute_mean / self.sensor_interval

    @property
    def heuristic_split(self) -> float:
        """The paper's heuristic share N_UE / (N_UE + N_sensors)."""
        return self.n_ues / (self.n_ues + self.n_sensors_total)


@dataclass(frozen=True)
class RewardParams:
    """Reward: r_t = sum over UE jobs done at t of R_s delta^AoSI + p_d 1(AoRI>tau).

    Source: ``docs/model/cell.md#reward``.
    """

    sync_reward: float = 10.0  # base synchronisation reward R_s
    delta: float = 0.9  # discount per step of AoSI, in (0, 1]
    delay_threshold: int = 2  # tau [steps]: AoRI above this is penalised
    penalty: float = 0.0  # p_d per late UE job (<= 0; the paper used 0, -1, -3, -5)
    sync_threshold: int = 10  # sigma [steps]: AoSI bound of a "fulfilled" job (metrics only)

    def __post_init__(self) -> None:
        _check(_finite(self.sync_reward), "sync_reward", "a finite number", self.sync_reward)
        _check(_finite(self.delta) and 0.0 < self.delta <= 1.0, "delta", "in (0, 1]", self.delta)
        t = self.delay_threshold
        _check(isinstance(t, int) and not isinstance(t, bool) and t >= 0, "delay_threshold",
               "an integer >= 0 [steps]", t)  # fmt: skip
        _check(_finite(self.penalty) and self.penalty <= 0, "penalty", "a finite number <= 0",
               self.penalty)  # fmt: skip
        sg = self.sync_threshold
        _check(isinstance(sg, int) and not isinstance(sg, bool) and sg >= 0, "sync_threshold",
               "an integer >= 0 [steps]", sg)  # fmt: skip


@dataclass(frozen=True)
class EnvParams:
    """Everything an environment needs: scenario, reward and observation mode."""

    scenario: ScenarioParams = field(default_factory=ScenarioParams)
    reward: RewardParams = field(default_factory=RewardParams)
    obs_mode: str = "raw"  # raw queue lengths (the paper), log1p, or scaled (divided by obs_scale)
    obs_scale: float = 100.0  # divisor for obs_mode="scaled" [jobs]
    # --- learning-side options (docs/model/cell.md#learning-options-of-the-single-cell-env) ------
    # The defaults are the paper's env.
    obs_uplink: bool = False  # observation also holds the UE and sensor uplink backlogs [jobs]
    obs_age: bool = False  # observation also holds the mean age of the sensor updates [steps]
    action_mode: str = "direct"  # "residual": the action corrects the queue-aware rule
    residual_scale: float = 0.3  # residual: w = clip(rule(queues) + residual_scale * a, 0, 1)
    residual_rule: tuple[float, float, float, float] = (0.3, 0.1, 0.5, 4.0)  # (w_b, lo, hi, k)
    reward_scale: float = 1.0  # the env's reward (not the KPIs) is multiplied by it

    def __post_init__(self) -> None:
        _check(self.obs_mode in OBS_MODES, "obs_mode", f"one of {OBS_MODES}", self.obs_mode)
        _check(_finite(self.obs_scale) and self.obs_scale > 0, "obs_scale", "a finite number > 0",
               self.obs_scale)  # fmt: skip
        _check(isinstance(self.obs_uplink, bool), "obs_uplink", "true or false", self.obs_uplink)
        _check(isinstance(self.obs_age, bool), "obs_age", "true or false", self.obs_age)
        _check(self.action_mode in ACTION_MODES, "action_mode", f"one of {ACTION_MODES}",
               self.action_mode)  # fmt: skip
        _check(_finite(self.residual_scale) and 0 < self.residual_scale <= 1, "residual_scale",
               "a number in (0, 1]", self.residual_scale)  # fmt: skip
        rule = self.residual_rule
        ok = isinstance(rule, tuple) and len(rule) == 4 and all(_finite(v) for v in rule)
        ok = ok and all(0.0 <= v <= 1.0 for v in rule[:3]) and rule[1] <= rule[2] and rule[3] > 0
        _check(ok, "residual_rule", "(w_b, lo, hi, k): shares in [0, 1], lo <= hi, k > 0", rule)
        _check(_finite(self.reward_scale) and self.reward_scale > 0, "reward_scale",
               "a finite number > 0", self.reward_scale)  # fmt: skip

    @property
    def obs_width(self) -> int:
        """Observation entries per cell: the two BS queues, the two uplink backlogs
        (``obs_uplink``), then the sensor update age (``obs_age``)."""
        return 2 + 2 * self.obs_uplink + self.obs_age

    def to_dict(self) -> dict[str, Any]:
        """Nested plain-type dict (tuples become lists), the inverse of :meth:`from_dict`."""
        d = asdict(self)
        return _listify(d)  # type: ignore[no-any-return]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EnvParams:
        scen = dict(d.get("scenario", {}))
        for name in TUPLE_FIELDS:
            if name in scen:
                scen[name] = tuple(scen[name])
        if "bs_positions" in scen:
            scen["bs_positions"] = tuple(tuple(float(v) for v in p) for p in scen["bs_positions"])
        env = {k: v for k, v in d.items() if k not in ("scenario", "reward")}
        if "residual_rule" in env:
            env["residual_rule"] = tuple(float(v) for v in env["residual_rule"])
        return cls(
            scenario=ScenarioParams(**scen), reward=RewardParams(**d.get("reward", {})), **env
        )


def _listify(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _listify(v) for k, v in x.items()}
    if isinstance(x, (tuple, list)):
        return [_listify(v) for v in x]
    return x


SCENARIO_FIELDS = frozenset(f.name for f in fields(ScenarioParams))
REWARD_FIELDS = frozenset(f.name for f in fields(RewardParams))
ENV_FIELDS = frozenset(f.name for f in fields(EnvParams)) - {"scenario", "reward"}
PER_CELL_FIELDS = ("bandwidth_hz", "mec_capacity", "n_sensors")
# flat tuple fields of ScenarioParams (lists in plain dicts)
TUPLE_FIELDS = (
    PER_CELL_FIELDS + REGIME_FIELDS + tuple(RAND_RANGES) + ("hotspot_cells", "hotspot_heading_deg")
)
