"""tau3mu: the CMS Ds+ -> phi(mu mu) pi+ normalisation analysis, columnar, on the Scikit-HEP stack."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
