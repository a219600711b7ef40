"""Closed-form Bateman decay, vectorised over time with NumPy.

For a chain with decay constants lambda_i and branching fractions b_ki (k -> i), the numbers of
atoms obey dN/dt = A N with A_ii = -lambda_i and A_ik = b_ki lambda_k. A is triangular in
topological order, so A = C diag(-lambda) C^-1 with C unit lower-triangular:

    C_ij = sum_{k=j..i-1} A_ik C_kj / (lambda_i - lambda_j)     (i > j)

and N(t) = C diag(exp(-lambda t)) C^-1 N(0): Bateman (1910), in the matrix form of
Amaku et al., Comput. Phys. Commun. 181 (2010) 21, which `radioactivedecay` also uses. Evaluating
it costs one exp per member per time point. Equal decay constants (a degenerate chain) are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from isolog import nuclides
from isolog.errors import UserError


@dataclass(frozen=True)
class Chain:
    names: tuple[str, ...]
    decay_constants_per_s: np.ndarray  # (m,)
    eigvec: np.ndarray  # C, (m, m)
    eigvec_inv: np.ndarray  # C^-1, (m, m)

    def activities_bq(self, initial_bq: np.ndarray, t_s) -> np.ndarray:
        """Activities (n, m) at times t_s (n,) after t = 0, from initial activities (m,)."""
        lam = self.decay_constants_per_s
        t = np.atleast_1d(np.asarray(t_s, dtype=np.float64))
        n0 = np.asarray(initial_bq, dtype=np.float64) / lam
        coeff = self.eigvec_inv @ n0  # (m,)
        # exp(-outer(t, lam)) * coeff, then back to the nuclide basis: (n, m) @ C^T.
        e = np.exp(-np.multiply.outer(t, lam))
        e *= coeff
        atoms = e @ self.eigvec.T
        return atoms * lam


def chain_from_constants(
    names: list[str] | tuple[str, ...], decay_constants_per_s, branching: dict[tuple[int, int], float]
) -> Chain:
    """A chain from explicit constants: branching[(k, i)] is the fraction of k's decays giving i,
    with members in topological order (k < i)."""
    lam = np.asarray(decay_constants_per_s, dtype=np.float64)
    m = len(lam)
    if len(names) != m:
        raise ValueError("one decay constant per member")
    if np.any(~np.isfinite(lam)) or np.any(lam <= 0):
        raise UserError("decay constants must be positive and finite (stable members are not tracked)")
    a = np.diag(-lam)
    for (k, i), frac in branching.items():
        if not k < i:
            raise ValueError("members must be in topological order (parent index < daughter index)")
        a[i, k] += frac * lam[k]
    c = np.eye(m)
    for j in range(m):
        for i in range(j + 1, m):
            denom = lam[i] - lam[j]
            if abs(denom) <= 1e-12 * max(lam[i], lam[j]):
                raise UserError(f"{names[i]} and {names[j]} have equal decay constants: degenerate chain")
            c[i, j] = (a[i, j:i] @ c[j:i, j]) / denom
    c_inv = np.linalg.inv(c)  # unit triangular: exact up to rounding
    return Chain(tuple(names), lam, c, c_inv)


@lru_cache(maxsize=64)
def chain_for(parent: str) -> Chain:
    """The tracked decay chain of a nuclide from the nuclide table."""
    members = nuclides.chain(parent)
    index = {n.name: i for i, n in enumerate(members)}
    branching = {}
    for k, n in enumerate(members):
        for b in n.branches:
            branching[(k, index[b.daughter])] = b.fraction
    return chain_from_constants([n.name for n in members], [n.decay_constant_per_s for n in members], branching)


def equilibrium_ratios(chain: Chain, branching: dict[tuple[int, int], float] | None = None) -> np.ndarray:
    """Activity of each member per unit activity of the parent (member 0) in transient (or
    secular) equilibrium: A_i = lambda_i / (lambda_i - lambda_0) * sum_k b_ki A_k. Valid when every
    daughter decays faster than the parent, as in all chains of the table."""
    lam = chain.decay_constants_per_s
    if branching is None:
        branching = _branching_of(chain)
    ratios = np.zeros(len(lam))
    ratios[0] = 1.0
    for i in range(1, len(lam)):
        if lam[i] <= lam[0]:
            raise UserError(f"{chain.names[i]} lives longer than {chain.names[0]}: no equilibrium to start from")
        feed = sum(frac * ratios[k] for (k, d), frac in branching.items() if d == i)
        ratios[i] = lam[i] / (lam[i] - lam[0]) * feed
    return ratios


def _branching_of(chain: Chain) -> dict[tuple[int, int], float]:
    index = {name: i for i, name in enumerate(chain.names)}
    out = {}
    for k, name in enumerate(chain.names):
        for b in nuclides.get(name).branches:
            out[(k, index[b.daughter])] = b.fraction
    return out


def initial_activities(parent: str, parent_activity_bq: float, daughters: str = "none") -> np.ndarray:
    """Initial activities of the chain of `parent`: daughters 'none' (a clean parent, e.g. just
    after elution) or 'equilibrium' (daughters grown in, e.g. a generator at shipment)."""
    if not np.isfinite(parent_activity_bq) or parent_activity_bq < 0:
        raise UserError(f"activity must be a non-negative number of Bq, not {parent_activity_bq!r}")
    ch = chain_for(nuclides.get(parent).name)
    if daughters == "none":
        a0 = np.zeros(len(ch.names))
        a0[0] = parent_activity_bq
        return a0
    if daughters == "equilibrium":
        return equilibrium_ratios(ch) * parent_activity_bq
    raise UserError(f"daughters must be 'none' or 'equilibrium', not {daughters!r}")


def decay(parent: str, activity_bq: float, t_s, daughters: str = "none") -> dict[str, np.ndarray]:
    """Activity in Bq of every tracked member of the chain of `parent` at times t_s (seconds after
    the reference time; negative times go back before it)."""
    name = nuclides.get(parent).name
    ch = chain_for(name)
    a = ch.activities_bq(initial_activities(name, activity_bq, daughters), t_s)
    return {member: a[:, i] for i, member in enumerate(ch.names)}


def decay_single(activity_bq: float, half_life_s: float, t_s):
    """A(t) = A0 * 2^(-t / T1/2) for one nuclide, vectorised."""
    return activity_bq * np.exp2(-np.asarray(t_s, dtype=np.float64) / half_life_s)
