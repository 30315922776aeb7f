"""The claim registry and claim records.

Every claim of the paper that the book tests has an ID (:data:`CLAIMS`). An experiment's
``check`` returns *records*, made by :func:`record`: the claim ID, a verdict (one of
:data:`VERDICTS`), the measured figure (with its confidence interval), the paper's
prediction, and free-form details. :func:`collect` gathers the records found in stored
results; :func:`table` renders them (the CLI's ``claims`` and the book's dashboard).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .store import _PACKAGE_DIR, atomic_write_json, atomic_write_bytes, results_root, run_cost, to_jsonable

LEDGER_PROFILES = ("book", "paper")
SETTING_KEYS = ("activation", "train", "arch")  # parameters that tell a chapter's runs apart
RUN_KEYS = ("backend", "network_backend", "device", "executor", "progress", "threads")  # where and how a run ran, not what

VERDICTS = ("reproduced", "partly reproduced", "not reproduced", "inconclusive",
            "verified", "not verified")
# Verdicts on a statement of the paper ("claim") and on a numerical property of the book's own
# machinery ("check": a definition's solver converges, backends agree), which nothing in the
# paper can reproduce or refute. A claim that bundles statements is split into one ID per
# statement, so no verdict stands for "one part held": "partly reproduced" is reserved for a
# single statement whose measured rate has the claimed sign but not the claimed size.
KIND_VERDICTS = {"claim": ("reproduced", "partly reproduced", "not reproduced", "inconclusive"),
                 "check": ("verified", "not verified", "inconclusive")}


@dataclass(frozen=True)
class Claim:
    id: str
    statement: str
    prediction: str
    chapter: str  # book page (without suffix) that tests it
    kind: str = "claim"  # "claim": a statement of the paper; "check": the book's machinery


CLAIMS: dict[str, Claim] = {c.id: c for c in [
    Claim("P3.1", "post-activation ResNets diverge with depth under positive dominance",
          "E[h_L] ≥ the proposition's bound and grows without bound in L (post-act)",
          "ch3_post_activation"),
    Claim("P3.1-pre", "pre-activation (depth-µP) ResNets stay bounded in depth",
          "|h_L|²/n ≤ e^(K²)|h_0|²/n for every L (φ(0) = 0, K the Lipschitz constant of φ)",
          "ch3_post_activation"),
    Claim("P4.1", "Gaussian representation of backward increments at initialisation",
          "identity exact; residual ~ N(0, |g|²/n (I-P))", "ch4_gaussian_gia"),
    Claim("P4.2", "GIA at initialisation (φ Lipschitz, as the paper states it: ReLU included; "
          "the proof assumes φ, φ' bounded): true vs decoupled backward differ by O(1/n), "
          "uniformly in depth",
          "sup_l E|g - g~|² ∝ n^-1, uniformly in L", "ch4_gaussian_gia"),
    Claim("T4.3", "forward-backward SDE limit at initialisation",
          "strong error O(1/L) in second moment", "ch4_fbsde"),
    Claim("P5.1", "Gaussian representation after one SGD update",
          "identity exact; conditional residual law", "ch5_coupling"),
    Claim("P5.2", "after one step the reused-weight coupling survives n → ∞ (the one-step gap "
          "has a non-zero width limit)", "one-step gap → non-zero limit as n → ∞", "ch5_coupling"),
    Claim("P5.2-Eq17", "the surviving coupling has the adjacent-layer form of Eq. 17 (App. E): "
          "W_ℓᵀg_ℓ enters the second pass with the previous layer's drift weight C_{ℓ-1}/L",
          "weight b_ℓ of W_ℓᵀg_ℓ in h'_{ℓ-1} = C_{ℓ-1}/L (regression slope of b on it: 1, within "
          "a factor 2)",
          "ch5_coupling"),
    Claim("C5.7", "depth suppression of the omitted coupling",
          "accumulated gap second moment O(L^-2)", "ch5_coupling"),
    Claim("D5.3", "the book's NFD solver converges (Def. 5.3 is a definition: what is checked is "
          "its Euler scheme in L and its particle approximation in P)",
          "strong error O(1/L) (second moment) in L; Monte Carlo error ∝ P^-1/2", "ch5_nfd",
          kind="check"),
    Claim("A5.4", "nondegeneracy of the NFD kernels",
          "λ_min(C), λ_min(G) bounded away from 0", "ch5_nfd"),
    Claim("T5.6-decoupled", "finite networks with decoupled backward weights converge to NFD",
          "f error against NFD at the same L ∝ n^-1", "ch5_nfd"),
    Claim("T5.6-true", "finite networks trained by true backprop converge to NFD as n → ∞, then L → ∞",
          "squared bias against NFD(L → ∞) ≤ C/L", "ch5_nfd"),
    Claim("NB-E1", "the book's claim, from Cor. 5.7: the reuse corrections of the true-backprop "
          "limit to NFD vanish as L → ∞ (not the paper's Prop. E.1)",
          "corrections vanish as L → ∞", "ch5_true_limit"),
    Claim("NB-TW", "the book's own: true networks converge to the true limit at rate n^-1/2, uniformly in L",
          "error of f <= C n^-1/2, exponent and C not degrading with L", "ch5_true_limit_scaling"),
    Claim("NB-TD", "the book's own: the true limit has a depth limit, reached at a power of 1/L",
          "weak and strong errors on shared paths decay in L", "ch5_true_limit_scaling"),
    Claim("NB-TG", "the book's own: that depth limit differs from the NFD by an O(1) amount",
          "true limit - NFD -> non-zero constant as L -> infinity", "ch5_true_limit_scaling"),
    Claim("NB-BK", "the book's backends agree with the numpy reference",
          "agreement to floating-point tolerance", "backends", kind="check"),
    Claim("F1", "Fig. 1 (initialisation): finite networks approach the SDE limit in width and in "
          "depth, with a width error that does not grow with depth (the limits commute)",
          "W2² (debiased) decreases in n at every L and in L at n = ∞; no growth with L at fixed n",
          "ch4_fbsde"),
    Claim("F1-train", "Fig. 1 (after training): finite networks trained by true backprop approach "
          "NFD in width and in depth",
          "f error against NFD decreases in n; squared bias against NFD(L → ∞) decreases in L", "ch5_nfd"),
    Claim("F2", "Fig. 2: decoupled training matches standard training for depth-µP",
          "reused/decoupled gap shrinks with depth (depth-µP only)", "appG_gia"),
    Claim("F3", "Fig. 3: NFD kernels nondegenerate", "λ_min > 0", "ch5_nfd"),
    Claim("F4", "Fig. 4: post-activation feature norms diverge with depth",
          "post-act features diverge", "ch3_post_activation"),
    Claim("F4-train", "Fig. 4: pre-activation ResNets train more stably than post-activation ones at depth",
          "fewer diverged runs or a lower final test loss (pre-act) at the deepest L", "ch3_post_activation"),
    Claim("F5", "Fig. 5: Fig. 2 at width 256", "as Fig. 2", "appG_gia"),
    Claim("G-stab", "App. G: vanilla and µP ResNets become unstable with depth, depth-µP does not",
          "a one-ulp perturbation of the initial weights grows to O(1) at depth (vanilla, µP "
          "ResNet); stays at rounding level at every depth (depth-µP)", "appG_gia"),
]}


def record(claim_id: str, verdict: str, measured: Any, expected: Any, **details: Any) -> dict:
    """A claim record; raises ValueError for an unknown ID or verdict."""
    if claim_id not in CLAIMS:
        raise ValueError(f"unknown claim id {claim_id!r}; known: {', '.join(CLAIMS)}")
    allowed = KIND_VERDICTS[CLAIMS[claim_id].kind]
    if verdict not in allowed:
        raise ValueError(f"verdict {verdict!r} is not one of {allowed} (a {CLAIMS[claim_id].kind})")
    rec = {"id": claim_id, "verdict": verdict, "measured": measured, "expected": expected}
    rec.update(details)
    return to_jsonable(rec)


def collect(root: Path | None = None) -> list[dict]:
    """Claim records of all stored results under ``root`` (newest result per claim ID and
    profile), each with the experiment, profile and date added."""
    root = Path(root or results_root())
    found: dict[tuple[str, str], dict] = {}
    for path in sorted(root.glob("*/*/result.json")):
        try:
            res = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        date = res.get("provenance", {}).get("date", "")
        profile = res.get("params", {}).get("profile", "")
        for rec in res.get("claims", []):
            row = dict(rec, experiment=res.get("experiment"), profile=profile, date=date)
            key = (rec["id"], profile)
            if key not in found or found[key]["date"] <= date:
                found[key] = row
    order = list(CLAIMS)
    return sorted(found.values(), key=lambda r: (order.index(r["id"]) if r["id"] in order else 99,
                                                 r["profile"]))


def measured_text(x: Any) -> str:
    """A measured figure as plain text on one line: floats to 4 significant digits, a dict
    as ``key=value; ...``, a list as ``[a, b]``."""
    if isinstance(x, float):
        return f"{x:.4g}"
    if isinstance(x, dict):
        return "; ".join(f"{k}={measured_text(v)}" for k, v in x.items())
    if isinstance(x, list):
        return "[" + ", ".join(measured_text(v) for v in x) + "]"
    return str(x)


def cell(text: Any) -> str:
    """Text for a Markdown table cell: one line, with ``|`` escaped so that it renders as ``|``,
    and ``*`` and every ``_`` that is not inside a word escaped, so that ``h'_{ℓ-1} = C_{ℓ-1}``
    does not render as emphasis (``depth_mup`` stays as it is: an underscore inside a word is
    inert)."""
    text = str(text).replace("\n", " ").replace("|", "\\|").replace("*", "\\*")
    return re.sub(r"_(?![^\W_])|(?<![^\W_])_", r"\\_", text)


def headline(x: Any) -> str:
    """A measured figure for the dashboard, whole and on one line: never cut, so that the
    number that decided the verdict always shows."""
    return cell(measured_text(x))


def verdict_at_scale(r: dict) -> str:
    """The verdict with the scale it was reached at: "not reproduced at book scale"."""
    verdict, profile = r["verdict"], r.get("profile", "")
    return f"{verdict} at {profile} scale" if profile and verdict != "not yet measured" else verdict


def duration(seconds: float) -> str:
    """Seconds in words: "42 s", "18.5 min", "2.3 h"."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def cost_text(run: dict) -> str:
    """A ledger entry's ``run`` in words: "18.5 min, 8.7 GiB" (time, then peak memory where
    it was measured)."""
    peak = run.get("peak_gib")
    return duration(run.get("seconds") or 0.0) + (f", {peak:.1f} GiB" if peak is not None else "")


def profile_cost(r: dict) -> str:
    """A dashboard row's profile, with the run's time and memory where its ledger entry has
    them (paper records): "paper (18.5 min, 8.7 GiB)"."""
    profile, run = r.get("profile", ""), r.get("run_cost")
    return f"{profile} ({cost_text(run)})" if run else profile


def table(records: list[dict], link_dir: Path | None = None) -> str:
    """A Markdown table of claim records (statement with the record's full setting, verdict
    with its scale, measured, expected, profile (with the run's time and memory where the
    ledger has them), date, chapter). With ``link_dir`` (the book
    folder), chapters that exist there are linked (relative to the page that includes the
    table)."""
    head = "| claim | statement | verdict | measured | paper | profile | date | chapter |\n"
    head += "|---|---|---|---|---|---|---|---|\n"
    rows = []
    for r in records:
        c = CLAIMS.get(r["id"])
        chapter = c.chapter if c else ""
        exists = link_dir is not None and chapter and (Path(link_dir) / f"{chapter}.ipynb").exists()
        link = f"[{chapter}]({chapter}.ipynb)" if exists else chapter
        setting = row_setting(r)
        statement = (c.statement if c else "") + (f" ({setting})" if setting else "")
        rows.append("| " + " | ".join([
            cell(r["id"]), cell(statement), cell(verdict_at_scale(r)), headline(r["measured"]),
            headline(r["expected"]), cell(profile_cost(r)), r.get("date", "")[:10], link,
        ]) + " |")
    return head + "\n".join(rows)


RECORD_SETTING_KEYS = SETTING_KEYS + ("width",)  # what a record may fix itself (F5: width=256)
_PART = re.compile(r", (?=[^,\[\]=]+=)")  # split "a=1, b=[1, 2], L>=4" before each key


def row_setting(r: dict) -> str:
    """A row's full setting: the setting keys that the record names itself (an experiment
    that checks several activations, architectures or widths in one run), which take the place
    of the run's; then the run's setting (``setting``: its setting keys and every parameter set
    away from the profile); then what the record's own ``setting`` string adds (P5.2 and C5.7:
    step size, fit width, smallest depth), without repeating a key or a value already shown."""
    own = {k: r[k] for k in RECORD_SETTING_KEYS
           if isinstance(r.get(k), (str, int)) and not isinstance(r.get(k), bool)}
    shown = {k: str(v) for k, v in own.items()}
    parts = [f"{k}={v}" for k, v in own.items()]
    for text in (r.get("setting", ""), r.get("record_setting", "")):
        for part in _PART.split(text or ""):
            key, eq, value = part.partition("=")
            if not part or (eq and key in shown) or (not eq and part in shown.values()):
                continue
            shown[key if eq else part] = value if eq else part
            parts.append(part)
    return ", ".join(parts)


def ledger_dir() -> Path:
    """Where the book's claim ledger lives: ``$NFD_LEDGER`` or ``book/_claims`` of the
    checkout. One JSON file per experiment and profile, plus ``dashboard.md``."""
    return Path(os.environ.get("NFD_LEDGER", _PACKAGE_DIR.parent / "book" / "_claims"))


def belongs_in_ledger(result: dict, record: bool | None = None) -> bool:
    """Whether a finished run's claims go to the ledger: it ran a ledger profile (``book``,
    ``paper``) and either kept that profile's defaults (only where and how it ran, RUN_KEYS,
    may differ) or was asked to with ``record=True``. ``record=False``: never."""
    if record is False or result.get("params", {}).get("profile") not in LEDGER_PROFILES:
        return False
    return bool(record) or not any(k not in RUN_KEYS for k in result.get("overrides", {}))


def setting_of(result: dict) -> str:
    """What tells a run apart in the ledger: the chapter's setting keys, then every other
    parameter set away from the profile's defaults (except where and how it ran)."""
    params = result["params"]
    shown = {k: params[k] for k in SETTING_KEYS if isinstance(params.get(k), str)}
    shown.update({k: v for k, v in result.get("overrides", {}).items() if k not in RUN_KEYS})
    return ", ".join(f"{k}={v}" for k, v in shown.items())


def ledger_key(params: dict) -> str:
    """The short hash of a run's parameters that names its ledger file (and its compact paper
    result, :mod:`nfdlib.paper_export`)."""
    return hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()[:8]


def ledger_path(experiment: str, profile: str, key: str, folder: Path | None = None) -> Path:
    """The ledger file of one run: ``<experiment>.<profile>.<key>.json`` (key: :func:`ledger_key`)."""
    return Path(folder or ledger_dir()) / f"{experiment}.{profile}.{key}.json"


def write_ledger(result: dict) -> None:
    """Record a finished result's claims in the ledger (``book`` and ``paper`` profiles
    only) and regenerate the dashboard table that the book's first page includes. The entry
    replaces any entry of the same experiment, profile and setting (a re-run, on another
    backend say), so the dashboard has one row per claim, profile and setting; an entry
    whose setting and claims are unchanged is left as it is (its date too).

    A ``paper`` entry also carries ``run``, how the run was made (:func:`nfdlib.store.run_cost`
    of the result's ``folder``: seconds, peak memory, points, executor); a ``book`` entry does
    not. Book runs are re-made by every book build and by CI, on whatever machine, and their
    cost is measured by ``nfd reproduce --save-costs`` into ``nfdlib/costs.json``; paper runs
    are made once, deliberately, and their cost is what a reader needs to plan one. ``run``
    is added to an entry that has none; a new paper run (another provenance date) replaces
    the entry's ``run`` and date even where its claims are unchanged, so that the entry
    describes the same run as the compact result written beside it (``book/_paper``), while
    the same stored run recorded again leaves the entry as it is; and the ledger comparison
    of CI (:mod:`nfdlib.ledger_compare`) compares claims only."""
    profile = result.get("params", {}).get("profile")
    if profile not in LEDGER_PROFILES or not result.get("claims"):
        return
    folder = ledger_dir()
    params = result["params"]
    setting = setting_of(result)
    entry = {"experiment": result["experiment"], "profile": profile, "setting": setting,
             "date": result.get("provenance", {}).get("date", ""), "claims": result["claims"]}
    if profile == "paper" and result.get("folder"):
        entry["run"] = run_cost(Path(result["folder"]), result)
    # one file per experiment, profile and parameter set: a chapter that runs an experiment
    # on several grids (e.g. a width grid for P5.2, a depth grid for C5.7) keeps every record
    path = ledger_path(result["experiment"], profile, ledger_key(params), folder)
    for other in folder.glob(f"{result['experiment']}.{profile}.*.json"):
        if other != path and json.loads(other.read_text()).get("setting", "") == setting:
            other.unlink()
    old = json.loads(path.read_text()) if path.exists() else None
    same = old is not None and {k: old.get(k) for k in ("setting", "claims")} \
        == {"setting": setting, "claims": to_jsonable(result["claims"])} \
        and ("run" not in entry or ("run" in old and old.get("date") == entry["date"]))
    if not same:
        atomic_write_json(path, entry)
    atomic_write_bytes(folder / "dashboard.md", dashboard_markdown(collect_ledger(folder), folder).encode())


def collect_ledger(folder: Path | None = None) -> list[dict]:
    """Claim records of the ledger, each with experiment, profile and date, in claim order."""
    rows = []
    for path in sorted(Path(folder or ledger_dir()).glob("*.json")):
        entry = json.loads(path.read_text())
        for rec in entry["claims"]:
            rows.append(dict(rec, experiment=entry["experiment"], profile=entry["profile"],
                             date=entry["date"], setting=entry.get("setting", ""),
                             record_setting=rec.get("setting", ""), run_cost=entry.get("run")))
    order = list(CLAIMS)
    return sorted(rows, key=lambda r: (order.index(r["id"]) if r["id"] in order else 99, r["profile"]))


def dashboard_markdown(records: list[dict], folder: Path | None = None) -> str:
    """The dashboard: every claim of :data:`CLAIMS`, measured or not, as a Markdown table
    with links to the chapters."""
    measured = {r["id"] for r in records}
    missing = [{"id": cid, "verdict": "not yet measured", "measured": "", "expected": c.prediction,
                "profile": "", "date": ""} for cid, c in CLAIMS.items() if cid not in measured]
    order = list(CLAIMS)
    rows = sorted(records + missing, key=lambda r: (order.index(r["id"]) if r["id"] in order else 99,
                                                    r.get("profile", "")))
    return table(rows, link_dir=Path(folder or ledger_dir()).parent) + "\n"
