"""The model's numbers: radio checks (spec 3.1), randomness, and the paper's static splits."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from envs.core import make_params
from envs.core.batch import evaluate
from envs.core.policies import static, static_grid
from envs.core.radio import hata_coefficients, path_loss_db, spectral_efficiency
from envs.core.rng import poisson_cdf, stream


@pytest.mark.parametrize("d,loss,se", [(10, 71.24, 19.52), (50, 95.29, 11.53), (100, 105.65, 8.10)])
def test_radio_checks_of_spec(d: float, loss: float, se: float) -> None:
    p = make_params("paper").scenario
    assert float(path_loss_db(d, p)) == pytest.approx(loss, abs=0.01)
    assert float(spectral_efficiency(d, p)) == pytest.approx(se, abs=0.01)


def test_path_loss_closed_form_and_clamp() -> None:
    p = make_params("paper").scenario
    a, e = hata_coefficients(p)
    assert a == pytest.approx(140.053, abs=1e-3) and e == pytest.approx(34.407, abs=1e-3)
    assert float(path_loss_db(0.0, p)) == float(path_loss_db(1.0, p))  # clamped at 1 m


def test_below_snr_threshold_gets_no_rate() -> None:
    p = make_params("paper", snr_threshold=1e12).scenario
    assert float(spectral_efficiency(50, p)) == 0.0


def test_poisson_table_is_the_poisson_distribution() -> None:
    cdf = poisson_cdf(50.0)
    assert cdf[-1] == 1.0 and np.all(np.diff(cdf) >= 0)
    k = 50
    pmf_k = cdf[k] - cdf[k - 1]
    assert pmf_k == pytest.approx(math.exp(-50 + k * math.log(50) - math.lgamma(k + 1)), rel=1e-9)
    u = stream(0, "ue_traffic").random(200_000)
    draws = np.searchsorted(cdf, u, side="right")
    assert draws.mean() == pytest.approx(50, abs=0.1) and draws.var() == pytest.approx(50, rel=0.03)


def test_streams_are_independent_per_purpose() -> None:
    a = stream(1, "mobility").random(5)
    b = stream(1, "ue_traffic").random(5)
    assert not np.array_equal(a, b)
    assert np.array_equal(a, stream(1, "mobility").random(5))


def test_sensor_placement_respects_the_rules() -> None:
    from envs.core import Simulator

    p = make_params("three_cell")
    sim = Simulator(p)
    for seed in range(5):
        sim.reset(seed)
        bs = np.array(p.scenario.bs_positions)
        xy = sim.sens[:, :2]
        d_all = np.linalg.norm(xy[:, None, :] - bs[None], axis=-1)
        d_own = d_all[np.arange(len(xy)), sim.s_cell]
        assert np.all((d_own >= 20) & (d_own <= 90))
        assert np.all(d_own <= d_all.min(axis=1) + 1e-9)
        pair = np.linalg.norm(xy[:, None] - xy[None], axis=-1) + np.eye(len(xy)) * 1e9
        assert pair.min() >= 20


# Spec section 8: the authors' paper-era code, 20 episodes, mean +- std over episodes.
SPEC_TABLE = {
    (0.3, 0.3): ((7.64, 1.30), (9.68, 1.06), (83.03, 2.17)),
    (0.3, 0.4): ((14.49, 1.32), (6.69, 1.29), (88.89, 3.00)),
    (0.4, 0.3): ((10.18, 1.48), (9.83, 1.14), (83.25, 2.30)),
    (0.4, 0.4): ((19.39, 1.30), (2.09, 0.56), (97.70, 1.20)),
}


def test_static_splits_reproduce_the_spec_within_noise() -> None:
    """Each mean within 3 combined standard errors (ours: 200 episodes; theirs: 20)."""
    params = make_params("paper")
    splits = list(SPEC_TABLE)
    res = evaluate(params, [static(b, c) for b, c in splits], episodes=200, seed=1000)
    for i, split in enumerate(splits):
        for key, (mean, std) in zip(("sync_delay", "e2e_delay", "served_pct"), SPEC_TABLE[split],
                                    strict=True):  # fmt: skip
            ours = res.metrics[key][i]
            se = math.sqrt(ours.var(ddof=1) / len(ours) + std**2 / 20)
            assert abs(ours.mean() - mean) <= 3 * se, (split, key, ours.mean(), mean, se)


def test_paper_grid_shape_and_trade_off() -> None:
    """The 11x11 grid: more UE compute share -> more served but staler sync (paper Fig. 4)."""
    params = make_params("paper")
    res = evaluate(params, static_grid(0.1), episodes=10, seed=0)
    m = res.metrics
    labels = [p.label for p in res.policies]
    served = {lab: np.nanmean(m["served_pct"][i]) for i, lab in enumerate(labels)}
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        sync = {lab: np.nanmean(m["sync_delay"][i]) for i, lab in enumerate(labels)}
    assert len(labels) == 121
    assert served["static(0.4,0.4)"] > served["static(0.4,0.3)"]
    assert sync["static(0.4,0.4)"] > sync["static(0.4,0.3)"]
