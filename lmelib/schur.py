"""L21 L21ᵀ for scalar random-effects terms, from products formed once per fit.

Step III of the blocked Cholesky (deviance.py) subtracts L21 L21ᵀ from the dense
block.  When every random-effects term is scalar ((1 | g), (0 + x | g)), Λ1 and
Λ_R are diagonal and, with c_g the column of A_R1 for level g of the first term,

    L21 L21ᵀ = Λ_R G(w) Λ_R,   G(w) = Σ_g w_g c_g c_gᵀ,   w_g = λ1² / (λ1² A11_g + 1)

(L11_g² = λ1² A11_g + 1 and L21 = Λ_R A_R1 Λ1 L11⁻ᵀ, eqns. 18 and 49 of Bates et al.
2015 blocked as in MixedModels.jl).  Only w depends on θ; the products c_ig c_jg do
not.  ``ScalarSchur`` forms them once, so that one evaluation computes G(w) on
the lower triangle (all LAPACK's ``dpotrf`` reads) as a product with a fixed
matrix, instead of a sparse matrix product that builds a new sparse matrix.

Three stores:

- by level: P with P[(i, j), g] = c_ig c_jg on the pattern of G, a sparse
  matrix with Σ_g k_g(k_g + 1)/2 entries (k_g the nonzeros of c_g), and
  G = P w.  Cheap when the levels of the first term meet few rows of the
  dense block (InstEval's students rate a few dozen lecturers each);
- by class: w_g depends on g only through A11_g (the number of observations
  of an intercept's level), so levels with equal A11_g are summed once,
  M_k = Σ_{g: A11_g = a_k} c_g c_gᵀ, and G = Σ_k w(a_k) M_k, a dense product
  with K × r(r + 1)/2 numbers.  Cheap for crossed designs where every level
  meets many rows (a 10,000 × 1,000 design: K is a few dozen);
- dense: A_R1 itself as a dense r × m array, and G = (A_R1 W^½)(A_R1 W^½)ᵀ by
  BLAS's symmetric rank-k update (``dsyrk``), when the other two would be too
  large (the same design with 20,000 rows a level: hundreds of classes).

The store is the cheapest of those that fit in memory, counting a multiply-add
of the sparse product as 1, of the dense product with M as 1/2 and of BLAS's
blocked update as 1/20 (what they take on one core).

Either way the sums run in a fixed order over levels sorted by label, so the
result does not depend on the order of the data's rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg.blas
import scipy.sparse as sp

__all__ = ["ScalarSchur", "MAX_DENSE", "MAX_PAIRS", "MAX_STORED"]

MAX_PAIRS = 10_000_000  # entries of P by level (forming it takes about 50 bytes an entry)
MAX_STORED = 40_000_000  # numbers of M by class (320 MB)
MAX_DENSE = 40_000_000  # numbers of a dense A_R1; beyond all three limits, a sparse product per evaluation


@dataclass(frozen=True, eq=False)
class ScalarSchur:
    """G(w) = A_R1 diag(w) A_R1ᵀ on a lower-triangular pattern of an r × r matrix."""

    flat: np.ndarray  # positions i·r + j (i ≥ j) of the stored entries of G (by level, by class)
    by_level: sp.csr_array | None = None  # P: pattern × levels, or
    by_class: np.ndarray | None = None  # M: classes × pattern (dense), with
    class_a11: np.ndarray | None = None  # the A11 of every class, or
    dense: np.ndarray | None = None  # A_R1 as an r × m array

    @classmethod
    def of(cls, AR1: sp.csr_array, A11: np.ndarray) -> "ScalarSchur | None":
        """The store for A_R1 (r × m, sparse) and the 1 × 1 blocks A11, or None when too big."""
        C = sp.csc_array(AR1)
        C.sort_indices()
        r, m = C.shape
        k = np.diff(C.indptr).astype(np.int64)
        per_level = int((k * (k + 1) // 2).sum())
        a11, class_of = np.unique(A11.reshape(m), return_inverse=True)
        per_class = len(a11) * r * (r + 1) // 2
        costs = {"level": per_level if per_level <= MAX_PAIRS else np.inf,
                 "class": per_class / 2 if per_class <= MAX_STORED else np.inf,
                 "dense": r * r * m / 40 if r * m <= MAX_DENSE else np.inf}
        store = min(costs, key=costs.get)
        if costs[store] == np.inf:
            return None
        if store == "level":
            flat, P = _by_level(C, k, per_level)
            return cls(flat, by_level=P)
        if store == "dense":
            return cls(np.zeros(0, np.int64), dense=C.toarray())
        flat, M = _by_class(C, class_of.ravel(), len(a11))
        return cls(flat, by_class=M, class_a11=a11)

    def subtract(self, S: np.ndarray, lam1: float, A11: np.ndarray) -> None:
        """S −= G(w) on the lower triangle (S is r × r, C order), w from λ1 and A11."""
        lam2 = lam1 * lam1
        if self.by_class is not None:  # one weight per class
            S.reshape(-1)[self.flat] -= (lam2 / (lam2 * self.class_a11 + 1.0)) @ self.by_class
            return
        w = lam2 / (lam2 * A11.reshape(-1) + 1.0)
        if self.dense is not None:  # the lower triangle of (C W^½)(C W^½)ᵀ; dsyrk leaves the rest 0
            S -= scipy.linalg.blas.dsyrk(1.0, self.dense * np.sqrt(w), lower=1)
        else:
            S.reshape(-1)[self.flat] -= self.by_level @ w


def _by_level(C: sp.csc_array, k: np.ndarray, total: int) -> tuple[np.ndarray, sp.csr_array]:
    """P[(i, j), g] = c_ig c_jg for every pair i ≥ j of rows stored in column g of C.

    The pairs are made column after column, so P comes out in compressed-column order
    (with no sort); the pattern's positions are numbered through an r × r table.
    """
    r, m = C.shape
    nnz = len(C.indices)
    local = np.arange(nnz) - np.repeat(C.indptr[:-1], k)  # each entry's place within its column
    # entry e pairs with the entries of its column up to itself (rows sorted: row ≤ row of e)
    count = local + 1
    e = np.repeat(np.arange(nnz), count)
    t = np.arange(total) - np.repeat(np.cumsum(count) - count, count)  # 0, ..., place of e
    f = e - local[e] + t  # from the column's first entry up to e
    i, j = C.indices[e].astype(np.int64), C.indices[f].astype(np.int64)
    seen = np.zeros(r * r, dtype=bool)
    seen[i * r + j] = True
    flat = np.flatnonzero(seen)
    where = np.cumsum(seen, dtype=np.int64) - 1
    indptr = np.concatenate([[0], np.cumsum(k * (k + 1) // 2)])
    P = sp.csc_array((C.data[e] * C.data[f], where[i * r + j], indptr), shape=(len(flat), m))
    return flat, sp.csr_array(P)  # by rows: P w is then a gather, twice as fast as a scatter


def _by_class(C: sp.csc_array, class_of: np.ndarray, K: int) -> tuple[np.ndarray, np.ndarray]:
    """M_k = Σ_{g in class k} c_g c_gᵀ, lower triangles, one row per class."""
    r = C.shape[0]
    i, j = np.tril_indices(r)
    M = np.empty((K, len(i)))
    order = np.argsort(class_of, kind="stable")
    bounds = np.searchsorted(class_of[order], np.arange(K + 1))
    for cls in range(K):
        Ck = C[:, order[bounds[cls] : bounds[cls + 1]]].toarray()
        M[cls] = (Ck @ Ck.T)[i, j]
    return i * r + j, M
