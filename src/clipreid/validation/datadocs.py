"""Make a Great Expectations Data Docs site render offline.

GX's pages load jQuery, Bootstrap, bootstrap-table, its filter-control extension,
bootstrap-datepicker, Popper and Font Awesome from CDNs, and a logo image from a web
server; offline the index page's tables stay empty. :func:`publish_site` copies a built
site, adds the vendored copies in ``assets/`` (npm packages, minified; licences in
``assets/licenses/``) under ``static/vendor/``, and rewrites every page to use them:

- ``<script src>`` / ``<link href>`` of a known library point to the local copy, and
  lose their ``integrity`` / ``crossorigin`` attributes;
- tags that the validation pages do not need are removed: Vega (charts of profiling
  expectations, which these suites do not use) and the optional dark theme;
- remote ``<img>`` sources and CSS ``url(...)`` point to GX's own ``static/images`` copy
  when one exists, else are removed;
- any other remote script or stylesheet tag is removed and its URL returned, so nothing
  on a page reaches out to the network.

GX's own images and fonts that no page or stylesheet names (animated GIFs of its
tutorials, ~3 MB) are then deleted, which keeps the site about 1.5 MB.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from clipreid.io import atomic_dir

ASSETS_DIR = Path(__file__).with_name("assets")
VENDOR_DIR = Path("static") / "vendor"

# last segment of a CDN URL -> vendored file (relative to ASSETS_DIR)
LIBRARIES = {
    "jquery-3.7.1.min.js": "jquery.min.js",
    "popper.min.js": "popper.min.js",
    "bootstrap.min.css": "bootstrap.min.css",
    "bootstrap.min.js": "bootstrap.min.js",
    "bootstrap-table.min.css": "bootstrap-table.min.css",
    "bootstrap-table.min.js": "bootstrap-table.min.js",
    "bootstrap-table-filter-control.css": "bootstrap-table-filter-control.min.css",
    "bootstrap-table-filter-control.min.css": "bootstrap-table-filter-control.min.css",
    "bootstrap-table-filter-control.min.js": "bootstrap-table-filter-control.min.js",
    "bootstrap-datepicker.min.css": "bootstrap-datepicker.min.css",
    "bootstrap-datepicker.min.js": "bootstrap-datepicker.min.js",
    "all.min.css": "fontawesome/css/all.min.css",
}
# last segment of a CDN URL whose tag is removed (not needed by validation pages)
DROPPED = {"vega@5", "vega-lite@5", "vega-embed@6", "bootstrap-prefers-dark.css"}

_REMOTE = r"(?:https?:)?//[^\"']+"
_SCRIPT = re.compile(
    r"<script\b[^>]*?\bsrc=[\"'](?P<url>" + _REMOTE + r")[\"'][^>]*>\s*</script>", re.I
)
_LINK = re.compile(r"<link\b[^>]*?\bhref=[\"'](?P<url>" + _REMOTE + r")[\"'][^>]*>", re.I)
_IMG = re.compile(r"<img\b[^>]*?\bsrc=[\"'](?P<url>" + _REMOTE + r")[\"'][^>]*>", re.I)
_CSS_URL = re.compile(r"url\(\s*[\"']?(?P<url>" + r"(?:https?:)?//[^\"')]+" + r")[\"']?\s*\)", re.I)
_SRI = re.compile(r"\s(?:integrity|crossorigin)(?:=(?:\"[^\"]*\"|'[^']*'|[^\s>]+))?", re.I)


def _last_segment(url: str) -> str:
    return url.split("?", 1)[0].split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1]


def rewrite_html(html: str, page_dir: Path, site_dir: Path) -> tuple[str, list[str]]:
    """Point a page's remote scripts, stylesheets and images to local files.

    Returns the new HTML and the remote URLs that were removed as unknown."""
    unknown: list[str] = []

    def rel(target: Path) -> str:
        return Path(os.path.relpath(site_dir / target, page_dir)).as_posix()

    def library(match: re.Match) -> str:
        tag, url = match.group(0), match.group("url")
        name = _last_segment(url)
        if name in LIBRARIES:
            return _SRI.sub("", tag.replace(url, rel(VENDOR_DIR / LIBRARIES[name])))
        if name not in DROPPED:
            unknown.append(url)
        return ""

    def image(match: re.Match) -> str:
        tag, url = match.group(0), match.group("url")
        local = Path("static") / "images" / _last_segment(url)
        if (site_dir / local).is_file():
            return tag.replace(url, rel(local))
        unknown.append(url)
        return ""

    html = _SCRIPT.sub(library, html)
    html = _LINK.sub(library, html)
    html = _IMG.sub(image, html)
    return html, unknown


def rewrite_css(css: str, css_dir: Path, site_dir: Path) -> str:
    """Point remote ``url(...)`` in a stylesheet to GX's local images, or to ``none``."""

    def local(match: re.Match) -> str:
        target = site_dir / "static" / "images" / _last_segment(match.group("url"))
        if target.is_file():
            return f"url('{Path(os.path.relpath(target, css_dir)).as_posix()}')"
        return "none"

    return _CSS_URL.sub(local, css)


def prune_unreferenced(site_dir: Path) -> list[str]:
    """Delete files of ``static/images`` and ``static/fonts`` that no page or stylesheet
    names; return their names."""
    texts = [p.read_text(encoding="utf-8") for p in site_dir.rglob("*.html")]
    texts += [
        p.read_text(encoding="utf-8") for p in (site_dir / "static" / "styles").rglob("*.css")
    ]
    text = "\n".join(texts)
    removed = []
    for folder in ("images", "fonts"):
        for path in sorted((site_dir / "static" / folder).rglob("*")):
            if path.is_file() and path.name not in text:
                path.unlink()
                removed.append(path.name)
    return removed


def make_offline(site_dir: str | os.PathLike) -> list[str]:
    """Vendor the assets into ``site_dir`` and rewrite its pages in place.

    Returns the unknown remote URLs that were removed (empty when GX's pages use only
    the known libraries)."""
    site_dir = Path(site_dir)
    shutil.copytree(ASSETS_DIR, site_dir / VENDOR_DIR, dirs_exist_ok=True)
    unknown: list[str] = []
    for page in sorted(site_dir.rglob("*.html")):
        html, removed = rewrite_html(page.read_text(encoding="utf-8"), page.parent, site_dir)
        page.write_text(html, encoding="utf-8")
        unknown += removed
    for sheet in sorted((site_dir / "static" / "styles").rglob("*.css")):
        sheet.write_text(
            rewrite_css(sheet.read_text(encoding="utf-8"), sheet.parent, site_dir), encoding="utf-8"
        )
    prune_unreferenced(site_dir)
    return sorted(set(unknown))


def publish_site(
    built_site: str | os.PathLike, docs_dir: str | os.PathLike
) -> tuple[Path, list[str]]:
    """Copy a built Data Docs site to ``docs_dir`` (replacing it at once) made offline.

    Returns the path of the site's ``index.html`` and the unknown remote URLs removed."""
    docs_dir = Path(docs_dir)
    with atomic_dir(docs_dir) as tmp:
        shutil.copytree(built_site, tmp, dirs_exist_ok=True)
        unknown = make_offline(tmp)
    return docs_dir / "index.html", unknown
