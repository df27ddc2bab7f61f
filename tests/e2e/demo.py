"""The demo as a newcomer sees it: no failed integration, a clean log, and the way in.

`check_demo(stack)` runs against the end-to-end run's Home Assistant, which is configured as
`scripts/develop` configures the demo (`scripts/dev_config.py`) and onboarded as a new user
would be (onboarding sets up its own integrations):

- no config entry failed to set up (a red "Failed to set up" card on the integrations page);
- Home Assistant's log holds no ERROR record at all (not only Retrovue's);
- in headless Chromium, the integrations page opens, and adding Retrovue offers signing in
  with Plex first and entering a URL and token one click away; choosing the latter shows the
  URL and token fields.

`python -m tests.e2e.demo` runs only this check, on a fresh stack.
"""

from __future__ import annotations

import json
from pathlib import Path
import re
import sys
from typing import TYPE_CHECKING, Any

from .browser import chromium, login
from .common import E2EError, _log

if TYPE_CHECKING:
    from .run import Stack

STEP = 60.0
STRINGS = Path(__file__).parents[2] / "custom_components" / "retrovue" / "strings.json"
# A config entry in these states shows as a red card on the integrations page.
FAILED_STATES = frozenset({"setup_error", "migration_error", "failed_unload"})
_ERROR_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ (ERROR|CRITICAL) ", re.MULTILINE)

# `dialogText()`: the config flow dialog's text, through every shadow root (null until shown).
_DIALOG_TEXT = """
const dialogText = () => {
  const dialog = deepQuery('dialog-data-entry-flow');
  if (!dialog) return null;
  const texts = [];
  const walk = (node) => {
    for (const el of node.childNodes) {
      if (el.nodeType === Node.TEXT_NODE) texts.push(el.textContent);
      if (el.shadowRoot) walk(el.shadowRoot);
      walk(el);
    }
  };
  walk(dialog.shadowRoot || dialog);
  return texts.join(' ').replace(/\\s+/g, ' ');
};
"""

# Click the menu option whose text holds arguments[0] (menu items live in shadow roots).
_CLICK_OPTION = """
const dialog = deepQuery('dialog-data-entry-flow');
if (!dialog) return null;
const items = deepQueryAll('ha-list-item, ha-md-list-item, mwc-list-item, ha-list-item-button',
  dialog.shadowRoot || dialog);
const item = items.find((el) => el.textContent.includes(arguments[0]));
if (!item) return null;
item.click();
return true;
"""

# The names of the form's fields once a form step shows (None until then).
_FIELDS = """
const dialog = deepQuery('dialog-data-entry-flow');
if (!dialog) return null;
const form = deepQuery('ha-form', dialog.shadowRoot || dialog);
if (!form || !form.schema) return null;
return form.schema.map((field) => field.name);
"""


def _menu_labels() -> tuple[str, str]:
    """Return the user step's labels for signing in and for the manual path."""
    strings = json.loads(STRINGS.read_text(encoding="utf-8"))
    options = strings["config"]["step"]["user"]["menu_options"]
    return options["sign_in"], options["manual"]


async def check_demo(stack: Stack) -> None:
    """Check what a newcomer to the demo sees (see the module's docstring); raise on failure."""

    def passed(what: str) -> None:
        stack.passed.append(f"demo: {what}")
        _log(stack.passed[-1])

    entries: list[dict[str, Any]] = await stack.api.get("/api/config/config_entries/entry")
    failed = [(e["domain"], e["state"]) for e in entries if e["state"] in FAILED_STATES]
    if failed:
        raise E2EError(f"integrations failed to set up (red cards): {failed}")
    passed(
        "no integration failed to set up ("
        + ", ".join(sorted(f"{e['domain']}: {e['state']}" for e in entries))
        + ")"
    )

    log = (stack.config_dir / "home-assistant.log").read_text(encoding="utf-8")
    errors = [
        log[match.start() : log.find("\n", match.end())] for match in _ERROR_RECORD.finditer(log)
    ]
    if errors:
        raise E2EError(f"Home Assistant logged errors: {errors[:5]}")
    passed("Home Assistant's log holds no error")

    sign_in, manual = _menu_labels()
    async with chromium(1280, 900) as driver:
        await login(driver, stack.base, stack.api.tokens)
        await driver.open(stack.base + "/config/integrations/dashboard")
        await driver.wait_js(
            "the integrations page",
            "return deepQuery('ha-config-integrations-dashboard') ? true : null;",
            limit=STEP,
        )
        await driver.open(stack.base + "/_my_redirect/config_flow_start?domain=retrovue")
        # Home Assistant first asks whether to set up the integration the link names.
        await driver.wait_js(
            "the question whether to add Retrovue",
            "if (deepQuery('dialog-data-entry-flow')) return true;"
            "const box = deepQuery('dialog-box');"
            "if (!box) return null;"
            "const buttons = deepQueryAll('mwc-button, ha-button, button', box.shadowRoot || box)"
            ".filter((b) => b.offsetParent !== null || b.getClientRects().length);"
            "const confirm = buttons[buttons.length - 1];"
            "if (!confirm) return null; confirm.click(); return true;",
            limit=STEP,
        )
        try:
            text: str = await driver.wait_js(
                "the add-integration dialog's choice",
                _DIALOG_TEXT + "const all = dialogText() || '';"
                "return all.includes(arguments[0]) && all.includes(arguments[1]) ? all : null;",
                sign_in,
                manual,
                limit=STEP,
            )
        except E2EError as err:
            seen = await driver.run_deep(
                _DIALOG_TEXT + "return {url: location.href, text: dialogText(), dialogs: "
                "deepQueryAll('*').map((el) => el.localName).filter((n) => n.includes('dialog'))};"
            )
            raise E2EError(f"{err}; the page shows {seen}") from err
        if text.find(sign_in) > text.find(manual):
            raise E2EError(f"signing in is not the first choice: {text[:300]}")
        passed(f"adding Retrovue offers {sign_in!r} first and {manual!r}")
        await driver.wait_js("the manual choice", _CLICK_OPTION, manual, limit=STEP)
        fields: list[str] = await driver.wait_js("the URL and token form", _FIELDS, limit=STEP)
        if not {"url", "token"} <= set(fields):
            raise E2EError(f"the manual step shows {fields}, not url and token")
        passed(f"the manual path asks for {', '.join(fields)}")


def main() -> int:
    """Run the demo check on a fresh stack."""
    from .run import run_alone  # Here: run.py imports this module.

    return run_alone("demo", check_demo, seed=5, movies=20, shows=3)


if __name__ == "__main__":
    sys.exit(main())
