"""Repairs: unmapped library folders (fixed by adding a mapping), and a library's lost share.

A library whose files resolve through no path mapping gets a fixable issue naming its Plex
folders; a library that lost many files in one run (a drive or share that dropped) gets one
that clears itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from types import MappingProxyType
from typing import Any, Final, Protocol

from homeassistant.components.repairs import RepairsFlow
from homeassistant.config_entries import ConfigEntry, ConfigSubentry
from homeassistant.core import HomeAssistant, callback
from homeassistant.data_entry_flow import FlowResult
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.selector import (
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
    TextSelectorConfig,
)
import voluptuous as vol

from .config_flow import (
    MappingCheck,
    format_folders,
    mapping_data,
    mapping_title,
    validate_path_mapping,
)
from .const import (
    CONF_LOCAL_PREFIX,
    CONF_PLEX_PREFIX,
    DOMAIN,
    LOGGER,
    REMOTE_ONLY_REPAIR_SHARE,
    SUBENTRY_PATH_MAPPING,
)
from .engine.paths import PathMapping
from .engine.policy import dropped_at_once, mapping_repair_due, uncovered_folders
from .engine.store.browse import MissingFolder
from .engine.store.reads import LibraryCounts

# One issue per (config entry, library): `<ISSUE_LIBRARY_NOT_MAPPED>_<entry id>_<section key>`.
ISSUE_LIBRARY_NOT_MAPPED: Final = "library_not_mapped"
# The server-wide issue older versions raised; removed wherever it is left.
ISSUE_MAPPING_WRONG: Final = "mapping_probably_wrong"
# One issue per (config entry, library) that lost many files in one run.
ISSUE_FILES_WENT_MISSING: Final = "files_went_missing"
# Folders a lost-share issue names.
_DROP_FOLDERS: Final = 10
# Issue data keys.
DATA_ENTRY_ID: Final = "entry_id"
DATA_SECTION_KEY: Final = "section_key"
DATA_FOLDERS: Final = "folders"

_LOCAL_SELECTOR: Final = TextSelector(TextSelectorConfig(autocomplete="off"))


class LibraryShare(Protocol):
    """How many of a library's files are REMOTE_ONLY, and where the library's files live."""

    @property
    def section_key(self) -> str:
        """Return the library's section key."""

    @property
    def title(self) -> str:
        """Return the library's title."""

    @property
    def locations(self) -> Sequence[str]:
        """Return the library's folders as Plex reports them."""

    @property
    def remote_only(self) -> int:
        """Return how many of its movies and episodes are REMOTE_ONLY."""

    @property
    def playable(self) -> int:
        """Return how many of its present movies and episodes have a file."""


def issue_id(entry_id: str, section_key: str) -> str:
    """Return the id of the repair issue of one library of one config entry."""
    return f"{ISSUE_LIBRARY_NOT_MAPPED}_{entry_id}_{section_key}"


@callback
def async_check_mappings(
    hass: HomeAssistant,
    entry: ConfigEntry,
    libraries: Iterable[LibraryShare],
    mappings: Sequence[PathMapping],
) -> None:
    """Raise a fixable repair for each library most of whose files resolve nowhere.

    `libraries` are the entry's synced libraries, `mappings` its path mappings. A library is
    due when more than REMOTE_ONLY_REPAIR_SHARE of its files are REMOTE_ONLY
    (`policy.mapping_repair_due`); its issue names the Plex folders no mapping covers whole
    (`policy.uncovered_folders`; all its folders when each has a mapping). The issues of
    libraries no longer due or no longer listed are deleted, and so is the server-wide issue
    older versions raised.
    """
    ir.async_delete_issue(hass, DOMAIN, f"{ISSUE_MAPPING_WRONG}_{entry.entry_id}")
    raised: set[str] = set()
    for library in libraries:
        if not mapping_repair_due(
            remote_only=library.remote_only,
            playable=library.playable,
            share=REMOTE_ONLY_REPAIR_SHARE,
        ):
            continue
        folders = uncovered_folders(library.locations, mappings) or list(library.locations)
        issue = issue_id(entry.entry_id, library.section_key)
        LOGGER.debug(
            "%s / %s: %d of %d files resolve through no path mapping; unmapped folders: %s",
            entry.title,
            library.title,
            library.remote_only,
            library.playable,
            folders,
        )
        ir.async_create_issue(
            hass,
            DOMAIN,
            issue,
            is_fixable=True,
            severity=ir.IssueSeverity.WARNING,
            translation_key=ISSUE_LIBRARY_NOT_MAPPED,
            translation_placeholders={
                "server": entry.title,
                "library": library.title,
                "remote_only": str(library.remote_only),
                "total": str(library.playable),
                "folders": format_folders(folders),
            },
            data={
                DATA_ENTRY_ID: entry.entry_id,
                DATA_SECTION_KEY: library.section_key,
                DATA_FOLDERS: "\n".join(folders),
            },
        )
        raised.add(issue)
    _async_delete_issues(hass, entry.entry_id, keep=raised)


@callback
def async_delete_entry_issues(hass: HomeAssistant, entry_id: str) -> None:
    """Delete every repair of a config entry (when the entry is removed)."""
    ir.async_delete_issue(hass, DOMAIN, f"{ISSUE_MAPPING_WRONG}_{entry_id}")
    _async_delete_issues(hass, entry_id, keep=set())
    lost = f"{ISSUE_FILES_WENT_MISSING}_{entry_id}_"
    for domain, issue in list(ir.async_get(hass).issues):
        if domain == DOMAIN and issue.startswith(lost):
            ir.async_delete_issue(hass, DOMAIN, issue)


@callback
def _async_delete_issues(hass: HomeAssistant, entry_id: str, *, keep: set[str]) -> None:
    """Delete the entry's library issues but those in `keep`."""
    prefix = issue_id(entry_id, "")
    stale = [
        issue
        for domain, issue in ir.async_get(hass).issues
        if domain == DOMAIN and issue.startswith(prefix) and issue not in keep
    ]
    for issue in stale:
        ir.async_delete_issue(hass, DOMAIN, issue)


class LibraryMappingRepairFlow(RepairsFlow):
    """Add the path mapping a library lacks: its Plex folder and where Home Assistant sees it."""

    def __init__(self, entry_id: str, folders: list[str], placeholders: dict[str, str]) -> None:
        """Remember the entry, the library's unmapped folders and the issue's placeholders."""
        self._entry_id = entry_id
        self._folders = folders
        self._placeholders = placeholders

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> FlowResult:
        """Start with the mapping form (the flow's first input is the issue, not the form)."""
        return await self.async_step_map()

    async def async_step_map(self, user_input: dict[str, Any] | None = None) -> FlowResult:
        """Ask for the Plex folder and the local folder; add them as a path mapping."""
        entry = self.hass.config_entries.async_get_entry(self._entry_id)
        if entry is None:
            return self.async_abort(reason="entry_not_found")
        checked = MappingCheck()
        if user_input is not None:
            checked = validate_path_mapping(entry, user_input)
            if (mapping := checked.mapping) is not None:
                self._async_add_mapping(entry, mapping)
                return self.async_create_entry(data={})
        schema = vol.Schema(
            {
                vol.Required(CONF_PLEX_PREFIX): SelectSelector(
                    SelectSelectorConfig(
                        options=self._folders,
                        custom_value=True,
                        mode=SelectSelectorMode.DROPDOWN,
                    )
                ),
                vol.Required(CONF_LOCAL_PREFIX): _LOCAL_SELECTOR,
            }
        )
        suggested: dict[str, Any] = dict(user_input or {})
        if not suggested and self._folders:
            suggested = {CONF_PLEX_PREFIX: self._folders[0]}
        return self.async_show_form(
            step_id="map",
            data_schema=self.add_suggested_values_to_schema(schema, suggested),
            errors=checked.errors,
            description_placeholders={**self._placeholders, **checked.placeholders},
        )

    @callback
    def _async_add_mapping(self, entry: ConfigEntry, mapping: PathMapping) -> None:
        """Add the mapping as a subentry, as the path mapping flow does.

        A loaded entry's update listener reloads it on the change, and its next sync restates
        the library; an entry that is not loaded is reloaded here.
        """
        self.hass.config_entries.async_add_subentry(
            entry,
            ConfigSubentry(
                data=MappingProxyType(mapping_data(mapping)),
                subentry_type=SUBENTRY_PATH_MAPPING,
                title=mapping_title(mapping),
                unique_id=mapping.plex_prefix,
            ),
        )
        if not entry.update_listeners:
            self.hass.config_entries.async_schedule_reload(entry.entry_id)


async def async_create_fix_flow(
    hass: HomeAssistant, issue_id: str, data: dict[str, str | int | float | None] | None
) -> RepairsFlow:
    """Create the flow that fixes a library's mapping issue."""
    data = data or {}
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    placeholders = dict(issue.translation_placeholders or {}) if issue else {}
    folders = [folder for folder in str(data.get(DATA_FOLDERS) or "").split("\n") if folder]
    return LibraryMappingRepairFlow(str(data.get(DATA_ENTRY_ID) or ""), folders, placeholders)


@callback
def async_check_missing_drop(
    hass: HomeAssistant,
    entry: ConfigEntry,
    section_key: str,
    library: str,
    counts: LibraryCounts,
    folders: Sequence[MissingFolder],
) -> None:
    """Raise a repair when a run of a library marked a large share of it MISSING; clear it.

    `folders` are where the run's newly missing items were (empty when it marked none);
    `counts` the library's counts after the run. The issue stays while the library's MISSING
    items still look like a lost share, and clears once they came back or expired to DELETED.
    """
    issue = f"{ISSUE_FILES_WENT_MISSING}_{entry.entry_id}_{section_key}"
    present = counts.active + counts.remote_only + counts.unavailable
    gone = sum(folder.items for folder in folders)
    if dropped_at_once(gone, present):
        ir.async_create_issue(
            hass,
            DOMAIN,
            issue,
            is_fixable=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key=ISSUE_FILES_WENT_MISSING,
            translation_placeholders={
                "server": entry.title,
                "library": library,
                "count": str(gone),
                "total": str(gone + present),
                "folders": "\n".join(
                    f"- {folder.path} ({folder.items})" for folder in folders[:_DROP_FOLDERS]
                ),
            },
        )
    elif not dropped_at_once(counts.missing, present):
        ir.async_delete_issue(hass, DOMAIN, issue)
