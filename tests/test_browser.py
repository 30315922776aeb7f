"""The rendered book, opened page by page in headless Chromium (the tests marked ``browser``;
run after ``jupyter-book build .``): no broken internal links or images, MathJax typeset every
equation, each figure of the paper named on its page, every figure of a chapter notebook's
committed outputs shown on the chapter's page as a loaded image, every claim in the dashboard.
Screenshots of the first page and one chapter go to ``_build/screenshots/``. The counting of a
notebook's figures and its comparison with a page are checked without a browser."""
from __future__ import annotations

import functools
import html
import http.server
import json
import re
import shutil
import subprocess
import threading
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote, unquote, urljoin, urlparse

import pytest

from nfdlib.claims import CLAIMS

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
FIGURES = {"ch4_fbsde": ["1"], "ch5_nfd": ["1", "3"], "appG_gia": ["2", "5"],
           "ch3_post_activation": ["4"]}
IMAGE_TYPES = ("image/png", "image/svg+xml")
HIDDEN_TAGS = {"remove-cell", "remove-output"}  # cells whose outputs the book does not render
# A page that shows book/<page> in a frame and, once the page and its images have loaded, lists
# the images of its cell outputs with their natural width (0: not loaded) in #figures.
FIGURE_PROBE = """<!DOCTYPE html><html><body><pre id="figures"></pre>
<iframe id="page" src="/{page}" style="width:1280px;height:20000px"></iframe>
<script>
const frame = document.getElementById("page");
frame.addEventListener("load", async () => {{
  const imgs = [...frame.contentDocument.querySelectorAll(".cell_output img")];
  await Promise.all(imgs.map(i => i.complete ? null : new Promise(r => {{ i.onload = r; i.onerror = r; }})));
  document.getElementById("figures").textContent =
    JSON.stringify(imgs.map(i => [i.getAttribute("src"), i.naturalWidth]));
}});
</script></body></html>"""
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


def notebook_figures(path: Path) -> int:
    """The figures among a notebook's committed outputs: the outputs that carry an image
    (``image/png`` or ``image/svg+xml``; one output with both is one figure), outside cells
    tagged to have their outputs removed from the book."""
    cells = json.loads(Path(path).read_text(encoding="utf-8"))["cells"]
    return sum(1 for c in cells if c["cell_type"] == "code" and not HIDDEN_TAGS & set(c.get("metadata", {}).get("tags", []))
               for out in c.get("outputs", []) if any(k in out.get("data", {}) for k in IMAGE_TYPES))


def figure_problems(rel: str, expected: int, shown: list | None, paper_figures: int = 0) -> list[str]:
    """What is wrong with the figures of a chapter page ``rel``: ``expected`` figures in its
    notebook's committed outputs, ``shown`` the (src, natural width) of the images in the
    page's cell outputs (None: the page did not finish loading), ``paper_figures`` the number
    of the paper's figures the chapter shows (each needs at least one image)."""
    problems = []
    if expected < paper_figures:
        problems.append(f"{rel}: the notebook's committed outputs hold {expected} figure(s) for "
                        f"{paper_figures} of the paper's; was it executed without its figures (MPLBACKEND=Agg)?")
    if shown is None:
        return problems + [f"{rel}: the page and its images did not finish loading"]
    broken = [src for src, width in shown if not width]
    if broken:
        problems.append(f"{rel}: figure(s) not loaded: {', '.join(broken)}")
    if len(shown) - len(broken) != expected:
        problems.append(f"{rel}: {len(shown) - len(broken)} figure(s) loaded, the notebook's committed "
                        f"outputs hold {expected}")
    return problems


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

        def do_GET(self):
            url = urlparse(self.path)
            if url.path != "/__figures__":
                return super().do_GET()
            body = FIGURE_PROBE.format(page=quote(unquote(url.query))).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

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


@pytest.mark.browser
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
            if not re.search(rf"Fig(ure|\.)\s*{number}\b", dom):
                problems.append(f"{rel}: Fig. {number} not named on its page")
    assert not problems, "\n".join(problems)


@pytest.mark.browser
def test_every_notebook_figure_is_a_loaded_image(site, tmp_path):
    browser, base = site
    problems = []
    for nb in sorted((ROOT / "book").glob("*.ipynb")):
        rel = f"book/{nb.stem}.html"
        if not (HTML / rel).exists():
            problems.append(f"{rel}: not built")
            continue
        dom = render(browser, urljoin(base, f"__figures__?{quote(rel)}"), tmp_path / "profile")
        found = re.search(r'<pre id="figures">(.+?)</pre>', dom, re.S)
        shown = json.loads(html.unescape(found.group(1))) if found else None
        problems += figure_problems(rel, notebook_figures(nb), shown, len(FIGURES.get(nb.stem, [])))
    assert not problems, "\n".join(problems)


def _notebook(outputs_per_cell: list[list[dict]], tags: list[list[str]] | None = None) -> dict:
    tags = tags or [[] for _ in outputs_per_cell]
    return {"cells": [{"cell_type": "code", "metadata": {"tags": t}, "outputs": outs, "source": ""}
                      for outs, t in zip(outputs_per_cell, tags)] + [{"cell_type": "markdown", "source": "text"}]}


def test_figure_count_fails_a_chapter_executed_without_its_figures(tmp_path):
    png = {"output_type": "display_data", "data": {"image/png": "iVBO", "text/plain": "<Figure>"}}
    both = {"output_type": "execute_result", "data": {"image/png": "iVBO", "image/svg+xml": "<svg/>"}}
    svg = {"output_type": "display_data", "data": {"image/svg+xml": "<svg/>"}}
    text = {"output_type": "stream", "name": "stdout", "text": "F1: reproduced"}
    agg = {"output_type": "display_data", "data": {"text/plain": "<Figure size 640x480 with 2 Axes>"}}
    full, bare = tmp_path / "full.ipynb", tmp_path / "bare.ipynb"
    full.write_text(json.dumps(_notebook([[text, png], [both], [svg], [png]], [[], [], [], ["remove-output"]])))
    bare.write_text(json.dumps(_notebook([[text, agg], [agg], [agg], [agg]])))  # the same cells under Agg
    assert notebook_figures(full) == 3 and notebook_figures(bare) == 0
    shown = [("../_images/a.png", 640), ("../_images/b.png", 640), ("../_images/c.svg", 300)]
    assert figure_problems("book/x.html", 3, shown, paper_figures=2) == []
    # a page built from a figure-less execution, or with an image that did not load, fails
    assert figure_problems("book/x.html", 3, [], paper_figures=2)
    assert figure_problems("book/x.html", 3, shown[:2] + [("../_images/c.svg", 0)])
    assert figure_problems("book/x.html", 3, None)
    # and so does a figure-less notebook of a chapter that shows the paper's figures
    assert figure_problems("book/x.html", notebook_figures(bare), [], paper_figures=2)


@pytest.mark.browser
def test_dashboard_lists_every_claim(site, tmp_path):
    browser, base = site
    dom = render(browser, urljoin(base, "book/intro.html"), tmp_path / "profile")
    table = dom[dom.find("<table"):dom.rfind("</table>")]
    missing = [cid for cid in CLAIMS if f">{cid}<" not in table]
    assert not missing, f"claims missing from the dashboard: {missing}"


@pytest.mark.browser
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
