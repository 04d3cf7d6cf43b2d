"""The Data Docs site renders offline: pages use the vendored libraries only, and headless
Chromium, with every host name unresolvable, shows the validation results after the
pages' scripts ran. Needs Debian's `chromium` (apt-get install -y chromium)."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
from browser import chromium_dom
from validation_datasets import CASES, DATASET_CFG, build_market_dataset

from clipreid.validation import engine, frames, run_validation, suites
from clipreid.validation.images import inspect_images
from clipreid.validation.settings import load_settings

CASE = "camera_out_of_range"
SUITES = ["manifest_schema", "manifest_rows", "split_summary", "identity_roles", "train_identities",
          "query_matches", "image_files", "image_duplicates"]  # fmt: skip
REMOTE_TAG = re.compile(r"<(?:script|link|img)\b[^>]*?(?:src|href)=[\"'](?:https?:)?//", re.I)


def clickable_rows(dom: str) -> list[str]:
    """The table rows that bootstrap-table built (it marks them ``clickable-row``)."""
    return re.findall(r"<tr\b[^>]*clickable-row[^>]*>(.*?)</tr>", dom, re.S)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The published (offline) Data Docs of a data set with a camera out of range."""
    root = tmp_path_factory.mktemp("docs")
    dataset = build_market_dataset(root, CASE)
    outcome = run_validation(
        dataset.manifest_path, DATASET_CFG, {}, root / "validation.json", root / "data_docs"
    )
    assert not outcome.ok and outcome.docs_index == str(root / "data_docs" / "index.html")
    return root / "data_docs"


def test_pages_load_nothing_remote(site):
    pages = list(site.rglob("*.html"))
    assert len(pages) >= 1 + 2 * len(SUITES)  # index, a suite page and a result page per suite
    for page in pages:
        html = page.read_text()
        assert not REMOTE_TAG.search(html), page
        assert "integrity=" not in html and "crossorigin" not in html, page
        for src in re.findall(r"<script\b[^>]*\bsrc=\"([^\"]+)\"", html):
            assert (page.parent / src).is_file(), (page, src)  # every script is vendored
    for sheet in site.rglob("*.css"):
        assert not re.search(r"url\(\s*[\"']?(?:https?:)?//", sheet.read_text()), sheet
    assert (site / "static/vendor/fontawesome/webfonts/fa-solid-900.woff2").is_file()
    assert (site / "static/images/logo-long.png").is_file()  # the logo stays, locally
    size = sum(p.stat().st_size for p in site.rglob("*") if p.is_file())
    assert size < 2 * 2**20  # GX's unused tutorial GIFs and fonts were pruned


def test_index_lists_each_result_offline(site, tmp_path):
    rows = clickable_rows(chromium_dom(site / "index.html", tmp_path / "profile"))
    results = {name: [r for r in rows if f">{name}<" in r] for name in SUITES}
    assert all(results.values()), {k: len(v) for k, v in results.items()}
    assert "fa-times" in results["manifest_rows"][0]  # the failed result
    assert "fa-check-circle" in results["image_files"][0]


def test_result_page_names_the_offending_file(site, tmp_path):
    (page,) = (site / "validations" / "manifest_rows").rglob("*.html")
    dom = chromium_dom(page, tmp_path / "profile")
    assert "Failed" in dom
    assert Path(CASES[CASE].culprit).name in dom


def test_gx_site_as_built_renders_empty_offline(tmp_path):
    """The reason for the vendoring: GX's own pages stay empty without the network."""
    dataset = build_market_dataset(tmp_path, "clean")
    raw = frames.load_raw_manifest(dataset.manifest_path)
    info = frames.inspections_frame(inspect_images(raw["path"].tolist(), workers=1))
    plan, _, _ = suites.build_plan(raw, info, load_settings(DATASET_CFG, {}))
    context = engine.new_context(tmp_path / "site")
    engine.run_suites(context, plan, load_settings(DATASET_CFG, {}).severity, 20)
    built = engine.build_site(context)
    index = (built / "index.html").read_text()
    assert "cdn.jsdelivr.net" in index or "unpkg.com" in index
    assert clickable_rows(chromium_dom(built / "index.html", tmp_path / "profile")) == []


def test_validation_makes_no_network_call(tmp_path, monkeypatch):
    """Telemetry off: no DNS look-up and no connection, Data Docs included."""
    calls = []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise OSError("no network in this test")

    for name in ("connect", "connect_ex"):
        monkeypatch.setattr(socket.socket, name, refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    dataset = build_market_dataset(tmp_path, "clean")
    outcome = run_validation(
        dataset.manifest_path, DATASET_CFG, {}, tmp_path / "v.json", tmp_path / "docs"
    )
    assert outcome.ok and calls == []
    assert engine.new_context(tmp_path / "site").get_config().analytics_enabled is False
