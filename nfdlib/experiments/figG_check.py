"""App. G: the alignment table of the sweep, the rounding sensitivity of each run, and the
claim checks F2 and F5 (GIA restoration under depth-µP) and G-stab (instability with depth).

Which numbers may decide a verdict. A run whose one-ulp twin (``figG_train``) ends more
than :data:`SENSITIVE` apart amplifies rounding to the percent level, so its losses, and the
gaps and slopes computed from them, change with the CPU's BLAS kernels: they are
reproducible in distribution over seeds, not run by run. F2/F5 therefore decide on
depth-µP's runs only, and only when every one of them stays below :data:`INSENSITIVE`
(1e-4: a gap of ~0.06 between losses of ~2 then moves by at most ~3e-3 of itself, so its
log-log slope moves far less than its confidence interval, ~0.1 wide). The instability of
the other architectures is a claim of its own (G-stab), decided on the sensitivity, whose
two classes lie two decades apart.
"""
from __future__ import annotations

import numpy as np

from .. import claims
from ..metrics import mean_se, power_law_fit
from .figG_grid import BASELINE, FIGURE_OF_WIDTH, GIAParams, point_name

FLAT_BOUND = -0.5  # a gap ∝ L^s with s ≤ -1/2 (half of Cor. 5.7's rate) would count as shrinking
INSENSITIVE = 1e-4  # a twin that stays within this relative distance: rounding stays rounding
SENSITIVE = 1e-2    # a twin this far apart: rounding changes the outputs at the percent level
STABILITY_PREDICTION = {"vanilla": "unstable at depth", "mup_resnet": "unstable at depth",
                        "depth_mup": "stable at every depth"}


def _gap(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.mean(np.abs(a - b))) if a.size and a.size == b.size else float("nan")


def twin_spread(rec: dict) -> float | None:
    """The largest relative distance between a reused run and its one-ulp twin over training
    (inf if the twin's outputs stopped being finite); None for a run without a twin."""
    dist = rec.get("twin_distance")
    if not dist:
        return None
    return max(float("inf") if d is None else d for d in dist)


def alignment(data: dict, p: GIAParams) -> list[dict]:
    """Per (width, architecture, depth): the reused/decoupled gaps of each seed (left out
    where a run of the pair diverged), the signed mean difference ℓ_decoupled − ℓ_reused of
    the training curves, the noise floor, their means and standard errors, the divergences,
    and the twins' spreads (``twin``: one per seed that has a twin)."""
    rows = []
    for width in sorted(p.widths):
        for arch in p.archs:
            for depth in sorted(p.depths):
                gtr, gte, gfin, sgn, noise, diverged, twin = [], [], [], [], [], [], []
                for i in range(p.n_seeds):
                    s = p.seed + i
                    r = data["runs"][point_name(arch, "reused", width, depth, s)]
                    dcp = data["runs"][point_name(arch, "decoupled", width, depth, s)]
                    alt = data["runs"].get(point_name(arch, BASELINE, width, depth, s))
                    for mode, rec in (("reused", r), ("decoupled", dcp), (BASELINE, alt)):
                        if rec is not None and rec["diverged_at"] is not None:
                            diverged.append({"seed": s, "backward": mode,
                                             "step": rec["diverged_at"], "reason": rec["reason"]})
                    if twin_spread(r) is not None:
                        twin.append(twin_spread(r))
                    if r["diverged_at"] is None and dcp["diverged_at"] is None:
                        gtr.append(_gap(r["train_loss"], dcp["train_loss"]))
                        gte.append(_gap(r["test_loss"], dcp["test_loss"]))
                        gfin.append(abs(r["final_test_loss"] - dcp["final_test_loss"]))
                        sgn.append(float(np.mean(np.subtract(dcp["train_loss"], r["train_loss"]))))
                    if alt is not None and alt["diverged_at"] is None and dcp["diverged_at"] is None:
                        noise.append(_gap(alt["train_loss"], dcp["train_loss"]))
                row = {"width": width, "arch": arch, "depth": depth, "gap_train": gtr,
                       "gap_test": gte, "final_test_gap": gfin, "signed_train": sgn,
                       "noise_train": noise, "diverged": diverged, "twin": twin,
                       "stability": stability_class(twin)}
                for key in ("gap_train", "gap_test", "final_test_gap", "signed_train", "noise_train"):
                    m, se = mean_se(row[key]) if row[key] else (np.nan, np.nan)
                    row[key + "_mean"], row[key + "_se"] = float(m), float(se)
                rows.append(row)
    return rows


def stability_class(spreads: list[float]) -> str | None:
    """``stable`` if every twin stayed within :data:`INSENSITIVE`, ``unstable`` if the median
    twin ended beyond :data:`SENSITIVE`, ``mixed`` otherwise; None without twins."""
    if not spreads:
        return None
    if max(spreads) <= INSENSITIVE:
        return "stable"
    return "unstable" if float(np.median(spreads)) >= SENSITIVE else "mixed"


def classify(rows: list[dict], key: str = "gap_train") -> dict:
    """How the gap of one (width, architecture) moves with depth: ``unstable`` if any run
    diverged; else a fit log gap = a + s·log L over all (depth, seed) pairs with a 95% CI on
    s: ``shrinks`` (CI < 0), ``grows`` (CI > 0), ``flat`` (CI contains 0 and excludes
    s ≤ FLAT_BOUND: no shrinking at any rate near Cor. 5.7's, under which the omitted coupling
    is O(1/L) in root mean square, s = -1), ``unclear`` (CI contains both 0 and FLAT_BOUND);
    ``too few`` with fewer than three points or two depths. ``rounding_sensitive`` says
    whether a twin of these rows ended beyond :data:`INSENSITIVE` (the trend then depends on
    the machine)."""
    div = [d for r in rows for d in r["diverged"]]
    x = [r["depth"] for r in rows for _ in r[key]]
    y = [g for r in rows for g in r[key]]
    spreads = [t for r in rows for t in r.get("twin", [])]
    out = {"diverged_runs": len(div),
           "diverged_depths": sorted({r["depth"] for r in rows if r["diverged"]}),
           "rounding_sensitive": bool(spreads) and max(spreads) > INSENSITIVE}
    if div:
        out["trend"] = "unstable"
    pos = [(a, b) for a, b in zip(x, y) if b > 0]
    if len(pos) < 3 or len({a for a, _ in pos}) < 2:
        out.setdefault("trend", "too few")
        return out
    fit = power_law_fit([a for a, _ in pos], [b for _, b in pos])
    out.update(slope=fit.slope, slope_ci=list(fit.slope_ci), r2=fit.r2, points=fit.n)
    if "trend" not in out:
        lo, hi = fit.slope_ci
        out["trend"] = ("shrinks" if hi < 0 else "grows" if lo > 0
                        else "flat" if lo > FLAT_BOUND else "unclear")
    return out


def verdict_of(fit: dict) -> str:
    """F2/F5 from depth-µP's fit: reproduced if its gap ``shrinks``; not reproduced if it is
    flat, grows or diverged; inconclusive if too little data, an unclear trend, or runs too
    sensitive to rounding for the trend to be the same on every machine."""
    if fit["rounding_sensitive"] or fit["trend"] in ("too few", "unclear"):
        return "inconclusive"
    return "reproduced" if fit["trend"] == "shrinks" else "not reproduced"


def _fit_text(fit: dict) -> str:
    if "slope" not in fit:
        return fit["trend"]
    lo, hi = fit["slope_ci"]
    return f"{fit['trend']}, s = {fit['slope']:.3f} [{lo:.3f}, {hi:.3f}]"


def stability_by_depth(rows: list[dict], arch: str) -> dict[int, dict]:
    """Per depth, over every width and seed of ``arch``: the twins' spreads, their median and
    the stability class."""
    out = {}
    for depth in sorted({r["depth"] for r in rows if r["arch"] == arch}):
        spreads = [t for r in rows if r["arch"] == arch and r["depth"] == depth for t in r["twin"]]
        if spreads:
            out[depth] = {"spreads": spreads, "median": float(np.median(spreads)),
                          "class": stability_class(spreads)}
    return out


def stability_verdict(arch: str, by_depth: dict[int, dict]) -> str:
    """G-stab for one architecture. depth-µP (predicted stable at every depth): reproduced if
    every depth is ``stable``, not reproduced if one is ``unstable``. vanilla and µP ResNet
    (predicted unstable at depth): reproduced if the deepest is ``unstable``, not reproduced
    if it is ``stable``. Anything else (``mixed``) is inconclusive."""
    classes = [v["class"] for v in by_depth.values()]
    if arch == "depth_mup":
        return ("reproduced" if all(c == "stable" for c in classes)
                else "not reproduced" if "unstable" in classes else "inconclusive")
    deepest = by_depth[max(by_depth)]["class"]
    return {"unstable": "reproduced", "stable": "not reproduced"}.get(deepest, "inconclusive")


def stability_measured(arch: str, by_depth: dict[int, dict]) -> str:
    """The figure that decides G-stab, in words: the classes of every depth for depth-µP, the
    class of the deepest depth otherwise (the spreads themselves, O(1) where a run is
    unstable, are a fresh draw on every machine and stay in the record's details)."""
    if arch == "depth_mup":
        return "; ".join(f"L = {L}: {v['class']}" for L, v in by_depth.items())
    deepest = max(by_depth)
    return f"L = {deepest}: {by_depth[deepest]['class']}"


def check(data: dict, p: GIAParams) -> list[dict]:
    """F2 (width 128) and F5 (width 256; other widths: F2's statement at that width), decided
    on depth-µP; G-stab per architecture, from the twins of every width."""
    rows = alignment(data, p)
    records = []
    for width in sorted(p.widths):
        claim_id = FIGURE_OF_WIDTH.get(width, ("F2",))[0]
        at_width = [r for r in rows if r["width"] == width]
        fits = {a: classify([r for r in at_width if r["arch"] == a]) for a in p.archs}
        fits_test = {a: classify([r for r in at_width if r["arch"] == a], key="gap_test")
                     for a in p.archs}
        if "depth_mup" not in fits:
            continue
        main = fits["depth_mup"]
        records.append(claims.record(
            claim_id, verdict_of(main), _fit_text(main),
            "gap ∝ L^s with s < 0 for depth-µP (GIA restored with depth)",
            arch="depth_mup", width=width, fits_train=fits, fits_test=fits_test,
            test_verdict=verdict_of(fits_test["depth_mup"]),
            note=("depth-µP runs amplify rounding: trend not machine-independent"
                  if main["rounding_sensitive"] else "")))
    if p.sensitivity:
        for arch in p.archs:
            by_depth = stability_by_depth(rows, arch)
            if not by_depth:
                continue
            records.append(claims.record(
                "G-stab", stability_verdict(arch, by_depth), stability_measured(arch, by_depth),
                f"{STABILITY_PREDICTION[arch]} (twin one ulp apart: stable ≤ {INSENSITIVE:g}, "
                f"unstable ≥ {SENSITIVE:g} relative distance)",
                arch=arch, median_spread={str(L): v["median"] for L, v in by_depth.items()},
                classes={str(L): v["class"] for L, v in by_depth.items()},
                spreads={str(L): v["spreads"] for L, v in by_depth.items()}))
    return records
