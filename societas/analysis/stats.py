"""Statistics for comparing agents, conditions and seeds: intervals, tests, Bayes factors.

Every function takes plain arrays or DataFrames and returns numbers or tidy
frames; nothing here knows about run directories.

- `bootstrap_ci` / `bootstrap_by`: bootstrap confidence intervals
  (percentile, basic or BCa, through `scipy.stats.bootstrap`).
- `welch_ttest` / `pooled_ttest`: two-sample t-tests with the confidence
  interval of the difference of means, as R's `t.test`.
- `ttest_bf`: the JZS Bayes factor of a two-sample (or one-sample) t-test, as
  R's `BayesFactor::ttestBF`, two- or one-sided.
- `chi_square`: a chi-square test of independence on a contingency table.
- `seeds_table`: a metric per seed side by side with the pooled value, so
  variation between seeds stays visible.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

Alternative = Literal["two-sided", "greater", "less"]
BootstrapMethod = Literal["percentile", "basic", "bca"]
RSCALES = {"medium": math.sqrt(2) / 2, "wide": 1.0, "ultrawide": math.sqrt(2)}
"""Named Cauchy prior scales, as in BayesFactor."""

_ALTERNATIVES = ("two-sided", "greater", "less")


def _values(values: Any) -> np.ndarray:
    x = np.asarray(values, dtype=float).ravel()
    return x[~np.isnan(x)]


def _check_alternative(alternative: str) -> None:
    if alternative not in _ALTERNATIVES:
        raise ValueError(f"alternative must be one of {', '.join(_ALTERNATIVES)}; got {alternative!r}")


# --------------------------------------------------------------------------- bootstrap


def bootstrap_ci(
    values: Any,
    statistic: Callable[..., Any] = np.mean,
    *,
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
    method: BootstrapMethod = "percentile",
) -> tuple[float, float, float]:
    """Estimate and bootstrap confidence interval of `statistic` over `values`.

    Returns (estimate, low, high) with estimate = statistic(values). The interval
    resamples the n values with replacement `n_resamples` times (generator seeded
    with `seed`, so the same call gives the same interval):
    - percentile: the (1-c)/2 and (1+c)/2 quantiles of the resampled statistics;
    - basic: 2 * estimate minus those quantiles, swapped;
    - bca: percentile levels corrected for bias (z0 = Phi^-1(share of resampled
      statistics below the estimate)) and acceleration (from the jackknife), Efron 1987.
    NaN values are dropped. No values give (nan, nan, nan); one value, or all
    values equal, give (v, v, v): every resample is the sample itself.
    `statistic` is called with `axis=` when it accepts it (numpy reducers),
    which is much faster.
    """
    from scipy import stats  # imported on use: it takes seconds
    if method not in ("percentile", "basic", "bca"):
        raise ValueError(f"method must be percentile, basic or bca; got {method!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    x = _values(values)
    if len(x) == 0:
        return (math.nan, math.nan, math.nan)
    estimate = float(statistic(x))
    if np.all(x == x[0]):
        return (estimate, estimate, estimate)
    res = stats.bootstrap(
        (x,), statistic, n_resamples=n_resamples, confidence_level=confidence,
        method="BCa" if method == "bca" else method, rng=np.random.default_rng(seed),
    )
    return (estimate, float(res.confidence_interval.low), float(res.confidence_interval.high))


def bootstrap_by(
    df: pd.DataFrame,
    group: str | Sequence[str],
    value: str,
    statistic: Callable[..., Any] = np.mean,
    **kwargs: Any,
) -> pd.DataFrame:
    """`bootstrap_ci` of column `value` within each group: a tidy frame.

    Columns: the group column(s), n (non-missing values), estimate, low, high;
    one row per group, in sorted group order. `kwargs` go to `bootstrap_ci`
    (confidence, n_resamples, seed, method); every group uses the same seed.
    """
    keys = [group] if isinstance(group, str) else list(group)
    rows = []
    for key, part in df.groupby(keys, sort=True, dropna=False):
        x = _values(part[value])
        est, low, high = bootstrap_ci(x, statistic, **kwargs)
        key_t = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(keys, key_t)), "n": len(x), "estimate": est, "low": low, "high": high})
    return pd.DataFrame(rows, columns=[*keys, "n", "estimate", "low", "high"])


# --------------------------------------------------------------------------- t-tests


@dataclass(frozen=True, slots=True)
class TTest:
    """A two-sample t-test: statistic, degrees of freedom, p-value, means and the
    confidence interval of mean_x - mean_y (one-sided tests give a one-sided
    interval, as R's t.test: [low, inf) for "greater", (-inf, high] for "less")."""

    t: float
    df: float
    p: float
    mean_x: float
    mean_y: float
    diff: float
    ci: tuple[float, float]
    n_x: int
    n_y: int
    alternative: str
    confidence: float


def _ttest(x: Any, y: Any, equal_var: bool, alternative: str, confidence: float) -> TTest:
    from scipy import stats  # imported on use: it takes seconds
    _check_alternative(alternative)
    a, b = _values(x), _values(y)
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"a t-test needs at least 2 values per sample, got {len(a)} and {len(b)}")
    res = stats.ttest_ind(a, b, equal_var=equal_var, alternative=alternative)
    ci = res.confidence_interval(confidence_level=confidence)
    return TTest(
        t=float(res.statistic), df=float(res.df), p=float(res.pvalue),
        mean_x=float(a.mean()), mean_y=float(b.mean()), diff=float(a.mean() - b.mean()),
        ci=(float(ci.low), float(ci.high)), n_x=len(a), n_y=len(b),
        alternative=alternative, confidence=confidence,
    )


def welch_ttest(x: Any, y: Any, *, alternative: Alternative = "two-sided", confidence: float = 0.95) -> TTest:
    """Welch's t-test of mean(x) - mean(y) (unequal variances).

    t = (mean_x - mean_y) / se, se = sqrt(s_x^2/n_x + s_y^2/n_y);
    df = se^4 / ((s_x^2/n_x)^2/(n_x-1) + (s_y^2/n_y)^2/(n_y-1)) (Welch-Satterthwaite);
    p from Student's t with df; alternative "greater" tests mean_x > mean_y.
    CI = diff -/+ t_{df, q} * se. NaN values are dropped.
    """
    return _ttest(x, y, False, alternative, confidence)


def pooled_ttest(x: Any, y: Any, *, alternative: Alternative = "two-sided", confidence: float = 0.95) -> TTest:
    """Student's two-sample t-test of mean(x) - mean(y) with pooled variance.

    s_p^2 = ((n_x-1) s_x^2 + (n_y-1) s_y^2) / (n_x+n_y-2); se = s_p sqrt(1/n_x + 1/n_y);
    t = (mean_x - mean_y) / se, df = n_x + n_y - 2; CI = diff -/+ t_{df, q} * se.
    This t is the one `ttest_bf` turns into a Bayes factor. NaN values are dropped.
    """
    return _ttest(x, y, True, alternative, confidence)


# --------------------------------------------------------------------------- Bayes factors


def _log_bf10(t: float, n_eff: float, nu: float, rscale: float, alternative: str) -> float:
    """log BF10 by one integral over g (see `ttest_bf_from_t`)."""
    from scipy import stats  # imported on use: it takes seconds
    log_null = float(stats.t.logpdf(t, nu))
    log_norm = math.log(rscale) - 0.5 * math.log(2 * math.pi)

    def h(u: np.ndarray | float) -> np.ndarray:
        u = np.asarray(u, dtype=float)
        g = np.exp(u)
        s = np.sqrt(1.0 + n_eff * g)
        z = t / s
        out = -np.log(s) + stats.t.logpdf(z, nu)
        if alternative != "two-sided":
            alpha = np.sqrt(n_eff * g) * (1.0 if alternative == "greater" else -1.0)
            out = out + math.log(2.0) + stats.t.logcdf(alpha * z * np.sqrt((nu + 1) / (nu + z * z)), nu + 1)
        # prior of g: inverse gamma(1/2, r^2/2); u = log g adds the Jacobian g
        out = out + log_norm - 1.5 * u - rscale**2 / (2 * g) + u
        return out - log_null

    # The integrand is smooth and bell-shaped in u = log g: locate where it matters on a
    # coarse grid, then the trapezoid rule on a fine grid (exponentially accurate here).
    coarse = np.linspace(-60.0, 60.0, 2401)
    values = h(coarse)
    top = float(np.nanmax(values))
    keep = np.flatnonzero(values > top - 60.0)
    lo, hi = coarse[max(keep[0] - 1, 0)], coarse[min(keep[-1] + 1, len(coarse) - 1)]
    fine = np.linspace(lo, hi, 6001)
    y = np.exp(h(fine) - top)
    area = float((y.sum() - 0.5 * (y[0] + y[-1])) * (fine[1] - fine[0]))  # trapezoid rule
    return top + math.log(area)


def _rscale(rscale: float | str) -> float:
    if isinstance(rscale, str):
        if rscale not in RSCALES:
            raise ValueError(f"rscale must be a positive number or one of {', '.join(RSCALES)}; got {rscale!r}")
        return RSCALES[rscale]
    if not rscale > 0:
        raise ValueError(f"rscale must be positive, got {rscale}")
    return float(rscale)


def ttest_bf_from_t(
    t: float,
    n1: int,
    n2: int | None = None,
    *,
    rscale: float | str = math.sqrt(2) / 2,
    alternative: Alternative = "two-sided",
) -> float:
    """BF10 of the JZS t-test from a t statistic and sample sizes (Rouder et al. 2009).

    Two samples: N = n1 n2 / (n1 + n2), nu = n1 + n2 - 2 (t from pooled variance);
    one sample (n2 None): N = n1, nu = n1 - 1. Prior under H1: effect size
    delta ~ Cauchy(0, rscale), written as delta | g ~ Normal(0, g) with
    g ~ InverseGamma(1/2, rscale^2/2). Given g, t / sqrt(1 + N g) is Student t
    with nu df, so

        BF10 = int_0^inf (1+Ng)^(-1/2) f_nu(t / sqrt(1+Ng)) p(g) dg / f_nu(t),

    f_nu the t density. One-sided (Morey & Wagenmakers 2014): the prior is
    restricted to delta > 0 ("greater") or delta < 0 ("less") and renormalised;
    given g the numerator t is then skew-normal, so t / sqrt(1+Ng) has
    Azzalini's skew-t density 2 f_nu(z) F_{nu+1}(a z sqrt((nu+1)/(nu+z^2))),
    a = +/- sqrt(N g), F the t distribution function. This equals
    BF10 * P(delta in interval | data) / P(delta in interval), the restricted
    model against the null, i.e. BayesFactor's nullInterval=c(0, Inf) /
    c(-Inf, 0) result; the average of the two one-sided values is the two-sided one.
    The integral runs over u = log g, by the trapezoid rule on 6001 points spanning
    where the integrand is within e^-60 of its peak.
    """
    _check_alternative(alternative)
    r = _rscale(rscale)
    if n2 is None:
        n_eff, nu = float(n1), float(n1 - 1)
    else:
        n_eff, nu = n1 * n2 / (n1 + n2), float(n1 + n2 - 2)
    if nu < 1:
        raise ValueError(f"too few observations for a t-test (n1={n1}, n2={n2})")
    if not math.isfinite(t):
        return math.nan
    return math.exp(_log_bf10(float(t), n_eff, nu, r, alternative))


def ttest_bf(
    x: Any,
    y: Any | None = None,
    *,
    rscale: float | str = math.sqrt(2) / 2,
    alternative: Alternative = "two-sided",
) -> float:
    """BF10 of the JZS Bayesian t-test of mean(x) vs mean(y), as R's BayesFactor::ttestBF(x, y).

    t = (mean_x - mean_y) / (s_p sqrt(1/n_x + 1/n_y)) with pooled variance s_p^2
    (or the one-sample t of x against 0 when y is None); the Bayes factor is
    `ttest_bf_from_t(t, n_x, n_y)` (formula there). alternative "greater" is
    H1: delta > 0 (x above y, BayesFactor's nullInterval=c(0, Inf)); "less" is
    delta < 0 (nullInterval=c(-Inf, 0)). rscale: the Cauchy prior's scale on
    the standardised effect, a number or "medium" (sqrt(2)/2), "wide" (1),
    "ultrawide" (sqrt(2)). BF10 > 1 favours H1; NaN values are dropped; samples
    without variance give NaN.
    """
    a = _values(x)
    if y is None:
        if len(a) < 2:
            raise ValueError(f"a t-test needs at least 2 values, got {len(a)}")
        sd = a.std(ddof=1)
        t = a.mean() / (sd / math.sqrt(len(a))) if sd > 0 else math.nan
        return ttest_bf_from_t(t, len(a), None, rscale=rscale, alternative=alternative)
    b = _values(y)
    if len(a) < 1 or len(b) < 1 or len(a) + len(b) < 3:
        raise ValueError(f"a two-sample t-test needs n_x + n_y >= 3, got {len(a)} and {len(b)}")
    nu = len(a) + len(b) - 2
    ss = ((a - a.mean()) ** 2).sum() + ((b - b.mean()) ** 2).sum()
    sp = math.sqrt(ss / nu)
    t = (a.mean() - b.mean()) / (sp * math.sqrt(1 / len(a) + 1 / len(b))) if sp > 0 else math.nan
    return ttest_bf_from_t(t, len(a), len(b), rscale=rscale, alternative=alternative)


# --------------------------------------------------------------------------- contingency tables


@dataclass(frozen=True, slots=True)
class ChiSquare:
    """A chi-square test of independence: statistic, p-value, degrees of freedom, expected counts (by row)."""

    statistic: float
    p: float
    dof: int
    expected: tuple[tuple[float, ...], ...]


def chi_square(table: Any, *, correction: bool = True) -> ChiSquare:
    """Pearson's chi-square test of independence of a contingency table (counts).

    X^2 = sum (O - E)^2 / E with E = row total x column total / grand total,
    dof = (rows - 1)(columns - 1); for dof 1 and `correction`, Yates' continuity
    correction (|O - E| - 0.5)^2 is used, as scipy.stats.chi2_contingency and R's
    chisq.test. `table` may be a DataFrame (e.g. from pd.crosstab) or an array.
    """
    from scipy import stats  # imported on use: it takes seconds
    observed = np.asarray(table.to_numpy() if isinstance(table, pd.DataFrame) else table, dtype=float)
    res = stats.chi2_contingency(observed, correction=correction)
    return ChiSquare(statistic=float(res.statistic), p=float(res.pvalue), dof=int(res.dof),
                     expected=tuple(tuple(float(v) for v in row) for row in np.atleast_2d(res.expected_freq)))


# --------------------------------------------------------------------------- seeds


def seeds_table(
    df: pd.DataFrame,
    metric: str,
    seed_col: str,
    *,
    by: str | Sequence[str] | None = None,
    statistic: Callable[[np.ndarray], Any] = np.mean,
) -> pd.DataFrame:
    """A metric per seed, side by side, next to its pooled value: seeds are reported, not averaged away.

    Per group of `by` (one row overall when None): one column `<seed_col>=<s>`
    per seed s holding statistic(metric over that seed's rows); `pooled` =
    statistic over all the group's rows together; `seeds` = number of seeds
    with values; `seed_sd` = standard deviation of the per-seed values (ddof 1,
    NaN for one seed); `seed_min` / `seed_max` their range. A seed with no rows
    in a group shows NaN.
    """
    keys = [] if by is None else ([by] if isinstance(by, str) else list(by))
    seeds = sorted(df[seed_col].dropna().unique().tolist())
    seed_cols = [f"{seed_col}={s}" for s in seeds]
    groups = df.groupby(keys, sort=True, dropna=False) if keys else [((), df)]
    rows = []
    for key, part in groups:
        key_t = key if isinstance(key, tuple) else (key,)
        row: dict[str, Any] = dict(zip(keys, key_t))
        per_seed = []
        for s, col in zip(seeds, seed_cols):
            x = _values(part.loc[part[seed_col] == s, metric])
            v = float(statistic(x)) if len(x) else math.nan
            row[col] = v
            if len(x):
                per_seed.append(v)
        pooled = _values(part[metric])
        row["pooled"] = float(statistic(pooled)) if len(pooled) else math.nan
        row["seeds"] = len(per_seed)
        row["seed_sd"] = float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else math.nan
        row["seed_min"] = min(per_seed) if per_seed else math.nan
        row["seed_max"] = max(per_seed) if per_seed else math.nan
        rows.append(row)
    return pd.DataFrame(rows, columns=[*keys, *seed_cols, "pooled", "seeds", "seed_sd", "seed_min", "seed_max"])


def js_divergence(p: Sequence[float] | np.ndarray, q: Sequence[float] | np.ndarray) -> float:
    """Jensen-Shannon divergence in bits (0: same distribution, 1: disjoint); inputs are normalised.

    JSD = (KL(p || m) + KL(q || m)) / 2 with m = (p + q) / 2, i.e. the square of
    scipy's Jensen-Shannon distance in base 2. Raises ValueError when either
    input has no positive mass.
    """
    from scipy.spatial.distance import jensenshannon

    a, b = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    if a.sum() <= 0 or b.sum() <= 0:
        raise ValueError("js_divergence needs two distributions with positive mass")
    return float(jensenshannon(a, b, base=2) ** 2)
