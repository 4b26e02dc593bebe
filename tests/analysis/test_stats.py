"""Statistics: bootstrap intervals, t-tests against scipy, the JZS Bayes factor against an independent integral."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from societas.analysis.stats import (
    bootstrap_by,
    bootstrap_ci,
    chi_square,
    pooled_ttest,
    seeds_table,
    ttest_bf,
    ttest_bf_from_t,
    welch_ttest,
)

R_MEDIUM = math.sqrt(2) / 2


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_ci_covers_the_mean_and_is_reproducible() -> None:
    x = np.arange(1.0, 101.0)  # mean 50.5, sd 29.01: the normal-theory 95% half width is 5.69
    for method in ("percentile", "basic", "bca"):
        est, low, high = bootstrap_ci(x, confidence=0.95, n_resamples=4000, seed=1, method=method)
        assert est == 50.5
        assert low < 50.5 < high
        assert 4.5 < (high - low) / 2 < 7.0, method
        assert bootstrap_ci(x, n_resamples=4000, seed=1, method=method) == (est, low, high)
    other = bootstrap_ci(x, n_resamples=4000, seed=2)
    assert other[1:] != bootstrap_ci(x, n_resamples=4000, seed=1)[1:]


def test_bootstrap_ci_nominal_coverage() -> None:
    rng = np.random.default_rng(0)
    hits = 0
    trials = 120
    for _ in range(trials):
        _, low, high = bootstrap_ci(rng.normal(3.0, 2.0, 40), n_resamples=1000, seed=0)
        hits += low <= 3.0 <= high
    assert 0.85 <= hits / trials <= 1.0


def test_bootstrap_ci_edge_cases_and_other_statistics() -> None:
    assert all(math.isnan(v) for v in bootstrap_ci([]))
    assert bootstrap_ci([4.0]) == (4.0, 4.0, 4.0)
    assert bootstrap_ci([2.0, 2.0, 2.0, np.nan]) == (2.0, 2.0, 2.0)
    est, low, high = bootstrap_ci([1, 2, 3, 4, 100], np.median, n_resamples=2000)
    assert est == 3.0 and low <= 3.0 <= high
    with pytest.raises(ValueError, match="method"):
        bootstrap_ci([1, 2], method="normal")  # type: ignore[arg-type]


def test_bootstrap_by_is_tidy() -> None:
    df = pd.DataFrame({"agent": ["a"] * 4 + ["b"] * 3, "v": [1.0, 2, 3, 4, 5, 5, np.nan]})
    out = bootstrap_by(df, "agent", "v", n_resamples=500)
    assert list(out.columns) == ["agent", "n", "estimate", "low", "high"]
    assert out["agent"].tolist() == ["a", "b"]
    assert out["n"].tolist() == [4, 2]
    assert out["estimate"].tolist() == [2.5, 5.0]
    assert out.loc[1, "low"] == out.loc[1, "high"] == 5.0
    two = bootstrap_by(df.assign(k=1), ["agent", "k"], "v", n_resamples=500)
    assert list(two.columns[:2]) == ["agent", "k"]


# --------------------------------------------------------------------------- t-tests

X = np.array([5.1, 4.8, 6.2, 5.9, 6.8, 5.5, 7.1, 6.0])
Y = np.array([4.2, 4.9, 5.0, 3.8, 5.6, 4.4, 4.7])


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_ttests_match_scipy(alternative: str) -> None:
    for fn, equal_var in ((welch_ttest, False), (pooled_ttest, True)):
        res = fn(X, Y, alternative=alternative)
        ref = stats.ttest_ind(X, Y, equal_var=equal_var, alternative=alternative)
        assert res.t == pytest.approx(ref.statistic, rel=1e-12)
        assert res.p == pytest.approx(ref.pvalue, rel=1e-12)
        assert res.df == pytest.approx(ref.df, rel=1e-12)
        assert res.diff == pytest.approx(X.mean() - Y.mean())
        assert (res.n_x, res.n_y) == (8, 7)


def test_ttest_confidence_interval_by_hand() -> None:
    nx, ny = len(X), len(Y)
    sp2 = ((nx - 1) * X.var(ddof=1) + (ny - 1) * Y.var(ddof=1)) / (nx + ny - 2)
    se = math.sqrt(sp2 * (1 / nx + 1 / ny))
    q = stats.t.ppf(0.975, nx + ny - 2)
    d = X.mean() - Y.mean()
    res = pooled_ttest(X, Y)
    assert res.ci == pytest.approx((d - q * se, d + q * se), rel=1e-10)
    assert res.df == nx + ny - 2
    se_w = math.sqrt(X.var(ddof=1) / nx + Y.var(ddof=1) / ny)
    df_w = se_w**4 / ((X.var(ddof=1) / nx) ** 2 / (nx - 1) + (Y.var(ddof=1) / ny) ** 2 / (ny - 1))
    w = welch_ttest(X, Y, alternative="greater", confidence=0.9)
    assert w.df == pytest.approx(df_w)
    assert w.ci[0] == pytest.approx(d - stats.t.ppf(0.9, df_w) * se_w) and w.ci[1] == math.inf
    with pytest.raises(ValueError):
        welch_ttest([1.0], Y)


# --------------------------------------------------------------------------- JZS Bayes factor


def bf_by_delta_integral(t: float, n1: int, n2: int, r: float, alternative: str) -> float:
    """BF10 by another route: the noncentral-t likelihood of t integrated against a Cauchy prior on delta."""
    n_eff, nu = n1 * n2 / (n1 + n2), n1 + n2 - 2

    def f(d: float) -> float:
        return stats.nct.pdf(t, nu, d * math.sqrt(n_eff)) * stats.cauchy.pdf(d, 0, r)

    upper = integrate.quad(f, 0, math.inf, limit=200, epsabs=0, epsrel=1e-11)[0]
    lower = integrate.quad(f, -math.inf, 0, limit=200, epsabs=0, epsrel=1e-11)[0]
    marginal = {"two-sided": upper + lower, "greater": 2 * upper, "less": 2 * lower}[alternative]
    return marginal / stats.t.pdf(t, nu)


CASES = [(2.0, 10, 12, R_MEDIUM), (-1.86, 10, 10, R_MEDIUM), (0.3, 50, 40, R_MEDIUM),
         (4.0, 30, 30, 1.0), (-3.0, 20, 25, math.sqrt(2)), (1.2, 5, 40, 0.5)]


@pytest.mark.parametrize(("t", "n1", "n2", "r"), CASES)
@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_ttest_bf_matches_the_delta_integral(t: float, n1: int, n2: int, r: float, alternative: str) -> None:
    got = ttest_bf_from_t(t, n1, n2, rscale=r, alternative=alternative)  # type: ignore[arg-type]
    assert got == pytest.approx(bf_by_delta_integral(t, n1, n2, r, alternative), rel=1e-7)


@pytest.mark.parametrize(("t", "n1", "n2", "r"), CASES)
def test_ttest_bf_one_sided_average_to_two_sided(t: float, n1: int, n2: int, r: float) -> None:
    two = ttest_bf_from_t(t, n1, n2, rscale=r)
    plus = ttest_bf_from_t(t, n1, n2, rscale=r, alternative="greater")
    minus = ttest_bf_from_t(t, n1, n2, rscale=r, alternative="less")
    assert two == pytest.approx(0.5 * plus + 0.5 * minus, rel=1e-9)
    assert plus == pytest.approx(ttest_bf_from_t(-t, n1, n2, rscale=r, alternative="less"), rel=1e-9)
    assert (plus > two) == (t > 0)


def test_ttest_bf_from_data() -> None:
    t = stats.ttest_ind(X, Y).statistic  # pooled variance, as BayesFactor
    for alt in ("two-sided", "greater", "less"):
        assert ttest_bf(X, Y, alternative=alt) == pytest.approx(  # type: ignore[arg-type]
            ttest_bf_from_t(t, len(X), len(Y), alternative=alt), rel=1e-12)  # type: ignore[arg-type]
    assert ttest_bf(X, Y, rscale="medium") == ttest_bf(X, Y)
    assert ttest_bf(X, Y, rscale="wide") == pytest.approx(ttest_bf(X, Y, rscale=1.0))
    assert math.isnan(ttest_bf([1.0, 1.0], [1.0, 1.0]))
    with pytest.raises(ValueError, match="rscale"):
        ttest_bf(X, Y, rscale=-1)
    with pytest.raises(ValueError, match="alternative"):
        ttest_bf(X, Y, alternative="bigger")  # type: ignore[arg-type]


def test_ttest_bf_behaves_like_a_bayes_factor() -> None:
    # no effect: evidence for the null grows with n; a real effect: evidence for H1 grows with n
    assert ttest_bf_from_t(0.0, 20, 20) < 1
    assert ttest_bf_from_t(0.0, 200, 200) < ttest_bf_from_t(0.0, 20, 20)
    assert ttest_bf_from_t(5.0, 40, 40) > 1000
    # a wider prior penalises a small effect more
    assert ttest_bf_from_t(1.0, 30, 30, rscale=math.sqrt(2)) < ttest_bf_from_t(1.0, 30, 30, rscale=0.5)


def test_one_sample_bayes_factor() -> None:
    x = np.array([0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0])
    t = stats.ttest_1samp(x, 0.0).statistic
    n, nu = len(x), len(x) - 1

    def f(d: float) -> float:
        return stats.nct.pdf(t, nu, d * math.sqrt(n)) * stats.cauchy.pdf(d, 0, R_MEDIUM)

    ref = (integrate.quad(f, -math.inf, 0)[0] + integrate.quad(f, 0, math.inf)[0]) / stats.t.pdf(t, nu)
    assert ttest_bf(x) == pytest.approx(ref, rel=1e-7)


# --------------------------------------------------------------------------- chi-square, seeds


def test_chi_square_by_hand() -> None:
    table = np.array([[10, 20, 30], [20, 20, 20]])
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / table.sum()
    x2 = ((table - expected) ** 2 / expected).sum()
    res = chi_square(pd.DataFrame(table))
    assert res.statistic == pytest.approx(x2) and res.dof == 2
    assert res.p == pytest.approx(stats.chi2.sf(x2, 2))
    two = np.array([[12, 5], [3, 10]])
    e2 = two.sum(1, keepdims=True) * two.sum(0, keepdims=True) / two.sum()
    yates = ((np.abs(two - e2) - 0.5) ** 2 / e2).sum()
    assert chi_square(two).statistic == pytest.approx(yates)
    assert chi_square(two, correction=False).statistic == pytest.approx(((two - e2) ** 2 / e2).sum())


def test_seeds_table_keeps_every_seed() -> None:
    df = pd.DataFrame({
        "agent": ["a", "a", "a", "a", "b", "b", "b"],
        "seed": [0, 0, 1, 2, 0, 1, 1],
        "score": [1.0, 3.0, 5.0, 9.0, 2.0, 4.0, 8.0],
    })
    out = seeds_table(df, "score", "seed", by="agent").set_index("agent")
    assert list(out.columns) == ["seed=0", "seed=1", "seed=2", "pooled", "seeds", "seed_sd", "seed_min", "seed_max"]
    assert out.loc["a", ["seed=0", "seed=1", "seed=2"]].tolist() == [2.0, 5.0, 9.0]
    assert out.loc["a", "pooled"] == 4.5  # all four rows, not the mean of seed means (5.33)
    assert out.loc["a", "seed_sd"] == pytest.approx(np.std([2.0, 5.0, 9.0], ddof=1))
    assert math.isnan(out.loc["b", "seed=2"]) and out.loc["b", "seeds"] == 2
    assert (out.loc["b", "seed_min"], out.loc["b", "seed_max"]) == (2.0, 6.0)
    overall = seeds_table(df, "score", "seed")
    assert len(overall) == 1 and overall.loc[0, "pooled"] == pytest.approx(32 / 7)
