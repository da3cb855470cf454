"""Power, sample size and minimum detectable effect for a two-arm comparison of means.

Planning questions ("how many users until we can see a 5% CTR lift?") use the normal
approximation of the two-sided test: with per-user standard deviation ``sd`` in each arm and
``n`` users per arm, the difference has standard error ``sd * sqrt(2 / n)``.
"""

from __future__ import annotations

import math

from scipy import special


def _z(alpha: float, power: float) -> tuple[float, float]:
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ValueError("alpha and power must lie strictly between 0 and 1")
    return float(special.ndtri(1 - alpha / 2)), float(special.ndtri(power))


def sample_size(sd: float, effect: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Users per arm to detect an absolute ``effect`` with the given power.

    ``n = 2 sd**2 (z_{1-alpha/2} + z_power)**2 / effect**2``; sd = 1, effect = 0.5:
    2 * (1.95996 + 0.84162)**2 / 0.25 = 62.8, so 63 users per arm.

    >>> sample_size(1.0, 0.5)
    63
    """
    if effect == 0:
        raise ValueError("effect must be non-zero")
    za, zb = _z(alpha, power)
    return math.ceil(2 * sd**2 * (za + zb) ** 2 / effect**2)


def power(sd: float, effect: float, n: int, alpha: float = 0.05) -> float:
    """Probability that the two-sided test rejects when the true difference is ``effect``.

    sd = 1, effect = 0.5, n = 63: z = 0.5 / sqrt(2/63) = 2.806, power ~ Phi(2.806 - 1.960).

    >>> round(power(1.0, 0.5, 63), 3)
    0.801
    """
    za = float(special.ndtri(1 - alpha / 2))
    shift = abs(effect) / (sd * math.sqrt(2 / n))
    return float(special.ndtr(shift - za) + special.ndtr(-shift - za))


def minimum_detectable_effect(sd: float, n: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest absolute effect detectable with the given power at ``n`` users per arm.

    >>> round(minimum_detectable_effect(1.0, 63), 4)
    0.4992
    """
    za, zb = _z(alpha, power)
    return float((za + zb) * sd * math.sqrt(2 / n))


def sample_size_for_lift(
    mean: float, sd: float, lift: float, alpha: float = 0.05, power: float = 0.8
) -> int:
    """Users per arm to detect a relative ``lift`` of a metric whose control mean is ``mean``.

    CTR 0.1 with per-user sd 0.3 and a +10% lift: effect 0.01, 2 * 0.09 * 7.849 / 1e-4 = 14128.

    >>> sample_size_for_lift(0.1, 0.3, 0.10)
    14128
    """
    return sample_size(sd, mean * lift, alpha, power)
