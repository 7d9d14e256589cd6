"""Headless Chromium for the browser tests: Debian's chromium driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Locator, Page, async_playwright, expect

# Every `expect` waits for its state for up to this long (Playwright's own default is 5 s). A deadline, not a timed
# assertion: on a quiet machine the states arrive in milliseconds, on a loaded CI machine they may take seconds,
# and a test must never fail only because the machine was busy.
EXPECT_TIMEOUT_MS = 30_000
expect.set_options(timeout=EXPECT_TIMEOUT_MS)

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
CHROMIUM = os.environ.get("KINDRED_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


CHROMIUM_PRESENT = Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is not None


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM_PRESENT:
        message = f"Chromium not found at {CHROMIUM} (Debian package `chromium`)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    async with async_playwright() as pw:
        instance = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield instance
        finally:
            await instance.close()


async def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def post_action(post: Locator, action: str) -> None:
    """Open a post's "⋯" menu and choose an action there (the post's own menu, not one of its replies')."""
    own = post.locator(":scope > .post-card > .post-actions")
    await own.locator("details.more > summary").click()
    await own.locator(".more-menu").get_by_role("button", name=action).click()
