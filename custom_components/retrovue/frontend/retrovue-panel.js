/*
 * Retrovue's sidebar panel: the catalog of every Plex server, what went missing and where it was,
 * and duplicates. A plain custom element (no framework, no build step, nothing fetched from
 * outside Home Assistant): Home Assistant sets `hass`, `narrow`, `route` and `panel` on it; every
 * read goes through `hass.callWS` (the `retrovue/*` websocket commands, admin only).
 *
 * Test hooks: data-testid on the tabs (tab-items, tab-folders, tab-duplicates), the state chips
 * (state-ACTIVE, state-MISSING, …), the rows (item-row, with data-item-id and data-rating-key),
 * the item dialog (item-dialog), the export button (export), the folder groups (folder-group,
 * with data-path) and the missing banner (missing-banner).
 */

const STATES = [
  { key: "ACTIVE", label: "Active", count: "active" },
  { key: "MISSING", label: "Missing", count: "missing" },
  { key: "DELETED", label: "Deleted", count: "deleted" },
  { key: "REMOTE_ONLY", label: "Remote only", count: "remote_only" },
  { key: "UNAVAILABLE", label: "Unavailable", count: "unavailable" },
];
const STATE_LABELS = Object.fromEntries(STATES.map((s) => [s.key, s.label]));

const KINDS = [
  ["", "Movies, shows and episodes"],
  ["movie", "Movies"],
  ["show", "Shows"],
  ["season", "Seasons"],
  ["episode", "Episodes"],
];

const SCOPES = [
  ["all", "All duplicates"],
  ["within", "Within a server"],
  ["across", "Across servers"],
];

const PAGE_SIZE = 100;
const DUPLICATE_PAGE_SIZE = 50;
const FOLDER_LIMIT = 200;
const SEARCH_DELAY_MS = 300;
// Sorts whose natural first look is "newest / biggest first".
const DESCENDING_FIRST = new Set(["since", "size", "added", "last_seen"]);

// Columns of the items table; `narrow` ones are hidden on small screens.
const COLUMNS = [
  { key: "title", label: "Title", sort: "title" },
  { key: "show", label: "Show / episode", sort: "show", narrow: true },
  { key: "year", label: "Year", sort: "year", narrow: true, numeric: true },
  { key: "state", label: "State", sort: "state" },
  { key: "since", label: "Since", sort: "since", narrow: true },
  { key: "size", label: "Size", sort: "size", numeric: true },
  { key: "video", label: "Resolution / codec", narrow: true },
  { key: "library", label: "Library", narrow: true },
  { key: "plex_path", label: "Plex path" },
  { key: "local_path", label: "Local path", narrow: true },
];

const STYLE = `
:host {
  display: flex;
  flex-direction: column;
  height: 100%;
  min-height: 100vh;
  box-sizing: border-box;
  background: var(--primary-background-color, #fafafa);
  color: var(--primary-text-color, #212121);
  font-family: var(--ha-font-family-body, var(--paper-font-body1_-_font-family, Roboto, Noto, sans-serif));
  font-size: 14px;
  -webkit-font-smoothing: antialiased;
}
* { box-sizing: border-box; }
.toolbar {
  display: flex;
  align-items: center;
  gap: 8px;
  height: var(--header-height, 56px);
  flex: none;
  padding: 0 12px;
  background: var(--app-header-background-color, var(--primary-color, #03a9f4));
  color: var(--app-header-text-color, var(--text-primary-color, #fff));
  border-bottom: var(--app-header-border-bottom, none);
}
.toolbar h1 { margin: 0 0 0 8px; font-size: 20px; font-weight: 400; flex: 1; white-space: nowrap; }
.toolbar button.icon {
  background: none; border: none; color: inherit; font: inherit; cursor: pointer;
  padding: 8px; border-radius: 50%; line-height: 0;
}
.toolbar button.icon:hover { background: rgba(255, 255, 255, 0.12); }
.toolbar svg { width: 24px; height: 24px; fill: currentColor; }
.bar {
  display: flex; flex-wrap: wrap; align-items: flex-end; gap: 8px 16px;
  padding: 8px 16px 0; flex: none;
  background: var(--card-background-color, #fff);
  border-bottom: 1px solid var(--divider-color, rgba(0, 0, 0, 0.12));
}
.field { display: flex; flex-direction: column; gap: 2px; font-size: 12px; color: var(--secondary-text-color, #727272); }
select, input {
  font: inherit; font-size: 14px; color: var(--primary-text-color, #212121);
  background: var(--input-fill-color, var(--secondary-background-color, #f5f5f5));
  border: 1px solid var(--divider-color, rgba(0, 0, 0, 0.12));
  border-radius: 4px; padding: 6px 8px; min-height: 36px;
}
select:focus, input:focus, button:focus-visible, tr:focus-visible {
  outline: 2px solid var(--primary-color, #03a9f4); outline-offset: 1px;
}
.picker select { min-width: 220px; max-width: 100%; }
[role="tablist"] { display: flex; gap: 4px; margin-left: auto; }
[role="tab"] {
  font: inherit; font-weight: 500; background: none; border: none; cursor: pointer;
  padding: 12px 16px; color: var(--secondary-text-color, #727272);
  border-bottom: 2px solid transparent; text-transform: uppercase; font-size: 13px; letter-spacing: 0.04em;
}
[role="tab"][aria-selected="true"] { color: var(--primary-color, #03a9f4); border-bottom-color: var(--primary-color, #03a9f4); }
main { flex: 1; overflow: auto; padding: 16px; }
[role="tabpanel"][hidden] { display: none; }
.card {
  background: var(--card-background-color, #fff);
  border-radius: var(--ha-card-border-radius, 12px);
  border: 1px solid var(--divider-color, rgba(0, 0, 0, 0.12));
  box-shadow: var(--ha-card-box-shadow, none);
}
.banner {
  display: flex; flex-wrap: wrap; align-items: stretch; gap: 8px; margin-bottom: 16px;
}
.banner button.main {
  flex: 1 1 320px; text-align: left; cursor: pointer; font: inherit; font-size: 16px;
  padding: 14px 16px; border-radius: var(--ha-card-border-radius, 12px);
  border: 1px solid var(--error-color, #db4437);
  background: color-mix(in srgb, var(--error-color, #db4437) 12%, var(--card-background-color, #fff));
  color: var(--primary-text-color, #212121);
}
.banner button.main strong { color: var(--error-color, #db4437); }
.banner button.main .hint { display: block; font-size: 13px; color: var(--secondary-text-color, #727272); margin-top: 4px; }
.banner button.side { flex: none; }
button.btn {
  font: inherit; font-weight: 500; cursor: pointer; border-radius: 4px; min-height: 36px;
  padding: 6px 14px; border: 1px solid var(--divider-color, rgba(0, 0, 0, 0.12));
  background: var(--card-background-color, #fff); color: var(--primary-color, #03a9f4);
}
button.btn:disabled { cursor: default; opacity: 0.5; }
button.btn.primary { background: var(--primary-color, #03a9f4); color: var(--text-primary-color, #fff); border-color: transparent; }
.filters { display: flex; flex-wrap: wrap; align-items: flex-end; gap: 8px 12px; margin-bottom: 12px; }
.chips { display: flex; flex-wrap: wrap; gap: 6px; border: none; margin: 0; padding: 0; }
.chips legend { font-size: 12px; color: var(--secondary-text-color, #727272); padding: 0; margin-bottom: 2px; }
.chip {
  font: inherit; cursor: pointer; border-radius: 16px; padding: 4px 12px; min-height: 32px;
  border: 1px solid var(--divider-color, rgba(0, 0, 0, 0.12));
  background: var(--card-background-color, #fff); color: var(--primary-text-color, #212121);
}
.chip[aria-pressed="true"] {
  background: color-mix(in srgb, var(--chip-color) 18%, var(--card-background-color, #fff));
  border-color: var(--chip-color); font-weight: 500;
}
.chip .count { color: var(--secondary-text-color, #727272); margin-left: 4px; }
.search input { width: 240px; max-width: 100%; }
.year input { width: 90px; }
.status { display: flex; align-items: center; gap: 12px; min-height: 32px; margin: 4px 0 8px; color: var(--secondary-text-color, #727272); }
.status .grow { flex: 1; }
.error {
  color: var(--error-color, #db4437); padding: 8px 12px; border-radius: 4px; margin: 8px 0;
  border: 1px solid var(--error-color, #db4437);
  background: color-mix(in srgb, var(--error-color, #db4437) 8%, transparent);
}
.muted { color: var(--secondary-text-color, #727272); }
.table-wrap { overflow-x: auto; }
table { width: 100%; border-collapse: collapse; }
.busy table, .busy .groups { opacity: 0.55; }
th, td { text-align: left; padding: 8px 10px; border-bottom: 1px solid var(--divider-color, rgba(0, 0, 0, 0.12)); vertical-align: top; }
th { font-weight: 500; color: var(--secondary-text-color, #727272); white-space: nowrap; font-size: 13px; }
th button {
  font: inherit; color: inherit; background: none; border: none; padding: 0; cursor: pointer;
  display: inline-flex; align-items: center; gap: 4px;
}
th[aria-sort="ascending"] button::after { content: "▲"; font-size: 10px; }
th[aria-sort="descending"] button::after { content: "▼"; font-size: 10px; }
th[aria-sort="ascending"], th[aria-sort="descending"] { color: var(--primary-text-color, #212121); }
.numeric { text-align: right; white-space: nowrap; }
tbody tr.row { cursor: pointer; }
tbody tr.row:hover { background: var(--table-row-alternative-background-color, rgba(127, 127, 127, 0.08)); }
td.title { min-width: 140px; }
td.title button {
  font: inherit; color: var(--primary-text-color, #212121); background: none; border: none; padding: 0;
  text-align: left; cursor: pointer; font-weight: 500;
}
td.path { font-family: var(--code-font-family, monospace); font-size: 12px; overflow-wrap: anywhere; min-width: 180px; }
td.nowrap { white-space: nowrap; }
.sub { display: none; font-size: 12px; color: var(--secondary-text-color, #727272); }
.badge {
  display: inline-block; border-radius: 10px; padding: 1px 8px; font-size: 12px; font-weight: 500; white-space: nowrap;
  color: var(--badge-color);
  background: color-mix(in srgb, var(--badge-color) 16%, transparent);
  border: 1px solid color-mix(in srgb, var(--badge-color) 50%, transparent);
}
.s-ACTIVE { --badge-color: var(--success-color, #43a047); --chip-color: var(--success-color, #43a047); }
.s-MISSING { --badge-color: var(--error-color, #db4437); --chip-color: var(--error-color, #db4437); }
.s-DELETED { --badge-color: var(--secondary-text-color, #727272); --chip-color: var(--secondary-text-color, #727272); }
.s-REMOTE_ONLY { --badge-color: var(--info-color, #039be5); --chip-color: var(--info-color, #039be5); }
.s-UNAVAILABLE { --badge-color: var(--warning-color, #ffa600); --chip-color: var(--warning-color, #ffa600); }
.pager { display: flex; align-items: center; justify-content: flex-end; gap: 8px; margin-top: 12px; }
.groups { list-style: none; margin: 0; padding: 0; display: flex; flex-direction: column; gap: 12px; }
.group-button {
  display: block; width: 100%; text-align: left; font: inherit; cursor: pointer; padding: 14px 16px;
  color: var(--primary-text-color, #212121); background: var(--card-background-color, #fff);
  border: 1px solid var(--divider-color, rgba(0, 0, 0, 0.12)); border-radius: var(--ha-card-border-radius, 12px);
}
.group-button:hover { border-color: var(--primary-color, #03a9f4); }
.group-button .headline { font-size: 16px; }
.group-button .path, code { font-family: var(--code-font-family, monospace); overflow-wrap: anywhere; }
.group-button .meta, .group-button .samples { display: block; margin-top: 4px; font-size: 13px; color: var(--secondary-text-color, #727272); }
.dup { padding: 12px 16px; }
.dup h3 { margin: 0 0 8px; font-size: 16px; font-weight: 500; }
.dup .ids { font-size: 12px; color: var(--secondary-text-color, #727272); font-family: var(--code-font-family, monospace); word-break: break-all; }
.empty { padding: 24px; text-align: center; color: var(--secondary-text-color, #727272); }
.note { font-size: 13px; color: var(--secondary-text-color, #727272); margin: 0 0 12px; }
dialog {
  width: min(900px, calc(100vw - 32px)); max-height: calc(100vh - 32px); padding: 0;
  border: none; border-radius: var(--ha-dialog-border-radius, 24px);
  background: var(--card-background-color, #fff); color: var(--primary-text-color, #212121);
  box-shadow: 0 8px 32px rgba(0, 0, 0, 0.35);
}
dialog::backdrop { background: var(--dialog-backdrop-color, rgba(0, 0, 0, 0.32)); }
dialog header { display: flex; align-items: flex-start; gap: 8px; padding: 20px 24px 8px; position: sticky; top: 0; background: inherit; border-bottom: 1px solid var(--divider-color, rgba(0, 0, 0, 0.12)); }
dialog header h2 { margin: 0; font-size: 22px; font-weight: 400; flex: 1; }
dialog header .subtitle { display: block; font-size: 14px; color: var(--secondary-text-color, #727272); margin-top: 4px; }
dialog .body { padding: 8px 24px 24px; }
dialog h3 { font-size: 15px; font-weight: 500; margin: 20px 0 8px; }
dialog dl { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0; }
dialog dt { color: var(--secondary-text-color, #727272); }
dialog dd { margin: 0; overflow-wrap: anywhere; }
dialog ul { margin: 0; padding-left: 20px; }
dialog .part { border: 1px solid var(--divider-color, rgba(0, 0, 0, 0.12)); border-radius: 8px; padding: 8px 12px; margin-bottom: 8px; }
dialog a { color: var(--primary-color, #03a9f4); }
.close {
  font: inherit; font-size: 22px; line-height: 1; background: none; border: none; cursor: pointer;
  color: var(--secondary-text-color, #727272); padding: 4px 8px; border-radius: 50%;
}
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
.narrow .hide-narrow { display: none; }
.narrow .sub { display: block; }
.narrow main { padding: 8px; }
.narrow [role="tablist"] { margin-left: 0; width: 100%; }
.narrow [role="tab"] { flex: 1; padding: 10px 4px; }
.narrow .picker, .narrow .picker select { width: 100%; }
.narrow .banner button.side { flex: 1 1 100%; }
@media (max-width: 600px) {
  .hide-narrow { display: none; }
  .sub { display: block; }
}
`;

const ICON_MENU = "M3,6H21V8H3V6M3,11H21V13H3V11M3,16H21V18H3V16Z";
const ICON_REFRESH =
  "M17.65,6.35C16.2,4.9 14.21,4 12,4A8,8 0 0,0 4,12A8,8 0 0,0 12,20C15.73,20 18.84,17.45 19.73,14H17.65C16.83,16.33 14.61,18 12,18A6,6 0 0,1 6,12A6,6 0 0,1 12,6C13.66,6 15.14,6.69 16.22,7.78L13,11H20V4L17.65,6.35Z";

/** Create an element: attributes (`on*` are listeners, `.x` properties), then children. */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name.startsWith(".")) {
      el[name.slice(1)] = value;
    } else if (name === "class") {
      el.className = value;
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

function svgIcon(path) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  const p = document.createElementNS(ns, "path");
  p.setAttribute("d", path);
  svg.append(p);
  return svg;
}

/** The message of whatever `callWS` rejected with (an {code, message} object or an Error). */
function errorText(err) {
  if (!err) return "Unknown error";
  if (typeof err === "string") return err;
  const message = err.message || err.error?.message;
  const code = err.code || err.error?.code;
  if (message && code && !String(message).includes(code)) return `${message} (${code})`;
  return String(message || code || err);
}

function pad2(n) {
  return String(n).padStart(2, "0");
}

/** "S01E02", "S01" or "" from an item's season and episode numbers. */
function episodeCode(item) {
  if (item.season === null || item.season === undefined) return "";
  const season = `S${pad2(item.season)}`;
  return item.episode === null || item.episode === undefined ? season : `${season}E${pad2(item.episode)}`;
}

function compactObject(obj) {
  return Object.fromEntries(
    Object.entries(obj).filter(([, v]) => v !== undefined && v !== null && v !== "" && !(Array.isArray(v) && !v.length)),
  );
}

// Events after which the catalog changed: the panel reads it again.
const FOLLOWED_EVENTS = ["retrovue_library_synced", "retrovue_items_changed", "retrovue_items_missing"];

class RetrovuePanel extends HTMLElement {
  constructor() {
    super();
    this.attachShadow({ mode: "open" });
    this._hass = null;
    this._narrow = false;
    this._panel = null;
    this._route = null;
    this._built = false;
    this._started = false;
    this._tab = "items";
    this._scope = ""; // "" all libraries, "s:<machine_identifier>", "l:<library id>"
    this._libraries = [];
    this._librariesError = "";
    this._filter = { states: new Set(), kind: "", search: "", year: "", sort: "title", descending: false, offset: 0 };
    this._items = null;
    this._itemsErrorText = "";
    this._itemsLoading = false;
    this._folders = null;
    this._foldersError = "";
    this._foldersLoading = false;
    this._dupScope = "all";
    this._dupKind = "";
    this._dupOffset = 0;
    this._duplicates = null;
    this._duplicatesError = "";
    this._duplicatesLoading = false;
    this._exportError = "";
    this._exporting = false;
    // One counter per kind of request: an answer is used only if no newer request was sent.
    this._seq = { libraries: 0, items: 0, folders: 0, duplicates: 0, item: 0 };
    this._searchTimer = undefined;
    this._formats = null;
    this._returnFocus = null;
  }

  // ------------------------------------------------------------ properties set by Home Assistant

  set hass(hass) {
    // Home Assistant sets `hass` on every state change: only a new language or time zone
    // setting needs new formats, and nothing is reloaded.
    const old = this._hass;
    if (
      !old ||
      old.language !== hass?.language ||
      old.locale?.language !== hass?.locale?.language ||
      old.locale?.time_zone !== hass?.locale?.time_zone
    ) {
      this._formats = null;
    }
    this._hass = hass;
    if (this._menuButton && "hass" in this._menuButton) this._menuButton.hass = hass;
    if (this.isConnected && this._built && !this._started) this._start();
  }

  get hass() {
    return this._hass;
  }

  set narrow(narrow) {
    const value = Boolean(narrow);
    if (value === this._narrow) return;
    this._narrow = value;
    if (this._built) {
      this._root.classList.toggle("narrow", value);
      this._renderMenuButton();
    }
  }

  get narrow() {
    return this._narrow;
  }

  set panel(panel) {
    this._panel = panel;
    if (this._built) this._renderVersion();
  }

  get panel() {
    return this._panel;
  }

  set route(route) {
    this._route = route;
  }

  get route() {
    return this._route;
  }

  connectedCallback() {
    if (!this._built) this._build();
    if (this._hass && !this._started) this._start();
    else if (this._started) {
      this._follow();
      this._refresh();
    }
  }

  disconnectedCallback() {
    clearTimeout(this._searchTimer);
    clearTimeout(this._followTimer);
    this._unfollow();
  }

  /** Read again (at most every 2 s) when a sync or a live update changed the catalog. */
  _follow() {
    const connection = this._hass?.connection;
    if (this._unsubs || !connection?.subscribeEvents) return;
    const later = () => {
      clearTimeout(this._followTimer);
      this._followTimer = setTimeout(() => this._refresh(), 2000);
    };
    this._unsubs = FOLLOWED_EVENTS.map((type) => connection.subscribeEvents(later, type).catch(() => undefined));
  }

  _unfollow() {
    const unsubs = this._unsubs;
    this._unsubs = undefined;
    for (const pending of unsubs || []) pending.then((unsub) => unsub && unsub()).catch(() => undefined);
  }

  // -------------------------------------------------------------------------------- formatting

  _fmt() {
    if (this._formats) return this._formats;
    const hass = this._hass || {};
    const lang = hass.locale?.language || hass.language || undefined;
    let timeZone;
    if (hass.locale?.time_zone === "server" && hass.config?.time_zone) timeZone = hass.config.time_zone;
    const make = (Ctor, options) => {
      try {
        return new Ctor(lang, { ...options, ...(timeZone && Ctor === Intl.DateTimeFormat ? { timeZone } : {}) });
      } catch (_err) {
        return new Ctor(undefined, options);
      }
    };
    this._formats = {
      number: make(Intl.NumberFormat, {}),
      decimal: make(Intl.NumberFormat, { maximumFractionDigits: 1 }),
      dateTime: make(Intl.DateTimeFormat, { dateStyle: "medium", timeStyle: "short" }),
      date: make(Intl.DateTimeFormat, { dateStyle: "medium" }),
      day: make(Intl.DateTimeFormat, { day: "numeric", month: "short" }),
    };
    return this._formats;
  }

  _num(value) {
    return value === null || value === undefined ? "" : this._fmt().number.format(value);
  }

  _time(epoch) {
    return epoch === null || epoch === undefined ? "—" : this._fmt().dateTime.format(new Date(epoch * 1000));
  }

  _date(epoch) {
    return epoch === null || epoch === undefined ? "—" : this._fmt().date.format(new Date(epoch * 1000));
  }

  /** "3 Dec" this year, "3 Dec 2024" before. */
  _day(epoch) {
    const date = new Date(epoch * 1000);
    return date.getFullYear() === new Date().getFullYear() ? this._fmt().day.format(date) : this._fmt().date.format(date);
  }

  _size(bytes) {
    if (bytes === null || bytes === undefined) return "";
    const f = this._fmt().decimal;
    if (bytes >= 1e12) return `${f.format(bytes / 1e12)} TB`;
    if (bytes >= 1e9) return `${f.format(bytes / 1e9)} GB`;
    if (bytes >= 1e6) return `${f.format(bytes / 1e6)} MB`;
    if (bytes >= 1e3) return `${f.format(bytes / 1e3)} kB`;
    return `${this._num(bytes)} B`;
  }

  _duration(ms) {
    if (!ms) return "";
    const minutes = Math.round(ms / 60000);
    return minutes >= 60 ? `${Math.floor(minutes / 60)} h ${pad2(minutes % 60)} min` : `${minutes} min`;
  }

  _plural(count, one, many) {
    return `${this._num(count)} ${count === 1 ? one : many}`;
  }

  // ---------------------------------------------------------------------------------- skeleton

  _build() {
    this._built = true;
    const root = this.shadowRoot;
    root.append(h("style", {}, STYLE));
    this._root = h("div", { class: this._narrow ? "narrow" : "", style: "display:contents" });
    root.append(this._root);

    this._menuSlot = h("span", { style: "display:contents" });
    this._titleEl = h("h1", {}, "Retrovue");
    const toolbar = h(
      "div",
      { class: "toolbar" },
      this._menuSlot,
      this._titleEl,
      h(
        "button",
        { class: "icon", type: "button", title: "Refresh", "aria-label": "Refresh", "data-testid": "refresh", onclick: () => this._refresh() },
        svgIcon(ICON_REFRESH),
      ),
    );

    this._picker = h("select", { id: "library", "data-testid": "library-picker", onchange: () => this._onScope() });
    const tabs = [
      ["items", "Items"],
      ["folders", "Where did it go"],
      ["duplicates", "Duplicates"],
    ];
    this._tabButtons = {};
    const tablist = h(
      "div",
      { role: "tablist", "aria-label": "Views" },
      tabs.map(([key, label]) => {
        const button = h(
          "button",
          {
            type: "button",
            role: "tab",
            id: `tab-${key}`,
            "aria-controls": `panel-${key}`,
            "data-testid": `tab-${key}`,
            onclick: () => this._setTab(key),
            onkeydown: (ev) => this._tabKey(ev, key, tabs),
          },
          label,
        );
        this._tabButtons[key] = button;
        return button;
      }),
    );
    const bar = h(
      "div",
      { class: "bar" },
      h("label", { class: "field picker", for: "library" }, "Library", this._picker),
      tablist,
    );

    this._panels = {
      items: this._buildItems(),
      folders: this._buildFolders(),
      duplicates: this._buildDuplicates(),
    };
    const main = h(
      "main",
      {},
      Object.entries(this._panels).map(([key, panel]) => {
        panel.setAttribute("role", "tabpanel");
        panel.id = `panel-${key}`;
        panel.setAttribute("aria-labelledby", `tab-${key}`);
        return panel;
      }),
    );

    this._dialog = h("dialog", {
      "data-testid": "item-dialog",
      "aria-labelledby": "dialog-title",
      onclose: () => this._onDialogClosed(),
      onclick: (ev) => {
        // A click on the backdrop (outside the dialog's box) closes it.
        if (ev.target !== this._dialog) return;
        const box = this._dialog.getBoundingClientRect();
        const inside = ev.clientX >= box.left && ev.clientX <= box.right && ev.clientY >= box.top && ev.clientY <= box.bottom;
        if (!inside) this._dialog.close();
      },
    });
    this._root.append(toolbar, bar, main, this._dialog);
    this._renderMenuButton();
    this._renderVersion();
    this._renderTabs();
    this._renderPicker();
    this._renderChips();
    this._renderItems();
  }

  _buildItems() {
    this._banner = h("div", { class: "banner", hidden: true });
    this._chips = h("fieldset", { class: "chips" });
    this._kindSelect = h(
      "select",
      { id: "kind", "data-testid": "kind", onchange: () => this._setFilter({ kind: this._kindSelect.value }) },
      KINDS.map(([value, label]) => h("option", { value }, label)),
    );
    this._searchInput = h("input", {
      id: "search",
      type: "search",
      placeholder: "Title, show or path",
      autocomplete: "off",
      "data-testid": "search",
      oninput: () => this._onSearchInput(),
      onkeydown: (ev) => {
        if (ev.key === "Enter") this._applySearchNow();
      },
    });
    this._yearInput = h("input", {
      id: "year",
      type: "number",
      min: "1800",
      max: "3000",
      inputmode: "numeric",
      "data-testid": "year",
      oninput: () => this._onSearchInput(),
    });
    this._exportButton = h(
      "button",
      { type: "button", class: "btn", "data-testid": "export", onclick: () => this._export() },
      "Export CSV",
    );
    const filters = h(
      "div",
      { class: "filters" },
      this._chips,
      h("label", { class: "field", for: "kind" }, "Kind", this._kindSelect),
      h("label", { class: "field search", for: "search" }, "Search", this._searchInput),
      h("label", { class: "field year", for: "year" }, "Year", this._yearInput),
      this._exportButton,
    );
    this._itemsStatus = h("div", { class: "status", role: "status", "aria-live": "polite" });
    this._itemsErrorEl = h("div", { class: "error", role: "alert", hidden: true });
    this._itemsTable = h("div", { class: "table-wrap" });
    this._pager = h("div", { class: "pager" });
    this._itemsBody = h("div", { class: "card", style: "padding: 0 0 8px" }, this._itemsTable);
    return h("section", {}, this._banner, filters, this._itemsStatus, this._itemsErrorEl, this._itemsBody, this._pager);
  }

  _buildFolders() {
    this._foldersBody = h("div", {});
    return h(
      "section",
      { hidden: true },
      h(
        "p",
        { class: "note" },
        "Missing items grouped by the Plex folder that held them, biggest first. Select a group to list its items.",
      ),
      this._foldersBody,
    );
  }

  _buildDuplicates() {
    this._dupScopeSelect = h(
      "select",
      {
        id: "dup-scope",
        "data-testid": "duplicates-scope",
        onchange: () => {
          this._dupScope = this._dupScopeSelect.value;
          this._dupOffset = 0;
          this._loadDuplicates();
        },
      },
      SCOPES.map(([value, label]) => h("option", { value }, label)),
    );
    this._dupKindSelect = h(
      "select",
      {
        id: "dup-kind",
        onchange: () => {
          this._dupKind = this._dupKindSelect.value;
          this._dupOffset = 0;
          this._loadDuplicates();
        },
      },
      h("option", { value: "" }, "Movies and episodes"),
      h("option", { value: "movie" }, "Movies"),
      h("option", { value: "episode" }, "Episodes"),
      h("option", { value: "show" }, "Shows"),
    );
    this._dupBody = h("div", {});
    return h(
      "section",
      { hidden: true },
      h(
        "div",
        { class: "filters" },
        h("label", { class: "field", for: "dup-scope" }, "Scope", this._dupScopeSelect),
        h("label", { class: "field", for: "dup-kind" }, "Kind", this._dupKindSelect),
      ),
      h("p", { class: "note" }, "Titles held more than once, by the same GUID, on every server and library."),
      this._dupBody,
    );
  }

  _renderMenuButton() {
    if (!this._menuSlot) return;
    this._menuSlot.replaceChildren();
    this._menuButton = null;
    if (!this._narrow) return;
    if (customElements.get("ha-menu-button")) {
      const button = document.createElement("ha-menu-button");
      button.hass = this._hass;
      button.narrow = this._narrow;
      this._menuButton = button;
      this._menuSlot.append(button);
      return;
    }
    // Without Home Assistant's own button, ask its shell to open the sidebar as that button does.
    this._menuSlot.append(
      h(
        "button",
        {
          class: "icon",
          type: "button",
          "aria-label": "Open the sidebar",
          onclick: () => this.dispatchEvent(new CustomEvent("hass-toggle-menu", { bubbles: true, composed: true })),
        },
        svgIcon(ICON_MENU),
      ),
    );
  }

  _renderVersion() {
    // The panel's config carries the module's version (a content hash): a tooltip, not a label.
    const version = this._panel?.config?.version;
    if (this._titleEl) this._titleEl.title = version ? `Retrovue panel ${version}` : "";
  }

  _renderTabs() {
    for (const [key, button] of Object.entries(this._tabButtons)) {
      const selected = key === this._tab;
      button.setAttribute("aria-selected", String(selected));
      button.tabIndex = selected ? 0 : -1;
      this._panels[key].hidden = !selected;
    }
  }

  _tabKey(ev, key, tabs) {
    const keys = tabs.map(([k]) => k);
    let index = keys.indexOf(key);
    if (ev.key === "ArrowRight") index = (index + 1) % keys.length;
    else if (ev.key === "ArrowLeft") index = (index + keys.length - 1) % keys.length;
    else return;
    ev.preventDefault();
    this._setTab(keys[index]);
    this._tabButtons[keys[index]].focus();
  }

  // ------------------------------------------------------------------------------------ loading

  _start() {
    this._started = true;
    this._follow();
    this._loadLibraries();
    this._loadTab();
  }

  _refresh() {
    this._loadLibraries();
    this._loadTab();
  }

  _loadTab() {
    if (this._tab === "items") this._loadItems();
    else if (this._tab === "folders") this._loadFolders();
    else this._loadDuplicates();
  }

  /** Show a tab and load what it shows (unless the caller loads it right after). */
  _setTab(tab, load = true) {
    if (tab === this._tab) return;
    this._tab = tab;
    this._renderTabs();
    if (load) this._loadTab();
  }

  /**
   * Send one websocket command. `current` is false when a newer request of the same kind was sent
   * since: its answer (or error) is stale and must not overwrite what the newer one shows.
   */
  async _ws(kind, message) {
    const seq = ++this._seq[kind];
    try {
      const answer = await this._hass.callWS(compactObject(message));
      return { answer, current: seq === this._seq[kind] };
    } catch (error) {
      return { error: error ?? new Error("Unknown error"), current: seq === this._seq[kind] };
    }
  }

  /** Library ids of the picker's choice, or undefined for every library. */
  _libraryIds() {
    if (this._scope.startsWith("l:")) return [Number(this._scope.slice(2))];
    if (this._scope.startsWith("s:")) {
      const server = this._scope.slice(2);
      return this._libraries.filter((lib) => lib.machine_identifier === server).map((lib) => lib.id);
    }
    return undefined;
  }

  _scopedLibraries() {
    const ids = this._libraryIds();
    return ids ? this._libraries.filter((lib) => ids.includes(lib.id)) : this._libraries;
  }

  async _loadLibraries() {
    const result = await this._ws("libraries", { type: "retrovue/libraries" });
    if (!result.current) return;
    if (result.error) {
      this._librariesError = errorText(result.error);
      this._renderPicker();
      return;
    }
    this._librariesError = "";
    this._libraries = result.answer.libraries || [];
    // A library that is gone from the answer cannot stay picked.
    const ids = new Set(this._libraries.map((lib) => lib.id));
    const servers = new Set(this._libraries.map((lib) => lib.machine_identifier));
    if (
      (this._scope.startsWith("l:") && !ids.has(Number(this._scope.slice(2)))) ||
      (this._scope.startsWith("s:") && !servers.has(this._scope.slice(2)))
    ) {
      this._scope = "";
      this._loadTab();
    }
    this._renderPicker();
    this._renderChips();
    if (this._missingCount() > 0 && this._tab !== "folders") this._loadFolders();
    else this._renderBanner();
  }

  _itemsMessage() {
    const f = this._filter;
    return {
      type: "retrovue/items",
      library_ids: this._libraryIds(),
      states: f.states.size ? [...f.states] : undefined,
      kinds: f.kind ? [f.kind] : undefined,
      search: f.search.trim() || undefined,
      year: f.year ? Number(f.year) : undefined,
      sort: f.sort,
      descending: f.descending,
      offset: f.offset,
      limit: PAGE_SIZE,
    };
  }

  async _loadItems() {
    this._itemsLoading = true;
    this._renderItems();
    const result = await this._ws("items", this._itemsMessage());
    if (!result.current) return;
    this._itemsLoading = false;
    if (result.error) {
      this._itemsErrorText = errorText(result.error);
      this._renderItems();
      return;
    }
    this._itemsErrorText = "";
    this._items = result.answer;
    this._renderItems();
  }

  async _loadFolders() {
    this._foldersLoading = true;
    this._renderFolders();
    const result = await this._ws("folders", {
      type: "retrovue/missing_folders",
      library_ids: this._libraryIds(),
      limit: FOLDER_LIMIT,
    });
    if (!result.current) return;
    this._foldersLoading = false;
    if (result.error) {
      this._foldersError = errorText(result.error);
      this._renderFolders();
      this._renderBanner();
      return;
    }
    this._foldersError = "";
    this._folders = result.answer.folders || [];
    this._renderFolders();
    this._renderBanner();
  }

  async _loadDuplicates() {
    this._duplicatesLoading = true;
    this._renderDuplicates();
    const result = await this._ws("duplicates", {
      type: "retrovue/duplicates",
      scope: this._dupScope,
      kinds: this._dupKind ? [this._dupKind] : undefined,
      offset: this._dupOffset,
      limit: DUPLICATE_PAGE_SIZE,
    });
    if (!result.current) return;
    this._duplicatesLoading = false;
    if (result.error) {
      this._duplicatesError = errorText(result.error);
      this._renderDuplicates();
      return;
    }
    this._duplicatesError = "";
    this._duplicates = result.answer;
    this._renderDuplicates();
  }

  // ------------------------------------------------------------------------- filters and scope

  _onScope() {
    this._scope = this._picker.value;
    this._filter.offset = 0;
    this._dupOffset = 0;
    this._folders = null;
    this._renderChips();
    this._renderBanner();
    this._loadTab();
    if (this._tab !== "folders" && this._missingCount() > 0) this._loadFolders();
  }

  _setFilter(changes) {
    Object.assign(this._filter, { offset: 0 }, changes);
    this._syncInputs();
    this._renderChips();
    this._loadItems();
  }

  _syncInputs() {
    const f = this._filter;
    if (this._kindSelect.value !== f.kind) this._kindSelect.value = f.kind;
    if (this._searchInput.value !== f.search) this._searchInput.value = f.search;
    if (this._yearInput.value !== String(f.year)) this._yearInput.value = f.year;
    if (this._picker.value !== this._scope) this._picker.value = this._scope;
  }

  _onSearchInput() {
    clearTimeout(this._searchTimer);
    this._searchTimer = setTimeout(() => this._applySearchNow(), SEARCH_DELAY_MS);
  }

  _applySearchNow() {
    clearTimeout(this._searchTimer);
    const search = this._searchInput.value;
    const year = this._yearInput.value && this._yearInput.validity.valid ? this._yearInput.value : "";
    if (search === this._filter.search && year === this._filter.year) return;
    Object.assign(this._filter, { search, year, offset: 0 });
    this._loadItems();
  }

  _toggleState(key) {
    const states = new Set(this._filter.states);
    if (states.has(key)) states.delete(key);
    else states.add(key);
    this._setFilter({ states });
  }

  _sortBy(sort) {
    const f = this._filter;
    const descending = f.sort === sort ? !f.descending : DESCENDING_FIRST.has(sort);
    this._setFilter({ sort, descending });
  }

  _page(delta) {
    this._filter.offset = Math.max(0, this._filter.offset + delta * PAGE_SIZE);
    this._loadItems();
  }

  /** The Items tab with only missing items (in the picked libraries). */
  showMissing() {
    this._setTab("items", false);
    this._setFilter({ states: new Set(["MISSING"]), kind: "", search: "", year: "" });
  }

  /** The Items tab with the missing items of one folder group. */
  showFolder(folder) {
    const scope = folder.library_id !== undefined && folder.library_id !== null ? `l:${folder.library_id}` : this._scope;
    if (scope !== this._scope) {
      this._scope = scope;
      this._folders = null;
      this._renderPicker();
      this._renderBanner();
      this._loadFolders();
    }
    this._setTab("items", false);
    this._setFilter({ states: new Set(["MISSING"]), kind: "", search: folder.path, year: "" });
  }

  // ----------------------------------------------------------------------------------- export

  async _export() {
    const f = this._filter;
    const query = new URLSearchParams();
    const ids = this._libraryIds();
    if (ids) query.set("library_ids", ids.join(","));
    if (f.states.size) query.set("states", [...f.states].join(","));
    if (f.kind) query.set("kinds", f.kind);
    if (f.search.trim()) query.set("search", f.search.trim());
    if (f.year) query.set("year", f.year);
    query.set("sort", f.sort);
    query.set("descending", f.descending ? "1" : "0");
    this._exporting = true;
    this._exportError = "";
    this._renderItemsStatus();
    try {
      const { path } = await this._hass.callWS({ type: "auth/sign_path", path: `/api/retrovue/export.csv?${query}` });
      const link = h("a", { href: path, download: "", style: "display:none" });
      this.shadowRoot.append(link);
      link.click();
      link.remove();
    } catch (err) {
      this._exportError = `Export failed: ${errorText(err)}`;
    } finally {
      this._exporting = false;
      this._renderItemsStatus();
    }
  }

  // ---------------------------------------------------------------------------------- rendering

  _libraryLabel(lib) {
    const c = lib.counts || {};
    const unit = lib.unit || (lib.type === "show" ? "episodes" : "movies");
    let label = `${lib.title} — ${this._num(c.active ?? 0)} ${unit}`;
    if (c.missing) label += `, ${this._num(c.missing)} missing`;
    return label;
  }

  _renderPicker() {
    const picker = this._picker;
    const servers = new Map();
    for (const lib of this._libraries) {
      if (!servers.has(lib.machine_identifier)) servers.set(lib.machine_identifier, { name: lib.server, libraries: [] });
      servers.get(lib.machine_identifier).libraries.push(lib);
    }
    const total = this._libraries.reduce((sum, lib) => sum + (lib.counts?.missing || 0), 0);
    const options = [h("option", { value: "" }, total ? `All libraries — ${this._num(total)} missing` : "All libraries")];
    if (servers.size > 1) {
      for (const [machine, server] of servers) {
        options.push(
          h(
            "optgroup",
            { label: server.name || machine },
            h("option", { value: `s:${machine}` }, `All of ${server.name || machine}`),
            server.libraries.map((lib) => h("option", { value: `l:${lib.id}` }, this._libraryLabel(lib))),
          ),
        );
      }
    } else {
      for (const lib of this._libraries) options.push(h("option", { value: `l:${lib.id}` }, this._libraryLabel(lib)));
    }
    if (this._librariesError) options.push(h("option", { value: "", disabled: true }, `(libraries failed: ${this._librariesError})`));
    picker.replaceChildren(...options);
    picker.value = this._scope;
    if (picker.value !== this._scope) picker.value = "";
    picker.title = this._librariesError ? `Could not load the libraries: ${this._librariesError}` : "";
  }

  _stateCount(state) {
    const field = STATES.find((s) => s.key === state)?.count;
    return this._scopedLibraries().reduce((sum, lib) => sum + (lib.counts?.[field] || 0), 0);
  }

  _renderChips() {
    if (!this._chips) return;
    const haveCounts = this._libraries.length > 0;
    this._chips.replaceChildren(
      h("legend", {}, "State"),
      ...STATES.map((state) =>
        h(
          "button",
          {
            type: "button",
            class: `chip s-${state.key}`,
            "aria-pressed": String(this._filter.states.has(state.key)),
            "data-testid": `state-${state.key}`,
            onclick: () => this._toggleState(state.key),
          },
          state.label,
          haveCounts ? h("span", { class: "count" }, this._num(this._stateCount(state.key))) : null,
        ),
      ),
    );
  }

  _missingCount() {
    return this._scopedLibraries().reduce((sum, lib) => sum + (lib.counts?.missing || 0), 0);
  }

  _renderBanner() {
    const banner = this._banner;
    const libraries = this._scopedLibraries();
    const byUnit = new Map();
    for (const lib of libraries) {
      const missing = lib.counts?.missing || 0;
      if (!missing) continue;
      const unit = lib.unit || (lib.type === "show" ? "episodes" : "movies");
      byUnit.set(unit, (byUnit.get(unit) || 0) + missing);
    }
    if (!byUnit.size) {
      banner.hidden = true;
      banner.replaceChildren();
      return;
    }
    const singular = { movies: "movie", episodes: "episode" };
    const counts = [...byUnit].map(([unit, n]) => this._plural(n, singular[unit] || unit, unit));
    const what = counts.length > 1 ? `${counts.slice(0, -1).join(", ")} and ${counts.at(-1)}` : counts[0];
    const folders = this._folders || [];
    let where = "";
    if (folders.length) {
      where = ` — under ${folders[0].path}`;
      if (folders.length > 1) where += ` and ${this._plural(folders.length - 1, "more folder", "more folders")}`;
    }
    const since = folders.length ? Math.min(...folders.map((f) => f.since || Infinity)) : null;
    const hint =
      folders.length > 1
        ? `Select to list them. Biggest folders: ${folders
            .slice(0, 3)
            .map((f) => f.path)
            .join(", ")}${folders.length > 3 ? ", …" : ""}`
        : "Select to list them.";
    banner.replaceChildren(
      h(
        "button",
        {
          type: "button",
          class: "main",
          "data-testid": "missing-banner",
          onclick: () => this.showMissing(),
        },
        h("strong", {}, `${what} missing`),
        where,
        Number.isFinite(since) ? `, since ${this._day(since)}` : "",
        h("span", { class: "hint" }, hint),
      ),
      h(
        "button",
        { type: "button", class: "btn side", "data-testid": "missing-banner-folders", onclick: () => this._setTab("folders") },
        "Where did it go?",
      ),
    );
    banner.hidden = false;
  }

  _renderItemsStatus() {
    const status = this._itemsStatus;
    const parts = [];
    const data = this._items;
    if (this._itemsLoading) parts.push(h("span", {}, "Loading…"));
    else if (data) {
      const first = data.total ? data.offset + 1 : 0;
      const last = Math.min(data.offset + (data.items?.length || 0), data.total);
      parts.push(h("span", { "data-testid": "range" }, `${this._num(first)}–${this._num(last)} of ${this._num(data.total)}`));
    }
    parts.push(h("span", { class: "grow" }));
    if (this._exporting) parts.push(h("span", {}, "Preparing the export…"));
    status.replaceChildren(...parts);
    const error = this._itemsErrorText || this._exportError;
    this._itemsErrorEl.hidden = !error;
    this._itemsErrorEl.textContent = error || "";
    this._exportButton.disabled = this._exporting;
  }

  _renderItems() {
    if (!this._itemsTable) return;
    this._renderItemsStatus();
    this._itemsBody.classList.toggle("busy", this._itemsLoading);
    this._itemsBody.setAttribute("aria-busy", String(this._itemsLoading));
    const f = this._filter;
    const items = this._items?.items || [];
    // Without a path mapping no item has a local path: the column would stay empty.
    const columns = items.some((item) => item.local_path) ? COLUMNS : COLUMNS.filter((col) => col.key !== "local_path");
    const head = h(
      "tr",
      {},
      columns.map((col) => {
        const cls = [col.narrow ? "hide-narrow" : "", col.numeric ? "numeric" : ""].join(" ").trim();
        if (!col.sort) return h("th", { scope: "col", class: cls || null }, col.label);
        const sorted = f.sort === col.sort;
        return h(
          "th",
          {
            scope: "col",
            class: cls || null,
            "aria-sort": sorted ? (f.descending ? "descending" : "ascending") : "none",
            "data-sort": col.sort,
          },
          h("button", { type: "button", onclick: () => this._sortBy(col.sort) }, col.label),
        );
      }),
    );
    const withLocal = columns.length === COLUMNS.length;
    const rows = items.map((item) => this._itemRow(item, withLocal));
    if (!rows.length && this._items && !this._itemsLoading) {
      rows.push(h("tr", {}, h("td", { colspan: columns.length, class: "empty" }, "No items match these filters.")));
    }
    this._itemsTable.replaceChildren(
      h("table", {}, h("caption", { class: "visually-hidden" }, "Catalog items"), h("thead", {}, head), h("tbody", {}, rows)),
    );
    const total = this._items?.total || 0;
    this._pager.replaceChildren(
      h(
        "button",
        { type: "button", class: "btn", "data-testid": "prev", disabled: f.offset <= 0 || this._itemsLoading, onclick: () => this._page(-1) },
        "Previous",
      ),
      h(
        "button",
        {
          type: "button",
          class: "btn",
          "data-testid": "next",
          disabled: f.offset + PAGE_SIZE >= total || this._itemsLoading,
          onclick: () => this._page(1),
        },
        "Next",
      ),
    );
  }

  _showCell(item) {
    if (item.kind === "episode" || item.kind === "season") {
      const code = episodeCode(item);
      return [item.show || "", code ? ` · ${code}` : ""].join("");
    }
    return "";
  }

  _videoText(item) {
    const res = item.video_resolution ? (/^\d+$/.test(item.video_resolution) ? `${item.video_resolution}p` : item.video_resolution) : "";
    return [res, item.video_codec, item.container].filter(Boolean).join(" · ");
  }

  _itemRow(item, withLocal) {
    const open = () => this.openItem(item.id);
    const showText = this._showCell(item);
    const extra = (item.parts || 0) > 1 ? ` (+${this._num(item.parts - 1)} more)` : "";
    return h(
      "tr",
      {
        class: "row",
        "data-testid": "item-row",
        "data-item-id": item.id,
        "data-rating-key": item.rating_key,
        "data-state": item.state,
        onclick: (ev) => {
          if (ev.target.closest("button")) return;
          open();
        },
      },
      h(
        "td",
        { class: "title" },
        h("button", { type: "button", onclick: open, "data-testid": "item-title" }, item.title || "(untitled)"),
        item.kind !== "movie" && item.kind !== "episode" ? h("span", { class: "muted" }, ` (${item.kind})`) : null,
        showText ? h("span", { class: "sub" }, showText) : null,
      ),
      h("td", { class: "hide-narrow" }, showText),
      h("td", { class: "hide-narrow numeric" }, item.year ?? ""),
      h("td", {}, h("span", { class: `badge s-${item.state}` }, STATE_LABELS[item.state] || item.state)),
      h("td", { class: "hide-narrow nowrap", title: this._time(item.since) }, item.since ? this._day(item.since) : ""),
      h("td", { class: "numeric" }, this._size(item.size)),
      h("td", { class: "hide-narrow" }, this._videoText(item)),
      h("td", { class: "hide-narrow nowrap" }, item.library || "", this._servers() > 1 && item.server ? h("span", { class: "muted" }, ` · ${item.server}`) : null),
      h("td", { class: "path", "data-testid": "plex-path" }, item.plex_path || "", extra),
      withLocal ? h("td", { class: "hide-narrow path" }, item.local_path || "") : null,
    );
  }

  _servers() {
    return new Set(this._libraries.map((lib) => lib.machine_identifier)).size;
  }

  _renderFolders() {
    if (!this._foldersBody) return;
    const body = this._foldersBody;
    body.classList.toggle("busy", this._foldersLoading);
    body.setAttribute("aria-busy", String(this._foldersLoading));
    const content = [];
    if (this._foldersError) content.push(h("div", { class: "error", role: "alert" }, this._foldersError));
    if (this._foldersLoading && !this._folders) content.push(h("div", { class: "status" }, "Loading…"));
    const folders = this._folders || [];
    if (this._folders && !folders.length && !this._foldersLoading) {
      content.push(h("div", { class: "empty card" }, "Nothing is missing in these libraries."));
    }
    if (folders.length) {
      const many = this._servers() > 1;
      content.push(
        h(
          "ul",
          { class: "groups" },
          folders.map((folder) => {
            const count = folder.files || folder.items;
            const noun = folder.files ? ["file", "files"] : ["item", "items"];
            const when =
              folder.since && folder.until && this._day(folder.since) !== this._day(folder.until)
                ? `between ${this._day(folder.since)} and ${this._day(folder.until)}`
                : folder.since
                  ? `on ${this._day(folder.since)}`
                  : "";
            const meta = [
              folder.library,
              many || folder.server ? folder.server : null,
              folder.size ? this._size(folder.size) : null,
              folder.files && folder.items !== folder.files ? this._plural(folder.items, "item", "items") : null,
            ].filter(Boolean);
            const samples = folder.sample_titles || [];
            return h(
              "li",
              {},
              h(
                "button",
                {
                  type: "button",
                  class: "group-button",
                  "data-testid": "folder-group",
                  "data-path": folder.path,
                  "data-library-id": folder.library_id,
                  onclick: () => this.showFolder(folder),
                },
                h(
                  "span",
                  { class: "headline" },
                  h("strong", {}, this._plural(count, noun[0], noun[1])),
                  folder.folders > 1 ? ` in ${this._plural(folder.folders, "folder", "folders")} under ` : " under ",
                  h("span", { class: "path" }, folder.path),
                  ` went missing ${when}`.trimEnd(),
                ),
                h("span", { class: "meta" }, meta.join(" · ")),
                samples.length ? h("span", { class: "samples" }, `e.g. ${samples.join(", ")}${count > samples.length ? ", …" : ""}`) : null,
              ),
            );
          }),
        ),
      );
    }
    body.replaceChildren(...content);
  }

  _renderDuplicates() {
    if (!this._dupBody) return;
    const body = this._dupBody;
    body.classList.toggle("busy", this._duplicatesLoading);
    body.setAttribute("aria-busy", String(this._duplicatesLoading));
    const content = [];
    if (this._duplicatesError) content.push(h("div", { class: "error", role: "alert" }, this._duplicatesError));
    const data = this._duplicates;
    if (this._duplicatesLoading) content.push(h("div", { class: "status" }, "Loading…"));
    else if (data) {
      const first = data.total ? this._dupOffset + 1 : 0;
      const last = Math.min(this._dupOffset + (data.groups?.length || 0), data.total);
      content.push(
        h("div", { class: "status", role: "status" }, `${this._num(first)}–${this._num(last)} of ${this._plural(data.total, "group", "groups")}`),
      );
    }
    const groups = data?.groups || [];
    if (data && !groups.length && !this._duplicatesLoading) content.push(h("div", { class: "empty card" }, "No duplicates found."));
    content.push(
      h(
        "div",
        { class: "groups" },
        groups.map((group) =>
          h(
            "article",
            { class: "card dup", "data-testid": "duplicate-group" },
            h(
              "h3",
              {},
              group.title || "(untitled)",
              group.year ? ` (${group.year})` : "",
              h("span", { class: "muted" }, ` · ${group.kind} · ${this._plural(group.items?.length || 0, "copy", "copies")}`),
            ),
            group.ids?.length ? h("div", { class: "ids" }, group.ids.join(" · ")) : null,
            h(
              "div",
              { class: "table-wrap" },
              h(
                "table",
                {},
                h(
                  "thead",
                  {},
                  h(
                    "tr",
                    {},
                    ["Server", "Library", "Title", "State", "Size", "Resolution", "Plex path"].map((label, i) =>
                      h("th", { scope: "col", class: [0, 1, 5].includes(i) ? "hide-narrow" : null }, label),
                    ),
                  ),
                ),
                h(
                  "tbody",
                  {},
                  (group.items || []).map((item) =>
                    h(
                      "tr",
                      { class: "row", "data-item-id": item.id, onclick: () => this.openItem(item.id) },
                      h("td", { class: "hide-narrow" }, item.server || ""),
                      h("td", { class: "hide-narrow" }, item.library || ""),
                      h("td", { class: "title" }, h("button", { type: "button" }, item.title || "(untitled)"), item.year ? ` (${item.year})` : ""),
                      h("td", {}, h("span", { class: `badge s-${item.state}` }, STATE_LABELS[item.state] || item.state)),
                      h("td", { class: "numeric" }, this._size(item.size)),
                      h("td", { class: "hide-narrow" }, this._videoText(item)),
                      h("td", { class: "path" }, item.plex_path || ""),
                    ),
                  ),
                ),
              ),
            ),
          ),
        ),
      ),
    );
    const total = data?.total || 0;
    if (total > DUPLICATE_PAGE_SIZE) {
      content.push(
        h(
          "div",
          { class: "pager" },
          h(
            "button",
            {
              type: "button",
              class: "btn",
              disabled: this._dupOffset <= 0 || this._duplicatesLoading,
              onclick: () => {
                this._dupOffset = Math.max(0, this._dupOffset - DUPLICATE_PAGE_SIZE);
                this._loadDuplicates();
              },
            },
            "Previous",
          ),
          h(
            "button",
            {
              type: "button",
              class: "btn",
              disabled: this._dupOffset + DUPLICATE_PAGE_SIZE >= total || this._duplicatesLoading,
              onclick: () => {
                this._dupOffset += DUPLICATE_PAGE_SIZE;
                this._loadDuplicates();
              },
            },
            "Next",
          ),
        ),
      );
    }
    body.replaceChildren(...content);
  }

  // ------------------------------------------------------------------------------ item dialog

  /** Open the item view for one catalog id. */
  async openItem(itemId) {
    const dialog = this._dialog;
    this._returnFocus = this.shadowRoot.activeElement;
    dialog.dataset.itemId = String(itemId);
    dialog.setAttribute("aria-busy", "true");
    dialog.replaceChildren(this._dialogHeader("Loading…", ""), h("div", { class: "body" }, h("p", { class: "muted" }, "Loading…")));
    if (!dialog.open) dialog.showModal();
    const result = await this._ws("item", { type: "retrovue/item", item_id: Number(itemId) });
    if (!result.current || !dialog.open) return;
    dialog.removeAttribute("aria-busy");
    if (result.error) {
      dialog.replaceChildren(
        this._dialogHeader("Item not available", ""),
        h("div", { class: "body" }, h("div", { class: "error", role: "alert" }, errorText(result.error))),
      );
      return;
    }
    this._renderItemDialog(result.answer);
  }

  closeItem() {
    if (this._dialog.open) this._dialog.close();
  }

  _onDialogClosed() {
    this._seq.item++;
    delete this._dialog.dataset.itemId;
    const target = this._returnFocus;
    this._returnFocus = null;
    if (target && target.isConnected) target.focus();
  }

  _dialogHeader(title, subtitle) {
    return h(
      "header",
      {},
      h("h2", { id: "dialog-title" }, title, subtitle ? h("span", { class: "subtitle" }, subtitle) : null),
      h("button", { type: "button", class: "close", "aria-label": "Close", "data-testid": "dialog-close", onclick: () => this.closeItem() }, "×"),
    );
  }

  _renderItemDialog(item) {
    const code = episodeCode(item);
    const subtitle = [
      item.kind,
      item.kind === "episode" || item.kind === "season" ? [item.show, code].filter(Boolean).join(" · ") : null,
      item.year,
      [item.library, item.server].filter(Boolean).join(" on "),
    ]
      .filter(Boolean)
      .join(" · ");
    const facts = [
      ["State", h("span", { class: `badge s-${item.state}`, "data-testid": "dialog-state" }, STATE_LABELS[item.state] || item.state)],
      ["In this state since", this._time(item.since)],
      ["First seen", this._time(item.first_seen_at)],
      ["Last seen", this._time(item.last_seen_at)],
      item.missing_since ? ["Missing since", this._time(item.missing_since)] : null,
      item.deleted_at ? ["Deleted", this._time(item.deleted_at)] : null,
      ["Added to Plex", this._time(item.added_at)],
      ["Plays", `${this._num(item.view_count || 0)}${item.last_viewed_at ? `, last ${this._time(item.last_viewed_at)}` : ""}`],
      item.duration ? ["Duration", this._duration(item.duration)] : null,
      item.size ? ["Size", this._size(item.size)] : null,
      item.leaf_count !== null && item.leaf_count !== undefined && item.kind !== "movie" && item.kind !== "episode"
        ? ["Episodes", `${this._num(item.leaf_count)}${item.child_count !== null && item.child_count !== undefined ? ` (${this._plural(item.child_count, "child", "children")})` : ""}`]
        : null,
      ["Rating key", item.rating_key],
      item.guid ? ["GUID", h("code", {}, item.guid)] : null,
    ].filter(Boolean);
    const guids = item.guids || [];
    const parts = Array.isArray(item.parts) ? item.parts : [];
    const history = item.history || [];
    const errors = item.error_count || item.last_error;
    const body = h(
      "div",
      { class: "body" },
      item.plex_web_url
        ? h(
            "p",
            {},
            h("a", { href: item.plex_web_url, target: "_blank", rel: "noopener noreferrer", "data-testid": "open-in-plex" }, "Open in Plex ↗"),
          )
        : null,
      h("dl", {}, facts.map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)])),
      errors
        ? [
            h("h3", {}, "Errors"),
            h(
              "div",
              { class: "error", "data-testid": "dialog-errors" },
              `${this._plural(item.error_count || 0, "error", "errors")}`,
              item.last_error ? `; last: ${item.last_error}` : "",
              item.last_error_at ? ` (${this._time(item.last_error_at)})` : "",
            ),
          ]
        : null,
      h("h3", {}, parts.length === 1 ? "File" : `Files (${this._num(parts.length)})`),
      parts.length
        ? parts.map((part) =>
            h(
              "div",
              { class: "part", "data-testid": "dialog-part" },
              h(
                "dl",
                {},
                [
                  ["Plex path", h("code", { "data-testid": "dialog-plex-path" }, part.plex_path || "—")],
                  ["Local path", part.local_path ? h("code", {}, part.local_path) : "— (no path mapping)"],
                  ["Size", this._size(part.size) || "—"],
                  [
                    "Video",
                    [
                      part.video_resolution ? (/^\d+$/.test(part.video_resolution) ? `${part.video_resolution}p` : part.video_resolution) : null,
                      part.width && part.height ? `${part.width}×${part.height}` : null,
                      part.video_codec,
                    ]
                      .filter(Boolean)
                      .join(" · ") || "—",
                  ],
                  ["Audio", [part.audio_codec, part.audio_channels ? `${part.audio_channels} ch` : null].filter(Boolean).join(" · ") || "—"],
                  ["Container", part.container || "—"],
                  part.duration ? ["Duration", this._duration(part.duration)] : null,
                  part.bitrate ? ["Bitrate", `${this._num(part.bitrate)} kbps`] : null,
                  parts.length > 1 ? ["Version / part", `${(part.media_index ?? 0) + 1} / ${(part.part_index ?? 0) + 1}`] : null,
                ]
                  .filter(Boolean)
                  .map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]),
              ),
            ),
          )
        : h("p", { class: "muted" }, "No file."),
      guids.length ? [h("h3", {}, "GUIDs"), h("ul", { "data-testid": "dialog-guids" }, guids.map((g) => h("li", {}, h("code", {}, g))))] : null,
      h("h3", {}, "History"),
      history.length
        ? h(
            "ul",
            { "data-testid": "dialog-history" },
            history.map((entry) =>
              h(
                "li",
                {},
                `${this._time(entry.at)}: `,
                entry.previous ? [h("span", { class: `badge s-${entry.previous}` }, STATE_LABELS[entry.previous] || entry.previous), " → "] : "",
                h("span", { class: `badge s-${entry.state}` }, STATE_LABELS[entry.state] || entry.state),
              ),
            ),
          )
        : h("p", { class: "muted" }, "No state change recorded."),
    );
    this._dialog.replaceChildren(this._dialogHeader(item.title || "(untitled)", subtitle), body);
  }
}

if (!customElements.get("retrovue-panel")) customElements.define("retrovue-panel", RetrovuePanel);
