"""Deterministic, random-access noise for the simulator's price paths.

Every random number the price model needs is a pure function of integers
(seed, series key, octave, node index) hashed with SplitMix64, so the value of a
path at ANY instant can be computed directly — no state, no precomputation, no
need to generate the past first. Vectorised with numpy (uint64 arithmetic wraps
modulo 2**64, which is exactly what SplitMix64 wants).

``fbm(keys, t_minutes)`` is a random-walk-like path built from value-noise
octaves: octave j has nodes every 2**j minutes holding independent N(0, 1)
values, linearly interpolated, with amplitude sqrt(2**j). Summing octaves
0..16 (1 minute .. ~45 days) gives increments whose variance grows linearly with
the horizon (Brownian scaling) from one minute up to about a month, while the
level stays bounded over longer spans (a stationary process with a level std of
about 3.9 one-day stds, so prices do not drift off to 0/1 over a long run). ``UNIT`` scales the sum so that its
one-day increments have standard deviation 1.
"""

from __future__ import annotations

import numpy as np

_GOLD = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_SALT_B = np.uint64(0xD1B54A32D192ED03)
_TWO_PI = 2.0 * np.pi
_INV53 = 1.0 / float(1 << 53)

N_OCTAVES = 17  # 1 minute .. 2**16 minutes (~45.5 days)
_AMPS = np.sqrt(2.0 ** np.arange(N_OCTAVES))
UNIT = 1.0 / 76.1  # one-day increment std of the raw sum ≈ 76.1 (measured)


def mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on a uint64 array (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = x + _GOLD
        z = (z ^ (z >> _S30)) * _M1
        z = (z ^ (z >> _S27)) * _M2
        return z ^ (z >> _S31)


def key_of(*parts: int) -> int:
    """Combine small integers (seed, kind, index...) into one 64-bit key (Python int)."""
    h = np.array([0x1234567], dtype=np.uint64)
    for p in parts:
        h = mix64(h ^ np.uint64(int(p) & 0xFFFFFFFFFFFFFFFF))
    return int(h[0])


def uniform(keys: np.ndarray) -> np.ndarray:
    """Uniform (0, 1) floats from uint64 keys."""
    return ((mix64(keys) >> _S11).astype(np.float64) + 0.5) * _INV53


def normal(keys: np.ndarray) -> np.ndarray:
    """Standard normal floats from uint64 keys (Box-Muller on two hashed uniforms)."""
    u1 = uniform(keys)
    u2 = uniform(keys ^ _SALT_B)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(_TWO_PI * u2)


def _node_values(series: np.ndarray, octave: int, nodes: np.ndarray) -> np.ndarray:
    """N(0,1) value of node ``nodes`` (int64) of ``octave`` for each series key.

    series: shape (S, 1) uint64; nodes: shape (1, T) or (S, T) int64 -> (S, T).
    """
    with np.errstate(over="ignore"):
        base = mix64(series ^ np.uint64((octave + 1) * 0x632BE59BD9B4E019 & 0xFFFFFFFFFFFFFFFF))
        return normal(base ^ nodes.astype(np.uint64))


def fbm(keys, t_minutes) -> np.ndarray:
    """Path values for each series key at each time (minutes since the epoch).

    keys: sequence of S 64-bit ints; t_minutes: T floats shared by every series, or an
    (S, T) array with each series' own times.
    Returns an (S, T) float array with one-day increments of std ≈ 1.
    """
    series = np.asarray(keys, dtype=np.uint64).reshape(-1, 1)
    t = np.asarray(t_minutes, dtype=np.float64)
    t = t.reshape(1, -1) if t.ndim < 2 else t
    s_count, t_count = series.shape[0], t.shape[1]
    out = np.zeros((s_count, t_count), dtype=np.float64)
    for j in range(N_OCTAVES):
        u = t / float(1 << j)
        i = np.floor(u)
        f = u - i
        i = i.astype(np.int64)
        lo, hi = int(i.min()), int(i.max()) + 1
        span = hi - lo + 1
        if span <= 2 * t_count + 2:
            # few distinct nodes (coarse octave or dense sampling): evaluate each node once
            vals = _node_values(series, j, np.arange(lo, hi + 1, dtype=np.int64).reshape(1, -1))
            idx = i - lo
            if idx.shape[0] == 1:
                v0, v1 = vals[:, idx[0]], vals[:, idx[0] + 1]
            else:
                v0 = np.take_along_axis(vals, idx, axis=1)
                v1 = np.take_along_axis(vals, idx + 1, axis=1)
        else:
            v0 = _node_values(series, j, i)
            v1 = _node_values(series, j, i + 1)
        out += _AMPS[j] * (v0 + (v1 - v0) * f)
    return out * UNIT
