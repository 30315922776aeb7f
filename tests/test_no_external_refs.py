"""The repository refers to nothing outside itself and its bibliography: no tracked text file
names a private working note or a folder next to the checkout. The patterns are assembled
from pieces so that this file does not match them itself."""
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PATTERNS = ["MATH" + ".md", ".." + "/shared", "shared" + "/design", "shared" + "/paper"]


def _tracked_files() -> list[str]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [p for p in out.stdout.decode().split("\0") if p]


def test_no_tracked_file_points_outside_the_repository():
    hits = []
    for rel in _tracked_files():
        path = ROOT / rel
        if not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:        # binary (images, pdfs)
            continue
        text = data.decode("utf-8", errors="replace")
        for lineno, line in enumerate(text.splitlines(), 1):
            for pat in PATTERNS:
                if pat in line:
                    hits.append(f"{rel}:{lineno}: {pat}")
    assert not hits, "references outside the repository:\n" + "\n".join(hits)
