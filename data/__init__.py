"""Data shipped with tau3mu: the Muon POG ID scale factors and the Run 2 branch list."""
