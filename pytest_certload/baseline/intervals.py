"""Distribution-free confidence intervals of quantiles, from order statistics.

With ``n`` samples, the number below the true q-quantile is Binomial(n, q), so a pair of
ranks brackets it with known coverage, whatever the latency distribution.
"""

from __future__ import annotations

import math
import sys
from statistics import NormalDist

__all__ = ["min_samples", "quantile_interval"]

_EXACT_BINOMIAL_MAX_N = 20_000


def _binom_ppf(n: int, p: float, prob: float) -> int:
    """Smallest k with P(Binomial(n, p) <= k) >= prob (exact for small n, else normal)."""
    if p <= 0:
        return 0
    if p >= 1:
        return n
    if n > _EXACT_BINOMIAL_MAX_N:
        z = NormalDist().inv_cdf(prob)
        k = math.ceil(n * p + z * math.sqrt(n * p * (1 - p)) - 0.5)
        return min(max(k, 0), n)
    log_p, log_q, log_n = math.log(p), math.log1p(-p), math.lgamma(n + 1)
    total = 0.0
    for k in range(n + 1):
        log_pmf = log_n - math.lgamma(k + 1) - math.lgamma(n - k + 1)
        total += math.exp(log_pmf + k * log_p + (n - k) * log_q)
        if total >= prob - 1e-12:
            return k
    return n


def quantile_interval(n: int, q: float, confidence: float) -> tuple[int, int]:
    """1-based ranks ``(lo, hi)`` whose order statistics bracket the q-quantile (q in 0..100).

    ``lo`` is 0 when no order statistic is a lower bound at this confidence, and
    ``hi > n`` when none is an upper bound (too few samples beyond the quantile).
    """
    alpha = 1 - confidence
    p = q / 100
    lo = _binom_ppf(n, p, alpha / 2)
    # the largest k with F(k) <= alpha/2 is lo - 1 when F(lo) > alpha/2 (the usual case)
    hi = _binom_ppf(n, p, 1 - alpha / 2) + 1
    return lo, hi


def min_samples(q: float, confidence: float) -> int:
    """Fewest samples for which the q-quantile's interval has an upper bound.

    That needs ``P(all n samples below the quantile) = (q/100)**n <= (1 - confidence)/2``.
    """
    p = q / 100
    if p <= 0:
        return 1
    if p >= 1:
        return sys.maxsize  # never: no order statistic bounds the maximum from above
    return max(1, math.ceil(math.log((1 - confidence) / 2) / math.log(p)))
