"""axe-core in the browser tests: the vendored copy (web/static/vendor/axe.min.js, from the npm package, never a CDN)
is loaded into the page from our own origin (the CSP allows scripts from 'self' only) and run on the whole page."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Page

AXE_URL = "/static/vendor/axe.min.js"
FAILING = ("serious", "critical")

RUN = """async () => {
  const result = await axe.run(document, { resultTypes: ["violations"] });
  return result.violations.map((v) => ({
    id: v.id,
    impact: v.impact,
    help: v.help,
    nodes: v.nodes.map((n) => ({ target: n.target.join(" "), summary: n.failureSummary })),
  }));
}"""


async def violations(page: Page) -> list[dict[str, Any]]:
    """Every axe violation on the page as it is now (all rules axe runs by default: WCAG 2.x A/AA and best practice)."""
    if not await page.evaluate("() => typeof window.axe !== 'undefined'"):
        await page.add_script_tag(url=AXE_URL)
    found: list[dict[str, Any]] = await page.evaluate(RUN)
    return found


async def serious(page: Page) -> list[str]:
    """The serious and critical violations, one readable line per element."""
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {n['target']}: {n['summary']}"
        for v in await violations(page)
        if v["impact"] in FAILING
        for n in v["nodes"]
    ]
