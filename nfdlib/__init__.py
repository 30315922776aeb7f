"""nfdlib: the library behind *nfd-book*, the reproducibility companion of
Yao, Wu & Gao, "Feature Learning Dynamics in Infinite-Depth Neural Networks"
(arXiv:2512.21075).

Finite-width networks (:mod:`nfdlib.network`), infinite-width limits
(:mod:`nfdlib.limits`), Gaussian representations (:mod:`nfdlib.gaussian`), the
experiments that check the paper's claims (:mod:`nfdlib.experiments`) and their
stored results (:mod:`nfdlib.store`, :mod:`nfdlib.claims`).
"""

__version__ = "0.1.0"
