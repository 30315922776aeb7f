"""Compare two claim ledgers: the committed one and one re-made elsewhere (another CPU,
another BLAS kernel, a generic numba target). Used by CI's machine-independence stage.

Two ledgers agree when every record of the candidate has a committed twin (the same file:
experiment, profile and parameters) with the same claims, the same verdicts and the same
measured figures, numbers compared with the tolerance below. Numbers printed inside a
string may also differ by one unit in their last printed digit (a rounding boundary).

Why :data:`REL_TOL` = 1e-4. A verdict may only rest on numbers whose spread across machines
is far below their confidence interval. Changing the BLAS kernel or the numba target changes
the rounding of every sum (unit roundoff 6e-8 in float32, 1e-16 in float64); a stable
computation carries that change through without amplifying it much, so its figures agree to
far better than 1e-4 (App. G's depth-µP runs, whose one-ulp twins stay below 1e-6, agree to
about 1e-8 across kernels). The book prints verdict numbers to two or three significant
digits, so 1e-4 lies well below anything a reader sees, and far below any confidence
interval in the book (the narrowest are about 1e-2 wide). A figure that moves more than this
between kernels comes from a computation that amplifies rounding (App. G's G-stab measures
such runs) and must not decide a verdict.
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path

REL_TOL = 1e-4
ABS_TOL = 1e-12
_NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")


def _close(a: float, b: float, slack: float = 0.0) -> bool:
    return abs(a - b) <= REL_TOL * max(abs(a), abs(b)) + ABS_TOL + slack


def _last_digit(text: str) -> float:
    """One unit in the last printed digit of a number written as ``text``."""
    mantissa, _, exponent = text.lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    return 10.0 ** (-decimals + (int(exponent) if exponent else 0))


def _strings_agree(a: str, b: str) -> bool:
    if _NUMBER.sub("#", a) != _NUMBER.sub("#", b):
        return False
    return all(_close(float(x), float(y), _last_digit(x))
               for x, y in zip(_NUMBER.findall(a), _NUMBER.findall(b)))


def differences(ref, new, where: str = "") -> list[str]:
    """Where ``new`` departs from ``ref`` (nested dicts, lists, numbers, strings)."""
    if isinstance(ref, dict) and isinstance(new, dict):
        if set(ref) != set(new):
            return [f"{where}: keys {sorted(ref)} vs {sorted(new)}"]
        return [d for k in ref for d in differences(ref[k], new[k], f"{where}.{k}")]
    if isinstance(ref, list) and isinstance(new, list):
        if len(ref) != len(new):
            return [f"{where}: {len(ref)} vs {len(new)} entries"]
        return [d for i, (a, b) in enumerate(zip(ref, new)) for d in differences(a, b, f"{where}[{i}]")]
    if isinstance(ref, bool) or isinstance(new, bool):
        return [] if ref == new else [f"{where}: {ref} vs {new}"]
    if isinstance(ref, (int, float)) and isinstance(new, (int, float)):
        if math.isfinite(ref) and math.isfinite(new) and _close(ref, new):
            return []
        return [] if ref == new else [f"{where}: {ref!r} vs {new!r}"]
    if isinstance(ref, str) and isinstance(new, str):
        return [] if _strings_agree(ref, new) else [f"{where}: {ref!r} vs {new!r}"]
    return [] if ref == new else [f"{where}: {ref!r} vs {new!r}"]


def compare(reference: Path, candidate: Path,
            complete_profile: str | None = None) -> tuple[list[str], list[str]]:
    """(records compared, problems) between the ledger folders ``reference`` and
    ``candidate``: each record file of the candidate against the file of the same name.
    With ``complete_profile``, every reference record of that profile must also be in the
    candidate (a stale committed record, which the book no longer makes, is a problem)."""
    compared, problems = [], []
    if complete_profile is not None:
        for path in sorted(Path(reference).glob(f"*.{complete_profile}.*.json")):
            if not (Path(candidate) / path.name).exists():
                problems.append(f"{path.name}: committed, but not made by this run")
    for path in sorted(Path(candidate).glob("*.json")):
        ref_path = Path(reference) / path.name
        if not ref_path.exists():
            problems.append(f"{path.name}: no record of these parameters in {reference}")
            continue
        ref, new = json.loads(ref_path.read_text()), json.loads(path.read_text())
        ref_claims, new_claims = ref["claims"], new["claims"]
        if [c["id"] for c in ref_claims] != [c["id"] for c in new_claims]:
            problems.append(f"{path.name}: claims {[c['id'] for c in ref_claims]} vs "
                            f"{[c['id'] for c in new_claims]}")
            continue
        for a, b in zip(ref_claims, new_claims):
            label = f"{path.name} {a['id']}" + (f" ({a['arch']})" if a.get("arch") else "")
            if a["verdict"] != b["verdict"]:
                problems.append(f"{label}: verdict {a['verdict']!r} vs {b['verdict']!r}")
            problems += [f"{label} measured{d}" for d in differences(a["measured"], b["measured"])]
            compared.append(f"{label}: {b['verdict']}")
    if not compared and not problems:
        problems.append(f"no records in {candidate}")
    return compared, problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nfdlib.ledger_compare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reference", type=Path, help="the committed ledger (book/_claims)")
    parser.add_argument("candidate", type=Path, help="a ledger re-made on another machine")
    parser.add_argument("--complete", metavar="PROFILE",
                        help="every committed record of this profile must be re-made")
    args = parser.parse_args(argv)
    compared, problems = compare(args.reference, args.candidate, args.complete)
    for line in compared:
        print("  same:", line)
    for line in problems:
        print("  DIFFERS:", line)
    print(f"{len(compared)} records compared, {len(problems)} differences "
          f"(tolerance: relative {REL_TOL:g})")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
