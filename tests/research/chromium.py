"""Render an HTML page in Debian's headless Chromium and check that its charts really drew.

Flags from ../shared/docs/REAL-COMPONENTS.md section 3. One Chromium run writes the
screenshot and prints the DOM after load (``--dump-dom``).

Checks:
- DOM: every expected chart div holds a plotly ``svg.main-svg`` and at least one
  ``g.trace`` with a drawn path (a ``d`` attribute with at least two drawing commands);
- screenshot: not blank (> 50 colours and > 10 % non-white pixels; a text-only page
  is about 2 %, a plotly page about 50 %).
A page that shows only an error or text fails both.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

INSTALL_HINT = "headless Chromium is missing: install it with `DEBIAN_FRONTEND=noninteractive apt-get install -y chromium`"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
_DRAW = re.compile(r"[MLHVCSQTAZ]", re.IGNORECASE)


def chromium_binary() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        raise AssertionError(INSTALL_HINT)
    return path


@dataclass(frozen=True)
class Rendered:
    dom: str
    png: Path
    returncode: int


def render(
    html_path: Path, png_path: Path, *, width: int = 1280, height: int = 3400, timeout_s: float = 120.0, fragment: str = ""
) -> Rendered:
    """Load the page (file://, with ``#fragment`` if given), write a screenshot, return the DOM after load."""
    binary = chromium_binary()
    with tempfile.TemporaryDirectory(prefix="mmbot-chromium-") as profile:
        proc = subprocess.run(
            [
                binary, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}",
                f"--screenshot={png_path}", "--dump-dom", html_path.resolve().as_uri() + (f"#{fragment}" if fragment else ""),
            ],
            capture_output=True, text=True, timeout=timeout_s,
        )  # fmt: skip
    return Rendered(dom=proc.stdout, png=png_path, returncode=proc.returncode)


class _Node:
    __slots__ = ("attrs", "children", "tag")

    def __init__(self, tag: str, attrs: dict[str, str]) -> None:
        self.tag = tag
        self.attrs = attrs
        self.children: list[_Node] = []

    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def walk(self) -> list[_Node]:
        out = [self]
        stack = list(reversed(self.children))
        while stack:
            node = stack.pop()
            out.append(node)
            stack.extend(reversed(node.children))
        return out


class _Tree(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = _Node("#root", {})
        self.stack = [self.root]
        self.by_id: dict[str, _Node] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = _Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if "id" in node.attrs:
            self.by_id.setdefault(node.attrs["id"], node)
        if tag not in _VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = _Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if "id" in node.attrs:
            self.by_id.setdefault(node.attrs["id"], node)

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return


def _drawn(path: _Node) -> bool:
    return len(_DRAW.findall(path.attrs.get("d", ""))) >= 2


def chart_problems(dom: str, chart_ids: tuple[str, ...] | list[str]) -> dict[str, str]:
    """For each chart id that did not render: why. Empty dict = every chart drew traces."""
    tree = _Tree()
    tree.feed(dom)
    problems: dict[str, str] = {}
    for cid in chart_ids:
        div = tree.by_id.get(cid)
        if div is None:
            problems[cid] = "no element with this id"
            continue
        nodes = div.walk()
        if not any(n.tag == "svg" and "main-svg" in n.classes() for n in nodes):
            problems[cid] = "no plotly SVG inside"
            continue
        traces = [n for n in nodes if n.tag == "g" and "trace" in n.classes()]
        drawn = [t for t in traces if any(p.tag == "path" and _drawn(p) for p in t.walk())]
        if not drawn:
            problems[cid] = f"{len(traces)} trace group(s), none with a drawn path"
    return problems


def table_column(dom: str, table_id: str, key: str) -> list[str] | None:
    """The ``data-v`` values of one column (header ``data-key``) of a table, in row order;
    None if the table or column is missing."""
    tree = _Tree()
    tree.feed(dom)
    table = tree.by_id.get(table_id)
    if table is None:
        return None
    nodes = table.walk()
    header = next((n for n in nodes if n.tag == "tr"), None)
    keys = [c.attrs.get("data-key") for c in header.children if c.tag == "th"] if header else []
    if key not in keys:
        return None
    col = keys.index(key)
    body = next((n for n in nodes if n.tag == "tbody"), None)
    rows = [r for r in body.children if r.tag == "tr"] if body else []
    return [[c for c in r.children if c.tag == "td"][col].attrs.get("data-v", "") for r in rows]


def element_attrs(dom: str, element_id: str) -> dict[str, str] | None:
    tree = _Tree()
    tree.feed(dom)
    node = tree.by_id.get(element_id)
    return None if node is None else dict(node.attrs)


def drawn_trace_counts(dom: str, chart_ids: tuple[str, ...] | list[str]) -> dict[str, int]:
    tree = _Tree()
    tree.feed(dom)
    counts = {}
    for cid in chart_ids:
        div = tree.by_id.get(cid)
        nodes = div.walk() if div is not None else []
        traces = [n for n in nodes if n.tag == "g" and "trace" in n.classes()]
        counts[cid] = sum(1 for t in traces if any(p.tag == "path" and _drawn(p) for p in t.walk()))
    return counts


def screenshot_problem(png: Path, min_colours: int = 50, min_nonwhite: float = 0.10) -> str | None:
    """None if the screenshot shows a picture; otherwise what is wrong with it."""
    from PIL import Image

    if not png.is_file() or png.stat().st_size == 0:
        return f"no screenshot at {png}"
    im = Image.open(png).convert("RGB")
    cols = im.getcolors(maxcolors=1 << 24) or []
    nonwhite = sum(n for n, c in cols if c != (255, 255, 255)) / (im.width * im.height)
    if len(cols) <= min_colours or nonwhite <= min_nonwhite:
        return f"screenshot looks blank or text-only: {len(cols)} colours, {nonwhite:.1%} non-white"
    return None
