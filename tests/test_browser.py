"""The rendered book, opened page by page in headless Chromium (marked ``browser``; run
after ``jupyter-book build .``): no broken internal links or images, MathJax typeset every
equation, each figure of the paper on its page, every claim in the dashboard. Screenshots of
the first page and one chapter go to ``_build/screenshots/``."""
from __future__ import annotations

import functools
import http.server
import re
import shutil
import subprocess
import threading
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse

import pytest

from nfdlib.claims import CLAIMS

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
FIGURES = {"ch4_fbsde": ["1"], "ch5_nfd": ["1", "3"], "appG_gia": ["2", "5"],
           "ch3_post_activation": ["4"]}
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars"]


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs, self.srcs, self.ids = [], [], set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "a" and a.get("href"):
            self.hrefs.append(a["href"])
        if tag == "img" and a.get("src"):
            self.srcs.append(a["src"])


@pytest.fixture(scope="module")
def site():
    if not (HTML / "index.html").exists():
        pytest.fail(f"no built book at {HTML}: run 'jupyter-book build .' first")
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.fail("Chromium is not installed (Debian package 'chromium'); .ci/run installs it")
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(HTML))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield browser, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def render(browser: str, url: str, tmp: Path) -> str:
    """The DOM after the page's scripts ran (MathJax included)."""
    out = subprocess.run([browser, *FLAGS, f"--user-data-dir={tmp}", "--virtual-time-budget=20000",
                          "--dump-dom", url], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def pages() -> list[Path]:
    return sorted(p for p in HTML.rglob("*.html")
                  if not p.relative_to(HTML).parts[0].startswith("_") and p.name not in ("genindex.html", "search.html"))


def test_every_page(site, tmp_path):
    browser, base = site
    problems = []
    for page in pages():
        rel = page.relative_to(HTML).as_posix()
        if page.name == "index.html" and "refresh" in page.read_text().lower():
            continue  # jupyter-book's redirect to the root page
        url = urljoin(base, rel)
        dom = render(browser, url, tmp_path / "profile")
        parser = Links()
        parser.feed(dom)
        for ref in parser.hrefs + parser.srcs:
            target = urlparse(urljoin(url, ref))
            if target.netloc != urlparse(base).netloc or ref.startswith("#") or target.scheme not in ("http", "https"):
                continue
            path = HTML / unquote(target.path).lstrip("/")
            if path.is_dir():
                path = path / "index.html"
            if not path.exists():
                problems.append(f"{rel}: broken link {ref}")
        static = page.read_text()
        if 'class="math' in static:
            if "mjx-container" not in dom:
                problems.append(f"{rel}: MathJax did not typeset the equations")
            if re.search(r"\$\$", re.sub(r"<(script|pre|code)[\s\S]*?</\1>", "", dom)):
                problems.append(f"{rel}: raw $$ left in the page")
        stem = page.stem
        for number in FIGURES.get(stem, []):
            if not parser.srcs or not re.search(rf"Fig(ure|\.)\s*{number}\b", dom):
                problems.append(f"{rel}: Fig. {number} missing")
    assert not problems, "\n".join(problems)


def test_dashboard_lists_every_claim(site, tmp_path):
    browser, base = site
    dom = render(browser, urljoin(base, "book/intro.html"), tmp_path / "profile")
    table = dom[dom.find("<table"):dom.rfind("</table>")]
    missing = [cid for cid in CLAIMS if f">{cid}<" not in table]
    assert not missing, f"claims missing from the dashboard: {missing}"


def test_screenshots(site, tmp_path):
    browser, base = site
    SHOTS.mkdir(parents=True, exist_ok=True)
    chapter = next((p for p in ("ch5_coupling", "ch4_fbsde", "backends") if (HTML / "book" / f"{p}.html").exists()))
    for name, rel in (("intro", "book/intro.html"), (chapter, f"book/{chapter}.html")):
        shot = SHOTS / f"{name}.png"
        subprocess.run([browser, *FLAGS, f"--user-data-dir={tmp_path / name}", "--virtual-time-budget=20000",
                        "--window-size=1280,1800", f"--screenshot={shot}", urljoin(base, rel)],
                       capture_output=True, timeout=180, check=True)
        assert shot.stat().st_size > 10_000
