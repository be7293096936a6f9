"""The muon collection of each raw event: the leading pair, measured with resolution, and
soft extra muons near it."""

from __future__ import annotations

import numpy as np

from tau3mu.synth.float32 import F1, HALF, F, clip, jit_kernel, wrap_phi
from tau3mu.synth.rng import exponential, normal, uniform, uniform_pair

#: float rows of :func:`muons`' first output
MUON_ROWS = ("pt", "eta", "phi", "true_pt", "true_eta", "true_phi", "trig_dr")


def muons(state, n_mu, lead, signal, *tuning):
    """Muon collection of events with ``n_mu`` muons around the leading pair ``lead``.

    ``state``: the kernels' generator, advanced; ``lead``: rows of
    :func:`~tau3mu.synth.leading.leading`; ``signal``: per event, whether it holds a
    decay; ``tuning``: skim_min_pt, skim_muon_abseta, pt_resolution, angle_resolution.
    Returns (float32 rows MUON_ROWS, int32 charge, bool is_global, bool is_pf), one column
    per muon, events one after the other.
    """
    total = int(n_mu.sum())
    out = (
        np.empty((len(MUON_ROWS), total), dtype=np.float32),
        np.empty(total, dtype=np.int32),
        np.empty(total, dtype=np.bool_),
        np.empty(total, dtype=np.bool_),
    )
    _muons(state, n_mu, lead, signal, *tuning, *out)
    return out


@jit_kernel
def _muons(
    state,
    n_mu,
    lead,
    signal,
    skim_min_pt,
    skim_muon_abseta,
    pt_resolution,
    angle_resolution,
    f,
    charge,
    is_global,
    is_pf,
):
    """Muon collection: the leading pair (measured with resolution) and soft extras.

    Returns float32 rows (pt, eta, phi, true_pt, true_eta, true_phi, trig_dr), int32
    charge, bool is_global and is_pf.
    """
    pt0 = F(skim_min_pt)
    min_pt = F(skim_min_pt + 0.001)
    max_eta = F(skim_muon_abseta - 0.001)
    pt_res, ang_res = F(pt_resolution), F(angle_resolution)
    j = 0
    for i in range(len(n_mu)):
        c0 = 1
        for s in range(n_mu[i]):
            leading_muon = s < 2
            if leading_muon:
                tpt, teta, tphi = lead[3 * s, i], lead[3 * s + 1, i], lead[3 * s + 2, i]
                pt = tpt * (F1 + pt_res * normal(state))
                eta = teta + ang_res * normal(state)
                phi = wrap_phi(tphi + ang_res * normal(state))
            else:  # extra muons: soft, near the leading dimuon
                tpt = pt0 + F(2.5) * exponential(state)
                teta = clip(lead[10, i] + F(0.9) * normal(state), F(-2.39), F(2.39))
                tphi = wrap_phi(lead[11, i] + F(0.9) * normal(state))
                pt, eta, phi = tpt, teta, tphi
            # the skim: above 2 GeV inside the tracker (smearing may cross the edge)
            f[0, j] = max(pt, min_pt)
            f[1, j] = clip(eta, -max_eta, max_eta)
            f[2, j] = phi
            f[3, j], f[4, j], f[5, j] = tpt, teta, tphi
            u0, u1 = uniform_pair(state)
            u2, u3 = uniform_pair(state)
            c = 1 if u0 < HALF else -1
            if s == 0:
                c0 = c
            elif s == 1:
                c = -c0
            charge[j] = c
            sig = signal[i] and leading_muon
            is_global[j] = u1 < (F(0.975) if sig else F(0.93))
            is_pf[j] = u2 < (F(0.99) if sig else F(0.97))
            matched = u3 < (F(0.94) if sig else (F(0.85) if leading_muon else F(0.45)))
            dr = abs(F(0.007) * normal(state)) if matched else F(0.03) + F(0.97) * uniform(state)
            f[6, j] = min(dr, F1)
            j += 1


__all__ = ["MUON_ROWS", "muons"]
