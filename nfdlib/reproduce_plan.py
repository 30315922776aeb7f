"""The book's runs: every ``experiments.execute`` call that the chapters make, per profile.

``nfd reproduce`` runs exactly these, so that a notebook executed afterwards with the same
profile finds each of its results stored (same parameters, same code) and computes nothing.
A test executes the notebooks' code with ``execute`` replaced by a recorder and checks that
they make these calls, with these parameters, for every profile.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# ch5_coupling: the page's grids of the one-step gap (width sweep, depth sweep, two variants)
COUPLING_GRIDS = {
    "smoke": dict(widths=[16, 32, 64], width_depths=[2], depths=[1, 4, 8, 16], depth_width=32,
                  seeds=2, extra_depths=[4, 8, 16], extra_seeds=2),
    "book": dict(widths=[128, 256, 512, 1024], width_depths=[4, 16], depths=[1, 2, 4, 8, 16, 32, 64],
                 depth_width=512, seeds=8, extra_depths=[4, 8, 16, 32, 64], extra_seeds=4),
    "paper": dict(widths=[128, 256, 512, 1024, 2048, 4096], width_depths=[4, 16, 64],
                  depths=[1, 2, 4, 8, 16, 32, 64, 128, 256], depth_width=2048, seeds=16,
                  extra_depths=[4, 8, 16, 32, 64, 128, 256], extra_seeds=8),
}

# experiments whose ``run`` is not a grid of stored points: a cluster gets each as one point
WHOLE_RUNS = ("backends_agreement", "p41_gaussian_repr", "p51_gaussian_one_step")


@dataclass(frozen=True)
class Run:
    """One ``experiments.execute(experiment, record=record, **settings)`` call of a chapter."""
    label: str        # short and unique within a profile: the key of measured costs
    chapter: str
    experiment: str
    settings: dict[str, Any] = field(default_factory=dict)
    record: bool | None = None

    def params(self):
        """The validated parameters (a ParamError names what is wrong)."""
        from . import experiments
        return experiments.get(self.experiment).Params.build(**self.settings)


def book_runs(profile: str) -> list[Run]:
    """The chapters' runs at ``profile`` (``smoke``, ``book`` or ``paper``), each with the
    settings its notebook passes when its parameter cell keeps its literals."""
    base = dict(profile=profile, backend="numba", device="auto", seed=0)
    g = COUPLING_GRIDS[profile]
    gap = dict(base, eta_c=1.0, eta_small=0.01)
    return [
        Run("backends", "backends", "backends_agreement", dict(base, backend="all")),
        Run("p31", "ch3_post_activation", "p31_post_activation",
            dict(base, activation="relu", executor="serial")),
        Run("p41", "ch4_gaussian_gia", "p41_gaussian_repr", dict(base)),
        Run("p42", "ch4_gaussian_gia", "p42_gia_init", dict(base, progress=False)),
        Run("t43", "ch4_fbsde", "t43_fbsde_init", dict(base, network_backend="numba")),
        Run("p51", "ch5_coupling", "p51_gaussian_one_step", dict(profile=profile, seed=0)),
        Run("p52-width", "ch5_coupling", "p52_one_step_gap",
            dict(gap, widths=g["widths"], depths=g["width_depths"], seeds=g["seeds"]), True),
        Run("p52-hidden", "ch5_coupling", "p52_one_step_gap",
            dict(gap, widths=[g["depth_width"]], depths=g["extra_depths"], seeds=g["extra_seeds"],
                 train="hidden"), True),
        Run("p52-linear", "ch5_coupling", "p52_one_step_gap",
            dict(gap, widths=[g["depth_width"]], depths=g["extra_depths"], seeds=g["extra_seeds"],
                 activation="linear"), True),
        Run("p52-depth", "ch5_coupling", "p52_one_step_gap",
            dict(gap, widths=[g["depth_width"]], depths=g["depths"], seeds=g["seeds"]), True),
        Run("d53", "ch5_nfd", "d53_nfd", dict(base)),
        Run("a54", "ch5_nfd", "a54_nondegeneracy", dict(base)),
        Run("t56", "ch5_nfd", "t56_convergence", dict(base)),
        Run("e1", "ch5_true_limit", "e1_true_limit", dict(base)),
        Run("nbtl", "ch5_true_limit_scaling", "nb_true_limit_scaling", dict(base), True),
        Run("figG", "appG_gia", "figG_gia_restoration",
            dict(base, dataset="digits", data_folder=None, executor="serial")),
    ]


def select(runs: list[Run], only: list[str] | None) -> list[Run]:
    """The runs named in ``only`` (labels, experiment names or chapters); all when None. An
    unknown name is a ParamError listing the labels."""
    if not only:
        return runs
    from .params import ParamError
    known = {r.label for r in runs} | {r.experiment for r in runs} | {r.chapter for r in runs}
    unknown = [name for name in only if name not in known]
    if unknown:
        raise ParamError(f"--only {', '.join(unknown)}: unknown; allowed: run labels "
                         f"{', '.join(r.label for r in runs)}, or an experiment or chapter name")
    return [r for r in runs if {r.label, r.experiment, r.chapter} & set(only)]
