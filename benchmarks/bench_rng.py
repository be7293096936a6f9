"""The generator's random numbers: its inlined xoshiro256++ against numba's own ways.

Inside one numba kernel, ``--draws`` uniform and as many normal numbers, each way in
turn, ``--repeat`` times interleaved (medians; the first call of each, which compiles,
is left out):

- ``tau3mu.synth.rng``: the generator's xoshiro256++ and ziggurat, inlined, its state a
  uint64[4] seeded from the file's ``numpy.random.Generator`` (what the kernels use);
- ``numpy Generator``: the file's ``numpy.random.Generator`` passed into the kernel
  (numba calls its bit generator through a function pointer at every draw);
- ``numba np.random``: numba's global Mersenne Twister (``np.random.random()`` inside
  the kernel; one state per thread, seeded with ``np.random.seed`` in the kernel).

Usage: ``python benchmarks/bench_rng.py [--draws 20000000] [--repeat 5]``; results:
``results/rng.json``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import save

from tau3mu.synth.rng import normal, rng_state, uniform


@numba.njit(cache=False)
def draws_inlined(state: np.ndarray, n: int) -> float:
    total = 0.0
    for _ in range(n):
        total += uniform(state) + normal(state)
    return total


@numba.njit(cache=False)
def draws_generator(rng: np.random.Generator, n: int) -> float:
    total = 0.0
    for _ in range(n):
        total += rng.random() + rng.standard_normal()
    return total


@numba.njit(cache=False)
def draws_global(seed: int, n: int) -> float:
    # numba's own global generator is the way measured here, legacy API and all
    np.random.seed(seed)  # noqa: NPY002
    total = 0.0
    for _ in range(n):
        total += np.random.random() + np.random.standard_normal()  # noqa: NPY002
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=20_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    ways = {
        "tau3mu.synth.rng (inlined xoshiro256++)": lambda n: draws_inlined(
            rng_state(np.random.default_rng(1)), n
        ),
        "numpy Generator passed in": lambda n: draws_generator(np.random.default_rng(1), n),
        "numba np.random (global Mersenne Twister)": lambda n: draws_global(1, n),
    }
    for way in ways.values():
        way(10)  # compile
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(args.repeat):
        for name, way in ways.items():
            tic = time.perf_counter()
            way(args.draws)
            times[name].append(time.perf_counter() - tic)
    inlined = statistics.median(times[next(iter(ways))])
    rows = [
        {
            "way": name,
            "draws": 2 * args.draws,
            "median_s": round(statistics.median(t), 3),
            "ns_per_draw": round(statistics.median(t) / (2 * args.draws) * 1e9, 2),
            "relative_to_inlined": round(statistics.median(t) / inlined, 2),
        }
        for name, t in times.items()
    ]
    print(save("rng", rows))


if __name__ == "__main__":
    main()
