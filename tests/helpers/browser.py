"""One headless browser for every test that looks at a page (TensorBoard, the Optuna dashboard).

Chromium comes from Debian's packages (``apt-get install chromium``, installed by the first test
that asks, see :mod:`tests.helpers.system`); Playwright (from requirements.txt) drives it through
``executable_path``, so no browser is ever downloaded. The machine's network is closed, so
Chromium is started without any of its background connections (sync, component updates, ...);
Playwright gives it a throw-away profile.

Use the session fixture ``browser`` (``tests/conftest.py``)::

    def test_page(browser, tmp_path):
        page = browser.open("http://127.0.0.1:6006/#timeseries", wait_for_text="served_pct")
        browser.screenshot(page, tmp_path / "tb.png")
        assert "served_pct" in page.inner_text("body")

Pages only ever point at servers on loopback that the test started.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.helpers.system import need_debian_packages

CHROMIUM_ARGS = (
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-dev-shm-usage",
)
DEFAULT_TIMEOUT_MS = 60_000
VIEWPORT = {"width": 1400, "height": 900}


def chromium_path() -> str:
    """Debian's Chromium, installed if missing (the calling test is skipped if it cannot be)."""
    need_debian_packages(["chromium"], ["chromium"])
    path = shutil.which("chromium")
    assert path is not None
    return path


class Browser:
    """A running headless Chromium; :meth:`open` gives a fresh page (its own context)."""

    def __init__(self, browser: Any) -> None:
        self._browser = browser

    def open(
        self, url: str, wait_for_text: str | None = None, timeout_ms: int = DEFAULT_TIMEOUT_MS
    ) -> Any:
        """A new page at ``url``; waits until ``wait_for_text`` is shown (if given)."""
        if not url.startswith(("http://127.", "http://localhost")):
            raise ValueError(f"tests only open pages on loopback, not {url!r}")
        context = self._browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        page.set_default_timeout(timeout_ms)
        page.goto(url, wait_until="domcontentloaded")
        if wait_for_text is not None:
            self.wait_for_text(page, wait_for_text, timeout_ms)
        return page

    @staticmethod
    def wait_for_text(page: Any, text: str, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> None:
        """Wait until ``text`` is part of the page's visible text."""
        page.get_by_text(text).first.wait_for(state="visible", timeout=timeout_ms)

    @staticmethod
    def screenshot(page: Any, path: str | Path, full_page: bool = True) -> Path:
        """A PNG of the page at ``path`` (parents created)."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out), full_page=full_page)
        return out


@contextmanager
def launched() -> Iterator[Browser]:
    """Start Chromium headless under Playwright (a throw-away profile); stop it at the end."""
    executable = chromium_path()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=executable, headless=True, args=list(CHROMIUM_ARGS)
        )
        try:
            yield Browser(chromium)
        finally:
            chromium.close()
