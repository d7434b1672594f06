"""/docs in a real browser (Debian's chromium through Playwright): the interactive docs render every
operation from /openapi.json with no request leaving the machine (the service runs offline).

Skipped when /usr/bin/chromium is missing outside CI; a failure in CI.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser
CHROMIUM = "/usr/bin/chromium"


def test_docs_render_every_operation_offline(api):
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing in CI")
        pytest.skip(f"{CHROMIUM} is missing")
    from playwright.sync_api import sync_playwright
    from werkzeug.serving import make_server
    server = make_server("127.0.0.1", 0, api.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    elsewhere, errors = [], []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page()
            page.on("request", lambda r: r.url.startswith(base) or r.url.startswith("data:") or elsewhere.append(r.url))
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(base + "/docs")
            page.wait_for_selector(".opblock", timeout=20_000)
            shown = page.locator(".opblock").count()
            browser.close()
    finally:
        server.shutdown()
        thread.join(timeout=10)
    operations = sum(len(v) for v in api.client.get("/openapi.json").get_json()["paths"].values())
    assert shown == operations
    assert elsewhere == [] and errors == []
