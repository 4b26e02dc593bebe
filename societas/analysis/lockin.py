"""Belief diversity and lock-in (Qiu et al. 2025), from a feedback-loop run's tables or plain arrays.

Per round (and question) of a `feedback-loop` episode, over the humans' stated stances:
- variance and std of the stances; `binned_entropy` (bits) of their histogram on the scale;
- relative diversity: std of stances / std of the same round's readings (how much of
  the evidence's spread survives in what people say; 1 = all of it, 0 = none);
- `mean_jaccard_distance` of the agents' topic sets: each human's set is
  {(question, bin of its latest stance on it)}, so it counts how many questions two
  humans place differently (with one question: the share of pairs in different bins);
- `lineage_diversity` on a concept tree: D = (log|T| - log E_{u,v}[|T| / |T_lca(u,v)|]) / log|T|,
  |T_x| the size of the subtree rooted at x. u and v are the concepts of two different
  agents, every ordered pair of distinct agents equally likely (without replacement;
  `replacement=True` draws the two agents independently, so an agent may pair with itself).
  D = 0 when everybody holds the same leaf, 1 when every pair meets only at the root. For
  stances the tree is `scale_tree`: the scale halved `depth` times (binary, |T| = 2^(depth+1) - 1);
- `embedding_dispersion` of the statements: 1 - mean pairwise cosine similarity of their
  sentence embeddings (needs the [embed] extra);
- consensus error: |mean stance - truth|.
Lock-in (`detect_lockin`): diversity falls below a threshold and stays below to the end
of the run while readings keep arriving (rounds whose readings disagree); the time to
lock-in is the first round of that final stretch, which must last `min_duration` rounds.
`kink_regression` estimates a diversity drop at given release times (a regression-kink
design: piecewise-linear OLS with a level shift and a slope change at every release).
"""

from __future__ import annotations

import json
import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

GAME = "feedback-loop"
DEFAULT_THRESHOLD = 1e-3
"""Relative diversity below which a society counts as locked in (stances keep < 0.1% of the readings' spread)."""
DEFAULT_MIN_DURATION = 10
SETTING_KEYS = ("lambda1", "lambda2", "self_weight", "human_weight", "graph", "release_every", "window")


# -- measures on arrays ---------------------------------------------------------------


def variance(stances: ArrayLike) -> float:
    """Population variance of the stances (NaN when there are none)."""
    x = np.asarray(stances, dtype=float)
    return float(x.var()) if x.size else math.nan


def binned_entropy(stances: ArrayLike, low: float, high: float, bins: int = 10) -> float:
    """Shannon entropy (bits) of the stances' histogram over `bins` equal bins of [low, high]."""
    counts = np.bincount(_bins(stances, low, high, bins), minlength=bins)
    total = counts.sum()
    if not total:
        return math.nan
    share = counts[counts > 0] / total
    return float(-(share * np.log2(share)).sum())


def _bins(stances: ArrayLike, low: float, high: float, bins: int) -> np.ndarray:
    x = np.asarray(stances, dtype=float)
    if not high > low or bins < 1:
        raise ValueError(f"need low < high and bins >= 1, got [{low}, {high}] and {bins}")
    return np.clip(((x - low) / (high - low) * bins).astype(int), 0, bins - 1)


def mean_jaccard_distance(sets: Sequence[Iterable[Hashable]]) -> float:
    """Mean Jaccard distance 1 - |A & B| / |A | B| over unordered pairs of distinct agents.

    Two empty sets are at distance 0. NaN with fewer than two agents.
    """
    groups = [set(s) for s in sets]
    n = len(groups)
    if n < 2:
        return math.nan
    items = {x: i for i, x in enumerate(set().union(*groups))}
    member = np.zeros((n, max(1, len(items))))
    for r, g in enumerate(groups):
        member[r, [items[x] for x in g]] = 1.0
    inter = member @ member.T
    size = member.sum(axis=1)
    union = size[:, None] + size[None, :] - inter
    dist = 1.0 - np.divide(inter, union, out=np.ones_like(inter), where=union > 0)
    upper = np.triu_indices(n, k=1)
    return float(dist[upper].mean())


def scale_tree(depth: int) -> dict[str, str | None]:
    """The scale as a binary concept tree, node -> parent: root "", children "0" and "1", ...

    A node is the bit string of the halvings that lead to it; its leaves at `depth`
    are the 2^depth equal bins of the scale, left to right.
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth must be an integer >= 1, got {depth!r}")
    tree: dict[str, str | None] = {"": None}
    level = [""]
    for _ in range(depth):
        level = [node + bit for node in level for bit in "01"]
        tree.update((node, node[:-1]) for node in level)
    return tree


def stance_concepts(stances: ArrayLike, low: float, high: float, depth: int) -> list[str]:
    """The leaf of `scale_tree(depth)` each stance falls in."""
    return [format(int(b), f"0{depth}b") for b in _bins(stances, low, high, 2**depth)]


def lineage_diversity(tree: Any, concepts: Iterable[Hashable], *, replacement: bool = False) -> float:
    """D = (log|T| - log E_{u,v}[|T| / |T_lca(u,v)|]) / log|T| (see the module docstring for the pairs).

    `tree`: a mapping node -> parent (None for the root) or a networkx DiGraph with
    edges parent -> child. `concepts`: one node per agent. NaN with fewer than two
    agents (one, with replacement).
    """
    parent = _parents(tree)
    total = len(parent)
    if total < 2:
        raise ValueError("lineage diversity needs a tree of at least two concepts")
    counts: dict[Hashable, int] = {}
    n = 0
    for c in concepts:
        if c not in parent:
            raise ValueError(f"concept {c!r} is not a node of the tree")
        counts[c] = counts.get(c, 0) + 1
        n += 1
    pairs = n * n if replacement else n * (n - 1)
    if pairs == 0:
        return math.nan
    size = dict.fromkeys(parent, 1)
    inside = {x: counts.get(x, 0) for x in parent}  # agents in x's subtree
    below = dict.fromkeys(parent, 0)  # pairs inside one child's subtree of x
    for x in _bottom_up(parent):
        up = parent[x]
        if up is not None:
            size[up] += size[x]
            inside[up] += inside[x]
            below[up] += _pairs(inside[x], replacement)
    expected = sum((_pairs(inside[x], replacement) - below[x]) * total / size[x] for x in parent) / pairs
    return (math.log(total) - math.log(expected)) / math.log(total)


def _pairs(k: int, replacement: bool) -> int:
    return k * k if replacement else k * (k - 1)


def _parents(tree: Any) -> dict[Hashable, Hashable | None]:
    if isinstance(tree, Mapping):
        parent = dict(tree)
    else:
        import networkx as nx

        if not isinstance(tree, nx.DiGraph):
            raise TypeError("tree must map node -> parent or be a networkx DiGraph (edges parent -> child)")
        parent = {x: None for x in tree.nodes}
        for u, v in tree.edges:
            if parent[v] is not None:
                raise ValueError(f"node {v!r} has two parents: not a tree")
            parent[v] = u
    roots = [x for x, p in parent.items() if p is None]
    if len(roots) != 1:
        raise ValueError(f"a tree has exactly one root (a node without parent), found {len(roots)}")
    missing = [p for p in parent.values() if p is not None and p not in parent]
    if missing:
        raise ValueError(f"parents {missing[:3]!r} are not nodes of the tree")
    return parent


def _bottom_up(parent: Mapping[Hashable, Hashable | None]) -> list[Hashable]:
    """Every node after all of its descendants (children before parents)."""
    children: dict[Hashable, list[Hashable]] = {x: [] for x in parent}
    root = None
    for x, p in parent.items():
        if p is None:
            root = x
        else:
            children[p].append(x)
    order, stack = [], [root]
    while stack:
        x = stack.pop()
        order.append(x)
        stack.extend(children[x])
    if len(order) != len(parent):
        raise ValueError("the tree has a cycle or nodes not reachable from its root")
    return order[::-1]


def embedding_dispersion(texts: Sequence[str]) -> float:
    """1 - mean pairwise cosine similarity of the texts' sentence embeddings (needs the [embed] extra)."""
    from societas.analysis.embeddings import embed, mean_pairwise_similarity

    texts = [t for t in texts if isinstance(t, str) and t.strip()]
    if len(texts) < 2:
        return math.nan
    return 1.0 - mean_pairwise_similarity(embed(texts))


def consensus_error(stances: ArrayLike, truth: float) -> float:
    """|mean stance - truth|."""
    x = np.asarray(stances, dtype=float)
    return float(abs(x.mean() - truth)) if x.size else math.nan


@dataclass(frozen=True, slots=True)
class LockIn:
    """Whether a diversity series locked in, and from which round (None if it did not)."""

    locked: bool
    round: int | None


def detect_lockin(rounds: ArrayLike, diversity: ArrayLike, threshold: float = DEFAULT_THRESHOLD, *,
                  min_duration: int = DEFAULT_MIN_DURATION) -> LockIn:
    """Lock-in: diversity below `threshold` from some round to the last, for at least `min_duration` rounds.

    NaN entries (rounds without disagreeing readings, where diversity relative to
    the evidence is undefined) are skipped.
    """
    r = np.asarray(rounds, dtype=float)
    d = np.asarray(diversity, dtype=float)
    if r.shape != d.shape:
        raise ValueError(f"rounds and diversity differ in length: {r.shape} vs {d.shape}")
    ok = ~np.isnan(d)
    r, d = r[ok], d[ok]
    order = np.argsort(r, kind="stable")
    r, d = r[order], d[order]
    above = np.flatnonzero(d >= threshold)
    start = above[-1] + 1 if above.size else 0
    if len(d) - start < max(1, min_duration):
        return LockIn(False, None)
    return LockIn(True, int(r[start]))


@dataclass(frozen=True, slots=True)
class KinkFit:
    """A regression-kink fit of y on time with a level shift and a slope change at each release.

    drop[r]: the level shift at release r (negative = diversity fell); slope_change[r]:
    the change of slope there; *_se: their OLS standard errors; mean_drop / mean_drop_se:
    the average shift over the releases and its standard error.
    """

    releases: np.ndarray
    drop: np.ndarray
    drop_se: np.ndarray
    slope_change: np.ndarray
    slope_change_se: np.ndarray
    mean_drop: float
    mean_drop_se: float
    coef: np.ndarray
    cov: np.ndarray
    residual_sd: float
    n: int


def kink_regression(t: ArrayLike, y: ArrayLike, releases: ArrayLike, *,
                    slope_changes: bool = True) -> KinkFit:
    """OLS of y = a + b t + sum_r [c_r 1(t >= T_r) + d_r (t - T_r)_+] + e (numpy least squares).

    c_r is the drop at release T_r (the first round that sees it); `slope_changes=False`
    drops the d_r terms (level shifts only). Standard errors: sigma^2 (X'X)^-1 with
    sigma^2 = RSS / (n - k).
    """
    tt = np.asarray(t, dtype=float)
    yy = np.asarray(y, dtype=float)
    rel = np.sort(np.asarray(releases, dtype=float).reshape(-1))
    if tt.shape != yy.shape or tt.ndim != 1:
        raise ValueError("t and y must be 1-D arrays of the same length")
    ok = np.isfinite(tt) & np.isfinite(yy)
    tt, yy = tt[ok], yy[ok]
    cols = [np.ones_like(tt), tt]
    for r in rel:
        cols.append((tt >= r).astype(float))
        if slope_changes:
            cols.append(np.clip(tt - r, 0.0, None))
    x = np.column_stack(cols)
    n, k = x.shape
    if n <= k:
        raise ValueError(f"kink regression needs more observations ({n}) than coefficients ({k})")
    coef, *_ = np.linalg.lstsq(x, yy, rcond=None)
    resid = yy - x @ coef
    sigma2 = float(resid @ resid) / (n - k)
    cov = sigma2 * np.linalg.pinv(x.T @ x)
    step = 2 if slope_changes else 1
    level = np.arange(2, k, step)
    se = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    contrast = np.zeros(k)
    contrast[level] = 1.0 / max(1, len(level))
    slope = level + 1 if slope_changes else np.array([], dtype=int)
    return KinkFit(
        releases=rel, drop=coef[level], drop_se=se[level],
        slope_change=coef[slope] if slope_changes else np.zeros(0),
        slope_change_se=se[slope] if slope_changes else np.zeros(0),
        mean_drop=float(contrast @ coef) if len(level) else math.nan,
        mean_drop_se=float(math.sqrt(max(0.0, contrast @ cov @ contrast))) if len(level) else math.nan,
        coef=coef, cov=cov, residual_sd=math.sqrt(sigma2), n=n,
    )


def release_rounds(rounds: int, topics: int = 1, release_every: int = 1) -> list[int]:
    """The rounds in which humans first see a new AI answer, in a feedback-loop episode.

    The AI is re-fitted on step s of a question when s is a multiple of
    release_every; its answer is seen from that question's next step.
    """
    out = []
    for t in range(1, rounds + 1):
        step = (t - 1) // topics + 1
        if step % release_every == 0 and t + topics <= rounds:
            out.append(t + topics)
    return out


# -- run tables -----------------------------------------------------------------------


def decisions(events: pd.DataFrame) -> pd.DataFrame:
    """Feedback-loop decisions with the environment's record expanded into columns."""
    ev = events[(events["env"] == GAME) & events["info"].notna()]
    records = pd.DataFrame([json.loads(x) for x in ev["info"]], index=ev.index)
    records = records.drop(columns=[c for c in ("round",) if c in records])
    return pd.concat([ev[["phase", "episode", "round", "seat", "agent", "policy", "valid"]], records], axis=1)


def episode_params(episodes: pd.DataFrame) -> pd.DataFrame:
    """One row per (phase, episode): the loop's parameters from the episode summary, and a setting label."""
    rows = []
    for (phase, episode), g in episodes.groupby(["phase", "episode"], sort=True):
        text = next((s for s in g["summary"] if isinstance(s, str) and s), None)
        facts = json.loads(text) if text else {}
        row = {"phase": int(phase), "episode": int(episode)}
        row.update({k: facts.get(k) for k in (*SETTING_KEYS, "coupling", "spectral_radius", "num_humans",
                                              "topics", "rounds")})
        row["scale"] = tuple(facts.get("scale") or (0.0, 10.0))
        rows.append(row)
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out["setting"] = [_setting(r) for r in out.to_dict("records")]
    return out


def _setting(row: Mapping[str, Any]) -> str:
    parts = [f"λ1={row['lambda1']:g}", f"λ2={row['lambda2']:g}"]
    if row.get("coupling") is not None:
        parts.append(f"(N-1)λ1λ2={row['coupling']:.3g}")
    for key, default in (("self_weight", 0.0), ("human_weight", 0.0), ("release_every", 1), ("window", 1)):
        if row.get(key) not in (None, default):
            parts.append(f"{key}={row[key]:g}")
    if row.get("graph") not in (None, "none"):
        parts.append(f"graph={row['graph']}")
    return " ".join(parts)


def round_table(decisions: pd.DataFrame, *, scale: tuple[float, float] = (0.0, 10.0), bins: int = 10,
                depth: int = 4, embed: bool = False) -> pd.DataFrame:
    """One row per (phase, episode, round): the humans' diversity measures on the round's topic.

    `decisions` is `decisions(events)`; `embed=True` adds statement_dispersion ([embed] extra).
    """
    lo, hi = scale
    humans = decisions[decisions["role"] == "human"].sort_values(["phase", "episode", "round", "seat"],
                                                                 kind="stable")
    tree = scale_tree(depth)
    rows = []
    for (phase, episode), ep in humans.groupby(["phase", "episode"], sort=True):
        rnd = ep["round"].to_numpy()
        topic = ep["topic"].to_numpy(dtype=int)
        stance = ep["stance"].to_numpy(dtype=float)
        obs = ep["observation"].to_numpy(dtype=float)
        truth = ep["truth"].to_numpy(dtype=float)
        prec = ep["precision"].to_numpy(dtype=float)
        seen = ep["ai_answer"].to_numpy(dtype=float) if "ai_answer" in ep else np.full(len(ep), np.nan)
        texts = ep["statement"].to_numpy(dtype=object) if "statement" in ep else None
        agent_ids, agent = np.unique(ep["agent"].to_numpy(dtype=str), return_inverse=True)
        held = np.full((len(agent_ids), int(topic.max()) + 1), -1)  # latest bin per agent and topic
        codes = _bins(stance, lo, hi, bins)
        cuts = np.flatnonzero(np.diff(rnd)) + 1
        for part in np.split(np.arange(len(ep)), cuts):
            x = stance[part]
            held[agent[part], topic[part]] = codes[part]
            spread = float(x.std())
            o = obs[part]
            evidence = float(np.nanstd(o)) if np.isfinite(o).any() else math.nan
            t = float(truth[part[0]])
            s = seen[part]
            s = s[np.isfinite(s)]
            row = {
                "phase": int(phase), "episode": int(episode), "round": int(rnd[part[0]]),
                "topic": int(topic[part[0]]), "humans": len(x), "mean": float(x.mean()), "variance": spread**2,
                "std": spread, "entropy": binned_entropy(x, lo, hi, bins),
                "jaccard": _jaccard_of_bins(held[agent[part]]),
                "lineage": lineage_diversity(tree, stance_concepts(x, lo, hi, depth)),
                "evidence_std": evidence,
                "relative_diversity": spread / evidence if evidence > 0 else math.nan,
                "truth": t, "consensus_error": abs(float(x.mean()) - t),
                "ai_answer": float(s[0]) if len(s) else math.nan,
                "mean_precision": float(prec[part].mean()),
            }
            if embed:
                row["statement_dispersion"] = embedding_dispersion(
                    [] if texts is None else [v for v in texts[part] if isinstance(v, str)])
            rows.append(row)
    return pd.DataFrame(rows)


def _jaccard_of_bins(held: np.ndarray) -> float:
    """mean_jaccard_distance of the sets {(topic, bin)} in `held` (agents x topics, -1 = no stance yet)."""
    n = len(held)
    if n < 2:
        return math.nan
    has = held >= 0
    inter = np.zeros((n, n))
    for k in range(held.shape[1]):
        col = held[:, k]
        inter += (col[:, None] == col[None, :]) & has[:, k][:, None] & has[:, k][None, :]
    size = has.sum(axis=1).astype(float)
    union = size[:, None] + size[None, :] - inter
    dist = 1.0 - np.divide(inter, union, out=np.ones_like(inter), where=union > 0)
    upper = np.triu_indices(n, k=1)
    return float(dist[upper].mean())


def lockin_table(rounds: pd.DataFrame, params: pd.DataFrame | None = None, *, metric: str = "relative_diversity",
                 threshold: float = DEFAULT_THRESHOLD, min_duration: int = DEFAULT_MIN_DURATION) -> pd.DataFrame:
    """One row per (phase, episode, topic): locked in or not, the round it happened, final measures.

    `params` (from `episode_params`) adds each episode's setting and trust parameters.
    """
    rows = []
    for (phase, episode, topic), g in rounds.groupby(["phase", "episode", "topic"], sort=True):
        found = detect_lockin(g["round"], g[metric], threshold, min_duration=min_duration)
        last = g.iloc[-1]
        rows.append({"phase": int(phase), "episode": int(episode), "topic": int(topic), "locked_in": found.locked,
                     "lockin_round": found.round, f"final_{metric}": float(last[metric]),
                     "final_std": float(last["std"]), "final_consensus_error": float(last["consensus_error"]),
                     "mean_consensus_error": float(g["consensus_error"].mean())})
    out = pd.DataFrame(rows)
    if params is not None and not out.empty and not params.empty:
        out = out.merge(params, on=["phase", "episode"], how="left")
    return out


def diversity_over_time(rounds: pd.DataFrame, params: pd.DataFrame, *, metric: str = "relative_diversity",
                        points: int = 11) -> pd.DataFrame:
    """Mean `metric` per setting (over episodes and topics) at `points` rounds spread evenly over the run."""
    merged = rounds.merge(params[["phase", "episode", "setting"]], on=["phase", "episode"], how="left")
    all_rounds = np.sort(merged["round"].unique())
    if not len(all_rounds):
        return pd.DataFrame()
    picks = np.unique(all_rounds[np.linspace(0, len(all_rounds) - 1, min(points, len(all_rounds))).round()
                                 .astype(int)])
    table = merged[merged["round"].isin(picks)].pivot_table(index="setting", columns="round", values=metric,
                                                           aggfunc="mean", sort=False)
    order = list(dict.fromkeys(params["setting"]))
    return table.reindex([s for s in order if s in table.index])


def analyze_run(events: pd.DataFrame, episodes: pd.DataFrame, **kw: Any) -> tuple[pd.DataFrame, pd.DataFrame,
                                                                                 pd.DataFrame]:
    """(round table, lock-in table, parameters) of a feedback-loop run, from `load_run`'s frames."""
    params = episode_params(episodes)
    scale = tuple(params["scale"].iloc[0]) if len(params) else (0.0, 10.0)
    rounds = round_table(decisions(events), scale=scale)
    return rounds, lockin_table(rounds, params, **kw), params

