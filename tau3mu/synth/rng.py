"""Random numbers inside the generator's numba kernels: xoshiro256++ (Blackman & Vigna),
inlined into the loops, with a normal ziggurat.

numba's ``Generator`` methods call through the bit generator's function pointer at
every draw, and the kernels draw about 110 numbers per raw event; the inlined generator
is a few integer operations a draw. Its state, a uint64[4],
is seeded from the file's ``numpy.random.Generator`` (:func:`rng_state`), so a file
depends only on its seed. Every draw advances the state in place: the kernels' results
depend on the order of their draws.
"""

from __future__ import annotations

import math

import numpy as np

from tau3mu.synth.float32 import F2, HALF, F, jit_inline

U64 = np.uint64


def rng_state(rng: np.random.Generator) -> np.ndarray:
    """A xoshiro256++ state (uint64[4], never all zero) drawn from ``rng``."""
    state = rng.bit_generator.random_raw(4).astype(np.uint64)
    state[0] |= np.uint64(1)
    return state


@jit_inline
def next_bits(s):
    """The next 64 random bits; advances the state ``s`` in place."""
    s0, s1, s2, s3 = s[0], s[1], s[2], s[3]
    x = s0 + s3
    out = ((x << U64(23)) | (x >> U64(41))) + s0
    t = s1 << U64(17)
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s[0], s[1], s[2], s[3] = s0, s1, s2, (s3 << U64(45)) | (s3 >> U64(19))
    return out


@jit_inline
def uniform(s):
    """Uniform in [0, 1), float32 (24 random bits)."""
    return np.float32(next_bits(s) >> U64(40)) * np.float32(2.0**-24)


@jit_inline
def uniform_pair(s):
    """Two independent uniforms in [0, 1), float32, from one draw's 48 random bits."""
    x = next_bits(s)
    scale = np.float32(2.0**-24)
    return np.float32(x >> U64(40)) * scale, np.float32((x >> U64(16)) & U64(0xFFFFFF)) * scale


@jit_inline
def exponential(s):
    """Standard exponential, float32: -log of a uniform in (0, 1) of 32 bits (max 22.9)."""
    u = np.float32((np.int64(next_bits(s) >> U64(32)) + 0.5) * 2.0**-32)
    return -math.log(u)


def _ziggurat(layers: int = 256, r: float = 3.6541528853610088, v: float = 0.00492867323399):
    """Tables of the normal ziggurat (Marsaglia & Tsang 2000) with ``layers`` layers.

    x[0] = v / f(r) is the base layer's virtual width, x[1] = r, x[layers] = 0, each layer
    of area v under f(x) = exp(-x^2 / 2). Returns (int64 acceptance thresholds of a 24-bit
    |j|: j < x[i+1] / x[i] 2^24, float32 x[i] 2^-24, float32 f(x[i])).
    """
    x = np.zeros(layers + 1)
    x[0], x[1] = v / math.exp(-0.5 * r * r), r
    for i in range(1, layers - 1):
        x[i + 1] = math.sqrt(-2 * math.log(math.exp(-0.5 * x[i] ** 2) + v / x[i]))
    threshold = np.floor(x[1:] / x[:-1] * 2**24).astype(np.int64)
    return threshold, (x[:-1] * 2.0**-24).astype(np.float32), np.exp(-0.5 * x * x).astype(F)


_ZIG_K, _ZIG_W, _ZIG_F = _ziggurat()
_ZIG_R = F(3.6541528853610088)


@jit_inline
def normal(s):
    """Standard normal, float32: ziggurat of 256 layers on one 64-bit draw (layer from the
    low 8 bits, a signed 25-bit abscissa from the high bits), ~98.5 % in the fast path."""
    while True:
        x = next_bits(s)
        i = np.int64(x & U64(0xFF))
        j = np.int64(x >> U64(39)) - 16777216
        z = F(j) * _ZIG_W[i]
        if abs(j) < _ZIG_K[i]:
            return z
        if i == 0:  # the tail beyond r (Marsaglia 1964)
            while True:
                a = exponential(s) / _ZIG_R
                if a * a < F2 * exponential(s):
                    return -(_ZIG_R + a) if j < 0 else _ZIG_R + a
        if _ZIG_F[i] + uniform(s) * (_ZIG_F[i + 1] - _ZIG_F[i]) < math.exp(-HALF * z * z):
            return z


__all__ = ["exponential", "next_bits", "normal", "rng_state", "uniform", "uniform_pair"]
