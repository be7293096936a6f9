"""numba's one-time set-up in this process: importing this module does it.

numba sets up its CPU target (its registries, and the ``numba_extensions`` entry points
of the installed packages) at the first call of any compiled function, whichever it is;
in a fresh process that costs far more than loading a kernel from numba's disk cache
afterwards. The forkserver of a local cluster's workers imports this module
(``tau3mu.local_workers.WARM_MODULES``), so that no worker forked from it pays the set-up
in its first chunk. Nothing else imports it.
"""

from __future__ import annotations

import awkward as ak

from tau3mu.kernels.best import best_candidate

__all__: list[str] = []

best_candidate(ak.Array([[1.0]]), ak.Array([[True]]))
