"""Infinite-width limits and their depth discretisations: :mod:`nfdlib.limits.brownian`
(Brownian paths queried at any depth grid), :mod:`nfdlib.limits.fbsde` (the
forward–backward SDE at initialisation, Thm. 4.3), :mod:`nfdlib.limits.particles` (the
interacting particle solver both of the next two run), :mod:`nfdlib.limits.nfd` (Neural
Feature Dynamics, Def. 5.3) and :mod:`nfdlib.limits.true_limit` (the limit of true
backprop, Prop. E.1)."""
