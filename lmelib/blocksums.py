"""The blocks of A = [Z X y]ᵀ[Z X y] from level codes, by bincount (no sparse products of Z).

Out of core (outofcore.py) every partition forms its share of the blocks that
CrossProducts.of (deviance.py) forms in memory from the sparse Z: the columns of
[Z X y] come as groups (level codes, values, number of levels), one per
random-effects term, with its ℓ columns per level in lme4's order (level by
level), and [X y] as one group of a single level.  Then Z_aᵀZ_b is a sum over
the rows of each (level of a, level of b) cell: a bincount per pair of columns.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = ["gram", "level_sums", "cell_sums", "dense_cross", "sparse_cross"]

# A partition sums a contingency table by a bincount over every cell (sorted, no hashing) when
# it has at most 16 cells per row (measured: faster than hashing the cells present, e.g. a
# 10,000 × 1,000 table from 1,000,000 rows) and at most 2**25 sums (256 MB).
DENSE_CELLS, CELLS_PER_ROW = 2**25, 16


def gram(groups: list[tuple]) -> np.ndarray:
    """[Z_rest X y]ᵀ[Z_rest X y], dense: the blocks on and above the diagonal, mirrored."""
    blocks = [[None] * len(groups) for _ in groups]
    for i, a in enumerate(groups):
        for j in range(i, len(groups)):
            blocks[i][j] = dense_cross(a, groups[j])
            blocks[j][i] = blocks[i][j].T
    return np.block(blocks)


def level_sums(codes: np.ndarray, va: np.ndarray, vb: np.ndarray, m: int) -> np.ndarray:
    """Σ over the rows of each level of va ⊗ vb: m × ℓa × ℓb, by bincount (no sparse algebra);
    for va is vb only the pairs i ≤ j are summed (the blocks are symmetric)."""
    if m == 1:
        return (va.T @ vb)[None]
    la, lb = va.shape[1], vb.shape[1]
    out = np.empty((m, la, lb))
    for i in range(la):
        for j in range(i if va is vb else 0, lb):
            out[:, i, j] = np.bincount(codes, weights=va[:, i] * vb[:, j], minlength=m)
            if va is vb:
                out[:, j, i] = out[:, i, j]
    return out


def cell_sums(a: tuple, b: tuple) -> tuple[np.ndarray, np.ndarray]:
    """The (level of a, level of b) cells present, as flat numbers, and each one's Σ va ⊗ vb."""
    (ca, va, _), (cb, vb, mb) = a, b
    key = ca.astype(np.int64) * mb + cb
    n_cells = a[2] * mb
    if n_cells * va.shape[1] * vb.shape[1] <= min(DENSE_CELLS, CELLS_PER_ROW * len(key)):
        cells = np.flatnonzero(np.bincount(key, minlength=n_cells))
        return cells, level_sums(key, va, vb, n_cells)[cells]
    row_cell, cells = pd.factorize(key)  # hashing the cells present: no sort of the rows
    return cells, level_sums(row_cell, va, vb, len(cells))


def dense_cross(a: tuple, b: tuple) -> np.ndarray:
    """Z_aᵀZ_b for two groups (codes, values, m), columns level by level as in design.ReTerm.Z."""
    (ca, va, ma), (cb, vb, mb) = a, b
    la, lb = va.shape[1], vb.shape[1]
    if a is b:  # one term with itself: block diagonal, one ℓ × ℓ block per level
        out = np.zeros((ma, la, ma, la))
        out[np.arange(ma), :, np.arange(ma), :] = level_sums(ca, va, va, ma)
    elif min(ma, mb) == 1:  # [X y] against a term: sums per level of the term
        sums = level_sums(ca if ma > 1 else cb, va, vb, max(ma, mb))
        out = sums.transpose(1, 0, 2) if ma == 1 else sums
    else:  # two terms: their contingency table, weighted
        cells, sums = cell_sums(a, b)
        out = np.zeros((ma * mb, la, lb))
        out[cells] = sums
        out = out.reshape(ma, mb, la, lb).transpose(0, 2, 1, 3)
    return out.reshape(ma * la, mb * lb)


def sparse_cross(a: tuple, b: tuple) -> sp.csr_array:
    """Z_aᵀZ_b of two terms, stored sparse (e.g. the contingency table of crossed factors)."""
    (ca, va, ma), (cb, vb, mb) = a, b
    la, lb = va.shape[1], vb.shape[1]
    cells, sums = cell_sums(a, b)  # cells × ℓa × ℓb
    rows = (cells // mb)[:, None, None] * la + np.arange(la)[None, :, None]
    cols = (cells % mb)[:, None, None] * lb + np.arange(lb)[None, None, :]
    rows, cols = np.broadcast_arrays(rows, cols, sums)[:2]
    return sp.csr_array((sums.ravel(), (rows.ravel(), cols.ravel())), shape=(ma * la, mb * lb))
