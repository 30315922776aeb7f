"""Conditional Gaussian representations of the reused weights and the couplings built on
them: :mod:`nfdlib.gaussian.init` (Prop. 4.1 and the coupling of Prop. 4.2, at
initialisation) and :mod:`nfdlib.gaussian.one_step` (Prop. 5.1, after one SGD update)."""
