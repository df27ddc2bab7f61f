"""The sidebar panel in a real browser: headless Chromium against the end-to-end run's hass.

`check_panel(stack)` adds a show of five episodes and a movie to the emulator, syncs, removes
them (a whole folder's worth of episodes and one movie folder), syncs again, and then, as a user
would in Chromium (logged in with the onboarding token): opens the panel from the sidebar; finds
the missing banner; finds the removed show's folder on "Where did it go" and, selecting it, exactly
its episodes; filters the items to MISSING and searches, getting exactly the removed titles; opens
the movie's item view (its Plex path and its ACTIVE → MISSING history; Escape closes it); exports
that filter as CSV through a real download; and fails on any browser console error from
Retrovue's module or endpoints.

`python -m tests.e2e.panel` runs only this check, on a fresh stack.

Everything in the page is found through shadow roots (`browser.DEEP_QUERY_JS`) and the panel's
`data-testid` hooks.
"""

from __future__ import annotations

import asyncio
import csv
import io
from pathlib import Path
import sys
import time
from typing import TYPE_CHECKING, Any

from .browser import WebDriver, chromium, login
from .common import E2EError, _log, _sensor

if TYPE_CHECKING:
    from .run import Stack

PREFIX = "Panel Check"
EPISODES = 5
SYNC_WAIT = 60.0
# Seconds the page may take for each step (Home Assistant's frontend loads in a few).
STEP = 30.0

# The panel and its shadow root, or a falsy return when the panel is not there (yet).
_PANEL = """
const panel = deepQuery('retrovue-panel');
if (!panel || !panel.shadowRoot) return null;
const root = panel.shadowRoot;
"""

# The Items tab once its answer is shown: the range, an error if any, and the rows.
_ITEMS = (
    _PANEL
    + """
const body = root.querySelector('#panel-items [aria-busy]');
const range = root.querySelector('[data-testid=range]');
if (!body || body.getAttribute('aria-busy') !== 'false' || !range) return null;
const error = root.querySelector('#panel-items .error:not([hidden])');
return {
  range: range.textContent,
  error: error ? error.textContent : null,
  rows: [...root.querySelectorAll('[data-testid=item-row]')].map((row) => ({
    id: row.dataset.itemId,
    rating_key: row.dataset.ratingKey,
    state: row.dataset.state,
    title: row.querySelector('[data-testid=item-title]').textContent,
    plex_path: row.querySelector('[data-testid=plex-path]').textContent,
  })),
};
"""
)

# What the page knows of its panels, for a failure's message.
_SIDEBAR = """
const ha = document.querySelector('home-assistant');
return {
  url: location.href,
  panels: ha && ha.hass && ha.hass.panels ? Object.keys(ha.hass.panels) : null,
  links: deepQueryAll('a[href]').map((a) => a.getAttribute('href')).slice(0, 40),
};
"""

# Console messages that come from Retrovue: its module, its websocket-driven page, its export.
_OURS = ("retrovue_static", "retrovue-panel", "/api/retrovue")


class PanelCheck:
    """What `check_panel` made in the emulator and what the panel must show of it."""

    def __init__(self, stack: Stack) -> None:
        """Nothing made yet; `prepare` makes and removes it."""
        self.stack = stack
        self.show_rk = 0
        self.season_rk = 0
        self.show_folder = ""
        self.movie_rk = 0
        self.movie_title = f"{PREFIX} Movie"
        self.movie_path = ""
        self.episodes: dict[str, str] = {}  # ratingKey → title
        self.removed: dict[str, str] = {}  # every removed ratingKey → title (show, season too)

    async def _sync(self) -> None:
        stack = self.stack
        answer = await stack.api.post(
            "/api/services/retrovue/sync_library?return_response",
            {"config_entry_id": stack.entry_id},
        )
        bad = [s for s in answer["service_response"]["libraries"] if s["status"] != "ok"]
        if bad:
            raise E2EError(f"sync_library failed: {bad}")

    async def _missing(self) -> tuple[int, int]:
        states = await self.stack.api.states()
        movies, shows = _sensor(states, "Movies missing"), _sensor(states, "TV Shows missing")
        if movies is None or shows is None:
            raise E2EError("the missing sensors are not there")
        return int(movies["state"]), int(shows["state"])

    async def prepare(self) -> None:
        """Add a show and a movie, sync, remove both, sync, wait for the missing sensors."""
        server = self.stack.plex_server
        show = server.add_show("2", f"{PREFIX} Show", 2021)
        season = server.add_season(show.rating_key, 1)
        episodes = [
            server.add_episode(season.rating_key, n, f"{PREFIX} Episode {n}")
            for n in range(1, EPISODES + 1)
        ]
        movie = server.add_movie("1", self.movie_title, 2022)
        self.show_rk, self.season_rk = show.rating_key, season.rating_key
        self.movie_rk = movie.rating_key
        self.show_folder = show.path or ""
        self.movie_path = movie.media[0].parts[0].file
        self.episodes = {str(e.rating_key): e.title for e in episodes}
        self.removed = {
            str(show.rating_key): show.title,
            str(season.rating_key): season.title,
            **self.episodes,
            str(movie.rating_key): movie.title,
        }
        await self._sync()
        before = await self._missing()
        server.remove_item(show.rating_key)
        server.remove_item(movie.rating_key)
        await self._sync()
        deadline = time.monotonic() + SYNC_WAIT
        while (now := await self._missing()) != (before[0] + 1, before[1] + EPISODES):
            if time.monotonic() > deadline:
                raise E2EError(
                    f"missing sensors went from {before} to {now}, not +1 movie, "
                    f"+{EPISODES} episodes"
                )
            await asyncio.sleep(0.5)
        _log(
            f"panel: removed {self.show_folder} ({EPISODES} episodes) and {self.movie_path}; "
            f"missing sensors {before} → {now}"
        )


async def open_panel(driver: WebDriver, stack: Stack, *, from_sidebar: bool = True) -> None:
    """Log in and open the panel: from the sidebar's link (a user's first click) or its URL."""
    await login(driver, stack.base, stack.api.tokens)
    if from_sidebar:
        await driver.open(stack.base + "/")
        try:
            await driver.wait_js(
                "the sidebar's Retrovue entry",
                # The link may sit in a list item's shadow root, its label in the item's light DOM.
                "const link = deepQuery('a[href=\"/retrovue\"]');"
                "const host = link && link.getRootNode().host;"
                "const text = link ? link.textContent + (host ? host.textContent : '') : '';"
                "if (!text.includes('Retrovue')) return null;"
                "link.click(); return true;",
                limit=STEP * 2,
            )
        except E2EError as err:
            seen = await driver.run_deep(_SIDEBAR)
            raise E2EError(f"{err}; the page shows {seen}") from err
    else:
        await driver.open(stack.base + "/retrovue")
    await driver.wait_js(
        "the Retrovue panel to load its libraries",
        _PANEL + "return location.pathname === '/retrovue' && "
        "root.querySelectorAll('#library option').length > 1;",
        limit=STEP * 2,
    )


async def show_missing(driver: WebDriver) -> str:
    """Click the missing banner (the user's second click); return its text."""
    text: str = await driver.wait_js(
        "the missing banner",
        _PANEL + "const banner = root.querySelector('[data-testid=missing-banner]');"
        "if (!banner || banner.closest('[hidden]') || !banner.textContent.includes(' under ')) "
        "return null; banner.click(); return banner.textContent;",
        limit=STEP,
    )
    return text


async def _rows(driver: WebDriver, what: str, check: Any) -> dict[str, Any]:
    """Wait until the Items tab shows an answer that `check(answer)` accepts; return it."""
    deadline = time.monotonic() + STEP
    answer: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        answer = await driver.run_deep(_ITEMS)
        if answer and answer["error"]:
            raise E2EError(f"the panel shows an error for {what}: {answer['error']}")
        if answer and check(answer):
            return answer
        await asyncio.sleep(0.25)
    raise E2EError(f"the Items tab never showed {what}; last: {answer}")


async def _search(driver: WebDriver, text: str) -> None:
    """Type into the search field as a user does (input events; the panel debounces them)."""
    await driver.run_deep(
        _PANEL + "const input = root.querySelector('[data-testid=search]');"
        "input.focus(); input.value = arguments[0];"
        "input.dispatchEvent(new Event('input', {bubbles: true, composed: true}));",
        text,
    )


async def _pick_library(driver: WebDriver, value: str) -> None:
    """Choose in the library picker ("" is every library; "l:<id>" one, "s:<id>" a server's)."""
    await driver.run_deep(
        _PANEL + "const picker = root.querySelector('[data-testid=library-picker]');"
        "picker.value = arguments[0];"
        "picker.dispatchEvent(new Event('change', {bubbles: true, composed: true}));",
        value,
    )


async def _console_errors(driver: WebDriver, seen: list[dict[str, Any]]) -> list[str]:
    seen.extend(await driver.console())
    return [
        entry["message"]
        for entry in seen
        if entry.get("level") == "SEVERE" and any(mark in entry["message"] for mark in _OURS)
    ]


def _new_csvs(folder: Path, before: set[Path]) -> list[Path]:
    """Finished downloads (Chromium names a file .crdownload until it is complete)."""
    return sorted(
        path
        for path in folder.iterdir()
        if path not in before and path.suffix == ".csv" and path.stat().st_size > 0
    )


async def _download(folder: Path, before: set[Path]) -> str:
    deadline = time.monotonic() + STEP
    while time.monotonic() < deadline:
        if done := await asyncio.to_thread(_new_csvs, folder, before):
            return await asyncio.to_thread(done[0].read_text, encoding="utf-8")
        await asyncio.sleep(0.25)
    raise E2EError(f"no CSV was downloaded into {folder}")


async def check_panel(stack: Stack, *, width: int = 1280, height: int = 900) -> None:
    """Check the panel in headless Chromium (see the module's docstring); raise on failure."""
    check = PanelCheck(stack)
    await check.prepare()
    downloads = stack.config_dir.parent / "downloads"
    downloads.mkdir(exist_ok=True)
    console: list[dict[str, Any]] = []

    def passed(what: str) -> None:
        stack.passed.append(f"panel: {what}")
        _log(stack.passed[-1])

    async with chromium(width, height, download_dir=downloads) as driver:
        await open_panel(driver, stack, from_sidebar=True)
        passed("opened from the sidebar's Retrovue entry")

        banner = await show_missing(driver)
        answer = await _rows(
            driver,
            "missing items",
            lambda a: a["rows"] and {r["state"] for r in a["rows"]} == {"MISSING"},
        )
        passed(
            f"the missing banner ({banner.strip()!r}) lists only MISSING items ({answer['range']})"
        )

        # Where did it go (the banner's other button): the removed show's folder is a group;
        # selecting it lists its episodes.
        group: dict[str, Any] = await driver.wait_js(
            "the removed show's folder on Where did it go",
            _PANEL + "const tab = root.querySelector('[data-testid=tab-folders]');"
            "if (tab.getAttribute('aria-selected') !== 'true')"
            " root.querySelector('[data-testid=missing-banner-folders]').click();"
            "const groups = [...root.querySelectorAll('[data-testid=folder-group]')];"
            "const group = groups.find((g) => g.dataset.path === arguments[0]"
            " || g.dataset.path.startsWith(arguments[0] + '/'));"
            "return group ? {path: group.dataset.path, text: group.textContent} : null;",
            check.show_folder,
            limit=STEP,
        )
        if f"{EPISODES} files under" not in group["text"] or "TV Shows" not in group["text"]:
            raise E2EError(f"the folder group does not say {EPISODES} files in TV Shows: {group}")
        await driver.run_deep(
            _PANEL + "[...root.querySelectorAll('[data-testid=folder-group]')]"
            ".find((g) => g.dataset.path === arguments[0]).click();",
            group["path"],
        )
        # Its episodes, and at most their show and season (which have no file of their own).
        allowed = set(check.episodes) | {str(check.show_rk), str(check.season_rk)}
        answer = await _rows(
            driver,
            f"the episodes under {group['path']}",
            lambda a: set(check.episodes) <= {r["rating_key"] for r in a["rows"]} <= allowed,
        )
        if any(r["state"] != "MISSING" for r in answer["rows"]):
            raise E2EError(f"the group {group['path']} lists items not MISSING: {answer['rows']}")
        passed(f"Where did it go names {group['path']}; selecting it lists its {EPISODES} episodes")

        # Every library, MISSING and a search: exactly the removed titles.
        await _pick_library(driver, "")
        await show_missing(driver)
        await _search(driver, PREFIX)
        expected = {
            key: title
            for key, title in check.removed.items()
            if key in check.episodes or int(key) in (check.show_rk, check.movie_rk)
        }
        answer = await _rows(
            driver,
            f"the removed titles when searching {PREFIX!r}",
            lambda a: {r["rating_key"] for r in a["rows"]} == set(expected),
        )
        titles = sorted(r["title"] for r in answer["rows"])
        if titles != sorted(expected.values()):
            raise E2EError(f"rows {titles} are not the removed titles {sorted(expected.values())}")
        passed(f"MISSING + search {PREFIX!r} lists exactly the removed titles ({len(titles)})")

        # The item view of the removed movie.
        movie = next(r for r in answer["rows"] if r["rating_key"] == str(check.movie_rk))
        await driver.run_deep(
            _PANEL + 'root.querySelector(`[data-testid=item-row][data-item-id="${arguments[0]}"]'
            " [data-testid=item-title]`).click();",
            movie["id"],
        )
        dialog: dict[str, Any] = await driver.wait_js(
            "the item view",
            _PANEL + "const dialog = root.querySelector('[data-testid=item-dialog]');"
            "if (!dialog.open || dialog.getAttribute('aria-busy') === 'true') return null;"
            "const text = (sel) => [...dialog.querySelectorAll(sel)].map((e) => e.textContent);"
            "return {title: dialog.querySelector('h2').textContent, paths: text("
            "'[data-testid=dialog-plex-path]'), history: text('[data-testid=dialog-history] li'),"
            " error: text('.error'), plex: dialog.querySelector('[data-testid=open-in-plex]')?.href"
            " || null};",
            limit=STEP,
        )
        if dialog["error"]:
            raise E2EError(f"the item view shows an error: {dialog['error']}")
        if check.movie_path not in dialog["paths"]:
            raise E2EError(f"the item view lacks the Plex path {check.movie_path}: {dialog}")
        if not any("Active" in h and "Missing" in h for h in dialog["history"]):
            raise E2EError(f"the item view's history lacks ACTIVE → MISSING: {dialog['history']}")
        await driver.press("ESCAPE")
        await driver.wait_js(
            "Escape to close the item view",
            _PANEL + "return !root.querySelector('[data-testid=item-dialog]').open;",
            limit=5,
        )
        passed(
            f"the item view shows {check.movie_path}, its history ({len(dialog['history'])} "
            f"entries), Open in Plex {'→ ' + dialog['plex'] if dialog['plex'] else 'absent'}; "
            "Escape closes it"
        )

        # Export CSV of the same filter, downloaded by the browser.
        before = set(await asyncio.to_thread(_new_csvs, downloads, set()))
        await driver.run_deep(_PANEL + "root.querySelector('[data-testid=export]').click();")
        text = await _download(downloads, before)
        rows = list(csv.DictReader(io.StringIO(text)))
        if not rows or "title" not in rows[0] or "plex_path" not in rows[0]:
            raise E2EError(f"the CSV has no title/plex_path header: {text[:300]!r}")
        exported = sorted(row["title"] for row in rows)
        if exported != sorted(expected.values()):
            raise E2EError(f"the CSV lists {exported}, not {sorted(expected.values())}")
        if {row["state"] for row in rows} != {"MISSING"}:
            raise E2EError(f"the CSV has rows that are not MISSING: {rows}")
        passed(f"Export CSV downloads the filter: a header and the {len(rows)} removed titles")

        if errors := await _console_errors(driver, console):
            raise E2EError("browser console errors from Retrovue:\n" + "\n".join(errors))
        others = [e for e in console if e.get("level") == "SEVERE"]
        passed(f"no console error from Retrovue ({len(others)} other console errors)")
        for entry in others[:5]:
            _log(f"  (console, not Retrovue's: {entry['message'][:200]})")


def main() -> int:
    """Run only the panel's check on a fresh stack (`python -m tests.e2e.panel`)."""
    from .run import run_alone  # Here: run.py imports this module.

    return run_alone("panel", check_panel, seed=7, movies=40, shows=5)


if __name__ == "__main__":
    sys.exit(main())
