"""Path mapping: the `part_paths` view and `PathMapper.resolve` agree, and nothing escapes.

Hypothesis draws a few mappings (POSIX, drive and UNC prefixes on both sides, nested and
sibling Plex prefixes, separators mixed, case changed) and Plex paths built around them (exact
prefixes, trailing and doubled separators, `..`, `.`, `...`, `. .`, `.. `, backslashes inside
POSIX names, Unicode that only Unicode case folding would match, NUL). One real catalog holds
them; every part's `local_path` read from the view must equal what the resolver returns, and
every local path must stay under its local prefix. The default budget suits every CI run;
RETROVUE_FUZZ_EXAMPLES raises it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
import os
import re
from typing import Final

from hypothesis import HealthCheck, given, settings, strategies as st
import pytest

from custom_components.retrovue.engine.paths import (
    InvalidPathMapping,
    PathMapper,
    PathMapping,
    view_columns,
)
from custom_components.retrovue.engine.plex.models import ServerIdentity
from custom_components.retrovue.engine.store import CatalogStore

EXAMPLES: Final = int(os.environ.get("RETROVUE_FUZZ_EXAMPLES", "300"))
_WINDOWS_SPLIT: Final = re.compile(r"[\\/]")

# Names that path handling gets wrong most easily; Unicode ones only match under Unicode case
# folding (ß/SS, Kelvin sign/k, long s/s, dotted I), which both sides must not apply.
_TRICKY: Final = (
    "..",
    ".",
    "...",
    ". .",
    ".. ",
    " ..",
    " ",
    "",
    "a\\b",
    "..\\..",
    "\\",
    "\\..",
    "x\\.\\y",
    ".\\",
    "C:",
    "?",
    "a.",
    "a ",
    "Média",
    "MÉDIA",
    "ß",
    "SS",
    "\u212a",
    "k",
    "\u017f",
    "s",
    "\u0130",
    "i",
    "TV",
    "tv",
    "x\x00y",
    # The view's normalizing markers and escape (`\<`, `\>`, `\e`) must not confuse it.
    "\\e",
    "\\<\\>",
    "\\>.\\<",
    "a\\e\\ee",
)
_NAMES: Final = st.one_of(
    st.sampled_from(_TRICKY),
    st.text(alphabet="abeAB. \\-é<>", min_size=1, max_size=5),
    st.text(min_size=1, max_size=4),
)
# Prefix components: mostly plain, sometimes odd enough for validation to refuse the prefix.
_PREFIX_NAMES: Final = st.one_of(
    st.sampled_from(["media", "Media", "TV", "tv", "data", "Média", "ß", "SS", "\u212a", "k"]),
    st.text(alphabet="abAB. é\\", min_size=1, max_size=4),
)
_UNRELATED: Final = st.one_of(
    st.sampled_from(
        [
            "",
            "/",
            "//",
            "/\\",
            "\\\\",
            "C:",
            "C:\\",
            "c:/",
            "C:x",
            "\\\\?\\C:\\x",
            "\\\\.\\pipe\\x",
            "//./pipe/x",
            "//?/C:/x",
            "relative/x",
        ]
    ),
    st.text(max_size=12),
)


@dataclass(frozen=True, slots=True)
class _Shape:
    """An absolute prefix before rendering: style, drive letter and components."""

    style: str
    drive: str
    parts: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Case:
    """Mappings as configured and the Plex paths one server reports."""

    mappings: tuple[PathMapping, ...]
    paths: tuple[str, ...]


_SHAPES: Final = st.builds(
    _Shape,
    style=st.sampled_from(["posix", "drive", "unc"]),
    drive=st.sampled_from("CcDdEz"),
    parts=st.lists(_PREFIX_NAMES, max_size=3).map(tuple),
)


def _separators(draw: st.DrawFn, windows: bool, count: int) -> list[str]:
    """Draw separators: now and then doubled or with a `.` component, mixed on Windows."""
    seps = []
    for _ in range(count):
        sep = draw(st.sampled_from(["\\", "/"])) if windows else "/"
        seps.append(sep + draw(st.sampled_from(["", "", "", sep, "." + sep])))
    return seps


def _render(draw: st.DrawFn, shape: _Shape, *, flip_case: bool, path: bool = False) -> str:
    """Render a prefix shape as text: separators mixed, case flipped on Windows-style ones."""
    windows = shape.style != "posix"
    parts = list(shape.parts)
    if flip_case and windows:
        parts = [part.swapcase() if draw(st.booleans()) else part for part in parts]
    if shape.style == "unc":
        parts = parts or ["srv"]
        if len(parts) < 2 and draw(st.booleans()):
            parts.append("share")
    seps = _separators(draw, windows, len(parts))
    body = "".join(part + sep for part, sep in zip(parts, seps, strict=True))
    trailing = draw(st.booleans())
    if parts and not trailing:
        body = body[: -len(seps[-1])]
    if shape.style == "posix":
        return "/" + body
    if shape.style == "drive":
        drive = shape.drive.swapcase() if flip_case and draw(st.booleans()) else shape.drive
        return drive + ":" + draw(st.sampled_from(["\\", "/"])) + body
    if not path:
        return draw(st.sampled_from(["\\\\", "\\/", "/\\"])) + body
    # `\\.\srv\share` and `\\?\srv\share` are device paths, not the UNC path `\\srv\share`.
    root = draw(st.sampled_from(["\\\\", "\\/", "/\\", "//", "\\\\.\\", "//?/"]))
    return root + body


@st.composite
def _cases(draw: st.DrawFn) -> _Case:
    """Draw nested, sibling and cross-style mappings and paths built around their prefixes."""
    shapes = [draw(_SHAPES)]
    for _ in range(draw(st.integers(0, 3))):
        base = draw(st.sampled_from(shapes))
        kind = draw(st.sampled_from(["nest", "sibling", "restyle", "twin", "fresh"]))
        if kind == "nest":
            extra = tuple(draw(st.lists(_PREFIX_NAMES, min_size=1, max_size=2)))
            shapes.append(_Shape(base.style, base.drive, base.parts + extra))
        elif kind == "sibling" and base.parts:
            shapes.append(_Shape(base.style, base.drive, (*base.parts[:-1], draw(_PREFIX_NAMES))))
        elif kind == "twin":
            # A POSIX and a UNC prefix with the same components both match `//srv/share/…`.
            parts = (*base.parts, "srv", "share")[: max(2, len(base.parts))]
            shapes.append(_Shape("posix", base.drive, parts))
            shapes.append(_Shape("unc", base.drive, parts))
        elif kind == "restyle":
            style = draw(st.sampled_from(["posix", "drive", "unc"]))
            shapes.append(_Shape(style, base.drive, base.parts))
        else:
            shapes.append(draw(_SHAPES))
    mappings = []
    for shape in shapes:
        plex_prefix = _render(draw, shape, flip_case=True)
        mappings.append(PathMapping(plex_prefix, _render(draw, draw(_SHAPES), flip_case=False)))
    paths: list[str] = []
    for _ in range(draw(st.integers(1, 24))):
        if draw(st.integers(0, 9)) == 0:
            paths.append(draw(_UNRELATED))
            continue
        shape = draw(st.sampled_from(shapes))
        prefix = _render(draw, shape, flip_case=True, path=True)
        names = draw(st.lists(_NAMES, max_size=6))
        if shape.style == "posix" and draw(st.integers(0, 3)) == 0:
            prefix = "/" + prefix  # `//…`: a UNC prefix can match it too
        seps = _separators(draw, shape.style != "posix", len(names))
        tail = "".join(sep + name for sep, name in zip(seps, names, strict=True))
        paths.append(prefix + tail + draw(st.sampled_from(["", "", "/", "\\", "/."])))
    return _Case(tuple(mappings), tuple(paths))


def _usable(mappings: tuple[PathMapping, ...]) -> list[PathMapping]:
    """Keep the mappings validation accepts, the first of any with the same match key."""
    kept: list[PathMapping] = []
    keys: set[str] = set()
    for mapping in mappings:
        try:
            key = view_columns(mapping).match_prefix
        except InvalidPathMapping:
            with pytest.raises(InvalidPathMapping):
                PathMapper([mapping])
            continue
        if key not in keys:
            keys.add(key)
            kept.append(mapping)
    return kept


@dataclass(slots=True)
class _Server:
    """A catalog with one server and one item whose parts each example replaces."""

    store: CatalogStore
    server_id: int
    item_id: int

    def resolve(
        self, mappings: list[PathMapping], paths: tuple[str, ...]
    ) -> list[tuple[str, str | None, str | None]]:
        """Store mappings and paths; return each path, its mapped Plex prefix and local path."""
        self.store.set_path_mappings(self.server_id, mappings)
        with self.store.transaction() as conn:
            conn.execute("DELETE FROM parts WHERE server_id = ?", (self.server_id,))
            conn.executemany(
                "INSERT INTO parts (item_id, server_id, media_index, part_index, plex_path)"
                " VALUES (?, ?, 0, ?, ?)",
                [(self.item_id, self.server_id, index, path) for index, path in enumerate(paths)],
            )
        rows = self.store.conn.execute(
            "SELECT plex_path, mapped_plex_prefix, local_path FROM part_paths"
            " WHERE server_id = ? ORDER BY part_row_id",
            (self.server_id,),
        )
        return [(str(path), mapped, local) for path, mapped, local in rows]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Server]:
    """Open one catalog for the module, with a server, a library and an item."""
    store = CatalogStore(tmp_path_factory.mktemp("paths") / "catalog.db")
    server_id = store.upsert_server(ServerIdentity("paths"), None, 1)
    with store.transaction() as conn:
        library_id = conn.execute(
            "INSERT INTO libraries (server_id, section_key, type, title, first_seen_at) "
            "VALUES (?, '1', 'movie', 'Movies', 1) RETURNING id",
            (server_id,),
        ).fetchone()[0]
        item_id = conn.execute(
            "INSERT INTO items (server_id, library_id, rating_key, kind, title, state, digest,"
            " first_seen_at, last_seen_at, last_scan_at) "
            "VALUES (?, ?, '1', 'movie', 'x', 'ACTIVE', 'd', 1, 1, 1) RETURNING id",
            (server_id, library_id),
        ).fetchone()[0]
    yield _Server(store, server_id, item_id)
    store.close()


def _escapes(local_path: str, local_prefix: str) -> str | None:
    """Return why a local path is not safely under its local prefix, or None when it is."""
    windows = not local_prefix.startswith("/")
    sep = "\\" if windows else "/"
    if local_path != local_prefix and not local_path.startswith(local_prefix.rstrip(sep) + sep):
        return f"not under {local_prefix!r}"
    parts = _WINDOWS_SPLIT.split(local_path) if windows else local_path.split("/")
    for part in parts:
        if windows and part and not part.strip(". "):
            return f"component {part!r} is made only of dots and spaces"
        if not windows and part in ("..", "."):
            return f"component {part!r}"
    return None


_FUZZ: Final = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)


@_FUZZ
@given(case=_cases())
def test_view_and_resolver_agree_and_stay_inside(server: _Server, case: _Case) -> None:
    mappings = _usable(case.mappings)
    mapper = PathMapper(mappings)
    local_prefixes = {mapping.plex_prefix: mapping.local_prefix for mapping in mapper.mappings}
    found = server.resolve(mappings, case.paths)
    assert [path for path, _, _ in found] == list(case.paths)
    disagree = [
        (path, local, wanted)
        for path, _, local in found
        if local != (wanted := mapper.resolve(path))
    ]
    assert disagree == [], (mapper.mappings, disagree)
    escaped = []
    for path, mapped, local in found:
        if local is None:
            continue
        if mapped not in local_prefixes:
            escaped.append((path, local, f"mapped through {mapped!r}, not a mapping"))
        elif (reason := _escapes(local, local_prefixes[mapped])) is not None:
            escaped.append((path, local, reason))
    assert escaped == [], (mapper.mappings, escaped)


@pytest.mark.parametrize(
    ("plex_prefix", "local_prefix", "plex_path", "expected"),
    [
        ("/data/tv", "E:\\TV", "/data/tv/..\\..\\Windows\\x.mkv", None),
        ("/data/tv", "E:\\TV", "/data/tv/Show\\e01.mkv", "E:\\TV\\Show\\e01.mkv"),
        ("/data/tv", "\\\\fs\\vol\\sub", "/data/tv/..\\..\\x.mkv", None),
        ("/data/tv", "\\\\fs\\vol\\sub", "/data/tv/a/b.mkv", "\\\\fs\\vol\\sub\\a\\b.mkv"),
        ("/data/tv", "E:\\TV", "/data/tv/.../x.mkv", None),
        ("/data/tv", "E:\\TV", "/data/tv/. ./x.mkv", None),
        ("/data/tv", "E:\\TV", "/data/tv/.. /x.mkv", None),
        ("/data/tv", "/mnt/tv", "/data/tv/.../x.mkv", "/mnt/tv/.../x.mkv"),
        ("/data/tv", "/mnt/tv", "/data/tv/a/../b.mkv", None),
        ("D:\\TV", "/mnt/tv", "d:/tv\\a\\..\\b.mkv", None),
        ("D:\\Média", "/m", "D:\\MÉDIA\\x.mkv", None),
        ("D:\\Média", "/m", "d:\\MéDIA\\x.mkv", "/m/x.mkv"),
        ("\\\\nas\\share", "/m", "\\\\.\\nas\\share\\x.mkv", None),
        ("\\\\nas\\share", "/m", "\\\\\\nas\\share\\x.mkv", "/m/x.mkv"),
    ],
)
def test_view_on_named_defects(
    server: _Server, plex_prefix: str, local_prefix: str, plex_path: str, expected: str | None
) -> None:
    mappings = [PathMapping(plex_prefix, local_prefix)]
    assert [(path, local) for path, _, local in server.resolve(mappings, (plex_path,))] == [
        (plex_path, expected)
    ]
    assert PathMapper(mappings).resolve(plex_path) == expected


def test_stored_mappings_are_canonical(server: _Server) -> None:
    server.store.set_path_mappings(server.server_id, [PathMapping(" d:/Media//TV/ ", "//x/./y/")])
    row = server.store.conn.execute(
        "SELECT plex_prefix, local_prefix, match_prefix, fold_case, local_base, local_sep "
        "FROM path_mappings WHERE server_id = ?",
        (server.server_id,),
    ).fetchone()
    assert row == ("d:\\Media\\TV", "/x/y", "d:/media/tv", 1, "/x/y", "/")


@pytest.mark.parametrize("local_prefix", ["\\\\?\\C:\\x", "\\\\.\\pipe\\x", "C:\\...\\x"])
def test_refused_mappings_are_not_stored(server: _Server, local_prefix: str) -> None:
    with pytest.raises(InvalidPathMapping):
        server.store.set_path_mappings(server.server_id, [PathMapping("/data", local_prefix)])
