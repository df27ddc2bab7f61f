"""Tests for the Plex-to-local path mapping."""

from __future__ import annotations

import time

import pytest

from custom_components.retrovue.engine.paths import (
    Coverage,
    InvalidPathMapping,
    PathMapper,
    PathMapping,
    ViewColumns,
    check_prefix,
    coverage,
    resolve_local_path,
    validate_mapping,
    view_columns,
)


def _mapper(*pairs: tuple[str, str]) -> PathMapper:
    return PathMapper(PathMapping(plex, local) for plex, local in pairs)


@pytest.mark.parametrize(
    ("plex_path", "expected"),
    [
        ("/media/tv", "/mnt/tv"),
        ("/media/tv/", "/mnt/tv"),
        ("/media/tv/x.mkv", "/mnt/tv/x.mkv"),
        ("/media/tv/Show/Season 01/e01.mkv", "/mnt/tv/Show/Season 01/e01.mkv"),
        ("/media/tv2/x.mkv", None),
        ("/media/tvx", None),
        ("/media", None),
        ("/other/tv/x.mkv", None),
        ("media/tv/x.mkv", None),
        ("", None),
    ],
)
def test_separator_aware_matching(plex_path: str, expected: str | None) -> None:
    assert _mapper(("/media/tv", "/mnt/tv")).resolve(plex_path) == expected


@pytest.mark.parametrize("plex_prefix", ["/media/tv", "/media/tv/", "/media/tv//", " /media/tv/ "])
def test_trailing_separator_is_ignored(plex_prefix: str) -> None:
    mapper = _mapper((plex_prefix, "/mnt/tv/"))
    assert mapper.mappings == (PathMapping("/media/tv", "/mnt/tv"),)
    assert mapper.resolve("/media/tv/x.mkv") == "/mnt/tv/x.mkv"
    assert mapper.resolve("/media/tv2/x.mkv") is None


@pytest.mark.parametrize(
    ("plex_path", "expected"),
    [
        ("/media/tv/kids/a.mkv", "/kids/a.mkv"),
        ("/media/tv/kids", "/kids"),
        ("/media/tv/kidsx/a.mkv", "/tv/kidsx/a.mkv"),
        ("/media/tv/a.mkv", "/tv/a.mkv"),
        ("/media/movies/m.mkv", "/all/media/movies/m.mkv"),
        ("/x", "/all/x"),
        ("/", "/all"),
    ],
)
def test_longest_prefix_wins(plex_path: str, expected: str) -> None:
    mapper = _mapper(("/", "/all"), ("/media/tv", "/tv"), ("/media/tv/kids", "/kids"))
    assert mapper.resolve(plex_path) == expected


def test_mappings_sorted_longest_first() -> None:
    mapper = _mapper(("/", "/all"), ("/media/tv", "/tv"), ("/media/tv/kids", "/kids"))
    assert [mapping.plex_prefix for mapping in mapper.mappings] == [
        "/media/tv/kids",
        "/media/tv",
        "/",
    ]


@pytest.mark.parametrize(
    ("plex_path", "expected"),
    [
        ("/data/x.mkv", "/mnt/data/x.mkv"),
        ("/", "/mnt"),
        ("relative/x.mkv", None),
        ("D:\\x.mkv", None),
    ],
)
def test_root_prefix_matches_every_absolute_path(plex_path: str, expected: str | None) -> None:
    assert _mapper(("/", "/mnt")).resolve(plex_path) == expected


@pytest.mark.parametrize(
    ("plex_path", "expected"),
    [
        ("/data/tv/x.mkv", "/tv/x.mkv"),
        ("/Data/TV/x.mkv", None),
        ("/data/TV/x.mkv", None),
    ],
)
def test_posix_plex_prefix_is_case_sensitive(plex_path: str, expected: str | None) -> None:
    assert _mapper(("/data/tv", "/tv")).resolve(plex_path) == expected


@pytest.mark.parametrize(
    ("plex_path", "expected"),
    [
        ("D:\\Media\\TV\\Show\\e01.mkv", "/mnt/tv/Show/e01.mkv"),
        ("d:\\media\\tv\\Show\\e01.mkv", "/mnt/tv/Show/e01.mkv"),
        ("D:/Media/TV/Show/e01.mkv", "/mnt/tv/Show/e01.mkv"),
        ("D:\\Media/TV\\Show/e01.mkv", "/mnt/tv/Show/e01.mkv"),
        ("D:\\MEDIA\\tv", "/mnt/tv"),
        ("D:\\Media\\TV2\\e01.mkv", None),
        ("E:\\Media\\TV\\e01.mkv", None),
        ("/Media/TV/e01.mkv", None),
        ("D:Media\\TV\\e01.mkv", None),
    ],
)
def test_windows_plex_prefix(plex_path: str, expected: str | None) -> None:
    assert _mapper(("D:\\Media\\TV", "/mnt/tv")).resolve(plex_path) == expected


def test_windows_plex_remainder_keeps_its_case() -> None:
    mapper = _mapper(("d:/media/tv", "/mnt/tv"))
    assert mapper.resolve("D:\\MEDIA\\TV\\The Show\\S01E01.MKV") == "/mnt/tv/The Show/S01E01.MKV"


@pytest.mark.parametrize(
    ("plex_path", "expected"),
    [
        ("\\\\nas\\share\\tv\\x.mkv", "/mnt/tv/x.mkv"),
        ("\\\\NAS\\Share\\TV\\x.mkv", "/mnt/tv/x.mkv"),
        ("//nas/share/tv/x.mkv", "/mnt/tv/x.mkv"),
        ("\\\\nas\\share\\tv", "/mnt/tv"),
        ("\\\\nas\\share\\tv2\\x.mkv", None),
        ("\\\\other\\share\\tv\\x.mkv", None),
        ("\\nas\\share\\tv\\x.mkv", None),
    ],
)
def test_unc_plex_prefix(plex_path: str, expected: str | None) -> None:
    assert _mapper(("\\\\nas\\share\\tv", "/mnt/tv")).resolve(plex_path) == expected


@pytest.mark.parametrize(
    ("local_prefix", "expected"),
    [
        ("/mnt/movies", "/mnt/movies/Film (1999)/film.mkv"),
        ("D:\\Media\\Movies", "D:\\Media\\Movies\\Film (1999)\\film.mkv"),
        ("D:/Media/Movies/", "D:\\Media\\Movies\\Film (1999)\\film.mkv"),
        ("C:\\", "C:\\Film (1999)\\film.mkv"),
        ("\\\\server\\share\\tv", "\\\\server\\share\\tv\\Film (1999)\\film.mkv"),
        ("\\\\server\\share\\", "\\\\server\\share\\Film (1999)\\film.mkv"),
        ("/", "/Film (1999)/film.mkv"),
    ],
)
def test_local_prefix_styles(local_prefix: str, expected: str) -> None:
    mapper = _mapper(("/data/movies", local_prefix))
    assert mapper.resolve("/data/movies/Film (1999)/film.mkv") == expected


@pytest.mark.parametrize(
    ("local_prefix", "expected"),
    [
        ("D:\\Movies", "D:\\Movies"),
        ("C:\\", "C:\\"),
        ("/", "/"),
        ("\\\\server\\share", "\\\\server\\share"),
    ],
)
def test_exact_prefix_resolves_to_local_prefix(local_prefix: str, expected: str) -> None:
    assert _mapper(("/data/movies", local_prefix)).resolve("/data/movies/") == expected


def test_windows_plex_to_windows_local() -> None:
    mapper = _mapper(("D:\\Media", "\\\\nas\\media"))
    assert mapper.resolve("d:/media/TV/x.mkv") == "\\\\nas\\media\\TV\\x.mkv"


@pytest.mark.parametrize(
    ("plex_path", "expected"),
    [
        ("/media/tv/../../etc/passwd", None),
        ("/media/tv/..", None),
        ("/media/tv/../tv2/x.mkv", None),
        ("/media/tv/a/../../x.mkv", None),
        # `..` is refused, never collapsed: `a/..` is not `.` when `a` is a symlink.
        ("/media/tv/a/../b.mkv", None),
        ("/media/tv/a/b/../../c.mkv", None),
        ("/media/tv/./a/./b.mkv", "/mnt/tv/a/b.mkv"),
        ("/media/tv//a///b.mkv", "/mnt/tv/a/b.mkv"),
        ("/media//tv/a.mkv", "/mnt/tv/a.mkv"),
        ("/media/tv/a/..", None),
        ("/media/tv/...", "/mnt/tv/..."),
        ("/media/tv/. ./.. /x.mkv", "/mnt/tv/. ./.. /x.mkv"),
        ("/media/tv/x\x00.mkv", None),
    ],
)
def test_parent_components_never_escape(plex_path: str, expected: str | None) -> None:
    assert _mapper(("/media/tv", "/mnt/tv")).resolve(plex_path) == expected


@pytest.mark.parametrize(
    ("plex_path", "expected"),
    [
        ("D:\\TV\\..\\..\\Windows\\x", None),
        ("D:\\TV/../secret", None),
        ("D:\\TV\\a\\..\\b.mkv", None),
        ("D:\\TV\\...\\b.mkv", "/mnt/tv/.../b.mkv"),
    ],
)
def test_parent_components_with_windows_plex(plex_path: str, expected: str | None) -> None:
    assert _mapper(("D:\\TV", "/mnt/tv")).resolve(plex_path) == expected


@pytest.mark.parametrize(
    ("plex_path", "expected"),
    [
        ("/media/tv/a\\..\\..\\x.mkv", None),
        ("/media/tv/...", None),
        ("/media/tv/.. /x.mkv", None),
        ("/media/tv/a\\b.mkv", "D:\\TV\\a\\b.mkv"),
        ("/media/tv/a.b.mkv", "D:\\TV\\a.b.mkv"),
    ],
)
def test_windows_local_cannot_be_escaped_through_posix_names(
    plex_path: str, expected: str | None
) -> None:
    assert _mapper(("/media/tv", "D:\\TV")).resolve(plex_path) == expected


def test_posix_local_keeps_backslashes_literal() -> None:
    mapper = _mapper(("/media/tv", "/mnt/tv"))
    assert mapper.resolve("/media/tv/a\\..\\..\\x.mkv") == "/mnt/tv/a\\..\\..\\x.mkv"


def test_escape_refusal_does_not_fall_back_to_shorter_prefix() -> None:
    mapper = _mapper(("/", "/all"), ("/media/tv", "/tv"))
    assert mapper.resolve("/media/tv/../../etc/passwd") is None


def test_mixed_styles_in_one_mapper() -> None:
    mapper = _mapper(
        ("/data/tv", "/mnt/tv"),
        ("D:\\Movies", "/mnt/movies"),
        ("\\\\nas\\music", "/mnt/music"),
    )
    assert mapper.resolve("/data/tv/a.mkv") == "/mnt/tv/a.mkv"
    assert mapper.resolve("D:\\Movies\\b.mkv") == "/mnt/movies/b.mkv"
    assert mapper.resolve("\\\\nas\\music\\c.flac") == "/mnt/music/c.flac"
    assert mapper.resolve("E:\\Movies\\b.mkv") is None


def test_empty_mapper_resolves_nothing() -> None:
    assert PathMapper([]).resolve("/media/tv/x.mkv") is None
    assert PathMapper([]).mappings == ()


@pytest.mark.parametrize(
    ("plex_prefix", "local_prefix", "expected"),
    [
        ("/media/tv", "/mnt/tv", PathMapping("/media/tv", "/mnt/tv")),
        ("  /media/tv/  ", "\t/mnt/tv/\n", PathMapping("/media/tv", "/mnt/tv")),
        ("/media//./tv", "/mnt/tv", PathMapping("/media/tv", "/mnt/tv")),
        ("/", "/", PathMapping("/", "/")),
        ("//", "/mnt", PathMapping("/", "/mnt")),
        ("D:/Media/TV/", "C:\\", PathMapping("D:\\Media\\TV", "C:\\")),
        ("C:/", "/mnt", PathMapping("C:\\", "/mnt")),
        (
            "\\\\nas\\share\\",
            "//nas/share/tv",
            PathMapping("\\\\nas\\share", "/nas/share/tv"),
        ),
        ("\\/nas/share/tv", "/mnt", PathMapping("\\\\nas\\share\\tv", "/mnt")),
    ],
)
def test_validate_mapping_normalizes(
    plex_prefix: str, local_prefix: str, expected: PathMapping
) -> None:
    assert validate_mapping(plex_prefix, local_prefix) == expected


@pytest.mark.parametrize(
    ("plex_prefix", "local_prefix", "message"),
    [
        ("", "/mnt", "The Plex prefix must not be empty"),
        ("   ", "/mnt", "The Plex prefix must not be empty"),
        ("/media", "", "The local prefix must not be empty"),
        ("media/tv", "/mnt", "The Plex prefix 'media/tv' must be an absolute path"),
        ("/media", "mnt", "The local prefix 'mnt' must be an absolute path"),
        ("C:", "/mnt", "The Plex prefix 'C:' must be an absolute path"),
        ("C:Media", "/mnt", "The Plex prefix 'C:Media' must be an absolute path"),
        ("~/media", "/mnt", "must be an absolute path"),
        ("/media/../etc", "/mnt", "The Plex prefix '/media/../etc' must not contain '..'"),
        ("/media", "D:\\x\\..", "The local prefix 'D:\\\\x\\\\..' must not contain '..'"),
        ("/media\x00", "/mnt", "The Plex prefix '/media\\x00' must not contain NUL characters"),
        ("/media", "/mnt\x00/x", "The local prefix '/mnt\\x00/x' must not contain NUL"),
        ("\\\\nas", "/mnt", "The Plex prefix '\\\\\\\\nas' must name a server and a share"),
        (
            "/media",
            "\\\\nas\\",
            "The local prefix '\\\\\\\\nas\\\\' must name a server and a share",
        ),
    ],
)
def test_validate_mapping_errors(plex_prefix: str, local_prefix: str, message: str) -> None:
    with pytest.raises(InvalidPathMapping) as err:
        validate_mapping(plex_prefix, local_prefix)
    assert message in str(err.value)


# --- the named defects: escapes through Windows local prefixes, device paths ----------------

WINDOWS_LOCAL_ESCAPES = [
    ("/data/tv/..\\..\\Windows\\x.mkv", None),
    ("/data/tv/a\\..\\..\\x.mkv", None),
    ("/data/tv/..", None),
    ("/data/tv/...", None),
    ("/data/tv/.../x.mkv", None),
    ("/data/tv/. ./x.mkv", None),
    ("/data/tv/.. /x.mkv", None),
    ("/data/tv/ ../x.mkv", None),
    ("/data/tv/ /x.mkv", None),
    ("/data/tv/a\\. .\\x.mkv", None),
    ("/data/tv/./a/.\\b.mkv", "{}\\a\\b.mkv"),
    ("/data/tv/Show\\e01.mkv", "{}\\Show\\e01.mkv"),
    ("/data/tv/a./.b/x .mkv", "{}\\a.\\.b\\x .mkv"),
    ("/data/tv/\\", "{}"),
]


@pytest.mark.parametrize(("plex_path", "expected"), WINDOWS_LOCAL_ESCAPES)
@pytest.mark.parametrize("local_prefix", ["E:\\TV", "\\\\fs\\vol\\sub"])
def test_windows_local_prefix_is_never_left(
    local_prefix: str, plex_path: str, expected: str | None
) -> None:
    mapper = _mapper(("/data/tv", local_prefix))
    wanted = None if expected is None else expected.format(local_prefix)
    assert mapper.resolve(plex_path) == wanted


@pytest.mark.parametrize(
    ("plex_path", "expected"),
    [
        ("D:\\TV\\..\\..\\Windows\\x.mkv", None),
        ("D:\\TV\\a/../x.mkv", None),
        ("D:\\TV\\...\\x.mkv", None),
        ("D:\\TV\\. .\\x.mkv", None),
        ("D:\\TV\\.. \\x.mkv", None),
        ("d:/tv/Show/x.mkv", "\\\\fs\\vol\\Show\\x.mkv"),
    ],
)
def test_windows_plex_to_unc_local_is_never_left(plex_path: str, expected: str | None) -> None:
    assert _mapper(("D:\\TV", "\\\\fs\\vol")).resolve(plex_path) == expected


@pytest.mark.parametrize(
    "prefix",
    [
        "\\\\?\\C:\\x",
        "\\\\.\\pipe\\x",
        "\\\\?\\UNC\\srv\\share",
        "\\\\.\\C:\\x",
        "\\/?/C:/x",
        "/\\.\\pipe\\x",
        "\\\\.",
        "\\\\?",
    ],
)
@pytest.mark.parametrize("side", ["Plex", "local"])
def test_device_and_extended_length_prefixes_are_refused(prefix: str, side: str) -> None:
    pair = (prefix, "/mnt") if side == "Plex" else ("/media", prefix)
    with pytest.raises(InvalidPathMapping) as err:
        validate_mapping(*pair)
    assert f"The {side} prefix {prefix!r} must not be a device or extended-length path" in str(
        err.value
    )
    with pytest.raises(InvalidPathMapping):
        PathMapper([PathMapping(*pair)])
    with pytest.raises(InvalidPathMapping):
        view_columns(PathMapping(*pair))


@pytest.mark.parametrize(
    "prefix", ["C:\\...\\x", "C:\\x\\. .", "\\\\srv\\share\\.. \\x", "\\\\srv\\ \\x", "D:/a/ ./b"]
)
@pytest.mark.parametrize("side", ["Plex", "local"])
def test_windows_prefixes_with_dot_space_components_are_refused(prefix: str, side: str) -> None:
    pair = (prefix, "/mnt") if side == "Plex" else ("/media", prefix)
    with pytest.raises(InvalidPathMapping, match="components made only of dots and spaces"):
        validate_mapping(*pair)


def test_posix_prefixes_may_hold_dot_space_names() -> None:
    assert validate_mapping("/a/.../. .", "/mnt/.. /x") == PathMapping("/a/.../. .", "/mnt/.. /x")


@pytest.mark.parametrize(
    ("plex_prefix", "plex_path", "expected"),
    [
        ("\\\\pipe\\x", "\\\\.\\pipe\\x\\f.mkv", None),
        ("\\\\pipe\\x", "//./pipe/x/f.mkv", None),
        ("\\\\srv\\share", "\\\\?\\srv\\share\\f.mkv", None),
        ("\\\\srv\\share", "\\\\.", None),
        ("\\\\srv\\share", "\\\\\\srv\\share\\f.mkv", "/m/f.mkv"),
        ("\\\\srv\\share", "\\\\.x\\..\\srv\\share\\f.mkv", None),
        ("\\\\.x\\share", "\\\\.x\\share\\f.mkv", "/m/f.mkv"),
        ("/", "//./pipe/x", "/m/pipe/x"),
    ],
)
def test_device_paths_are_not_unc_paths(
    plex_prefix: str, plex_path: str, expected: str | None
) -> None:
    assert _mapper((plex_prefix, "/m")).resolve(plex_path) == expected


@pytest.mark.parametrize(
    ("plex_prefix", "plex_path", "expected"),
    [
        ("D:\\Média", "d:\\méDIA\\x.mkv", "/m/x.mkv"),
        ("D:\\Média", "D:\\MÉDIA\\x.mkv", None),
        ("\\\\nas\\ß", "\\\\NAS\\SS\\x.mkv", None),
        ("\\\\nas\\SS", "\\\\nas\\ss\\x.mkv", "/m/x.mkv"),
        ("D:\\\u212a", "D:\\k\\x.mkv", None),
        ("D:\\k", "D:\\K\\x.mkv", "/m/x.mkv"),
        ("D:\\\u0130", "D:\\i\\x.mkv", None),
    ],
)
def test_windows_case_folding_is_ascii_only(
    plex_prefix: str, plex_path: str, expected: str | None
) -> None:
    # Like SQLite's NOCASE, which the `part_paths` view compares with.
    assert _mapper((plex_prefix, "/m")).resolve(plex_path) == expected


def test_prefixes_differing_beyond_ascii_case_are_distinct() -> None:
    mapper = _mapper(("D:\\Média", "/lower"), ("d:\\MÉDIA", "/upper"))
    assert mapper.resolve("D:\\média\\x") == "/lower/x"
    assert mapper.resolve("D:\\mÉdia\\x") == "/upper/x"


@pytest.mark.parametrize(
    ("plex_path", "expected"),
    [
        ("//srv/share/x.mkv", "/unc/x.mkv"),
        ("/\\srv\\share\\x.mkv", "/unc/x.mkv"),
        ("/srv/share/x.mkv", "/posix/x.mkv"),
        ("//srv/other/x.mkv", "/posix-root/srv/other/x.mkv"),
    ],
)
def test_longest_match_key_wins_across_styles(plex_path: str, expected: str) -> None:
    # `//srv/share/…` matches both the POSIX and the UNC prefix: the longer key (`//srv/share`
    # over `/srv/share`) wins, as in the view's ORDER BY.
    mapper = _mapper(("/srv/share", "/posix"), ("\\\\srv\\share", "/unc"), ("/", "/posix-root"))
    assert mapper.resolve(plex_path) == expected


def test_equal_length_keys_are_ordered_by_text() -> None:
    # `/x\/z` (POSIX, one backslash in a name) and `\\x\z` have the same 5-character key
    # length and both match `//x\/z/f`; the key that sorts first (`//x/z`) wins.
    mapper = _mapper(("/x\\/z", "/posix"), ("\\\\x\\z", "/unc"))
    assert [mapping.plex_prefix for mapping in mapper.mappings] == ["\\\\x\\z", "/x\\/z"]
    assert mapper.resolve("//x\\/z/f") == "/unc/f"


@pytest.mark.parametrize(
    ("mapping", "expected"),
    [
        (
            PathMapping("/media/tv/", "/mnt/tv"),
            ViewColumns("/media/tv", "/mnt/tv", "/media/tv", False, "/mnt/tv", "/"),
        ),
        (PathMapping("/", "/"), ViewColumns("/", "/", "", False, "", "/")),
        (
            PathMapping("d:/Media/TV", "C:\\"),
            ViewColumns("d:\\Media\\TV", "C:\\", "d:/media/tv", True, "C:", "\\"),
        ),
        (PathMapping("C:\\", "/m"), ViewColumns("C:\\", "/m", "c:", True, "/m", "/")),
        (
            PathMapping("\\/NAS/Médias", "\\\\fs\\vol\\"),
            ViewColumns(
                "\\\\NAS\\Médias", "\\\\fs\\vol", "//nas/médias", True, "\\\\fs\\vol", "\\"
            ),
        ),
    ],
)
def test_view_columns(mapping: PathMapping, expected: ViewColumns) -> None:
    assert view_columns(mapping) == expected


def test_invalid_path_mapping_is_value_error() -> None:
    with pytest.raises(ValueError, match="must be an absolute path"):
        validate_mapping("relative", "/mnt")


def test_mapper_validates_mappings() -> None:
    with pytest.raises(InvalidPathMapping, match="The local prefix 'relative'"):
        PathMapper([PathMapping("/media", "relative")])


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("/media/tv", "/media/tv/"),
        ("/media/tv", " /media//tv "),
        ("D:\\Media", "d:/media/"),
        ("\\\\NAS\\Share", "\\\\nas\\share\\"),
    ],
)
def test_duplicate_plex_prefixes_are_rejected(first: str, second: str) -> None:
    with pytest.raises(InvalidPathMapping, match="is mapped more than once"):
        _mapper((first, "/a"), (second, "/b"))


def test_posix_prefixes_differing_in_case_are_distinct() -> None:
    mapper = _mapper(("/Media", "/upper"), ("/media", "/lower"))
    assert mapper.resolve("/Media/x") == "/upper/x"
    assert mapper.resolve("/media/x") == "/lower/x"


def test_mapper_accepts_a_generator_once() -> None:
    mapper = PathMapper(validate_mapping(p, loc) for p, loc in [("/a", "/x"), ("/b", "/y")])
    assert mapper.resolve("/b/c") == "/y/c"
    assert len(mapper.mappings) == 2


def test_resolve_local_path_convenience() -> None:
    mappings = [PathMapping("/media/tv", "/mnt/tv"), PathMapping("/media", "/mnt/all")]
    assert resolve_local_path(mappings, "/media/tv/x.mkv") == "/mnt/tv/x.mkv"
    assert resolve_local_path(mappings, "/media/y.mkv") == "/mnt/all/y.mkv"
    assert resolve_local_path(mappings, "/srv/y.mkv") is None
    assert resolve_local_path([], "/srv/y.mkv") is None


def test_resolving_many_paths_is_fast() -> None:
    mapper = _mapper(
        ("/data/tv", "/mnt/tv"),
        ("/data/movies", "/mnt/movies"),
        ("D:\\Media", "/mnt/windows"),
        ("/", "/mnt/root"),
    )
    paths = [f"/data/tv/Show {n % 50}/Season 01/Episode {n}.mkv" for n in range(100_000)]
    start = time.perf_counter()
    resolved = [mapper.resolve(path) for path in paths]
    elapsed = time.perf_counter() - start
    assert resolved[7] == "/mnt/tv/Show 7/Season 01/Episode 7.mkv"
    assert all(path is not None for path in resolved)
    # Generous bound: a regression to per-call validation or regex compilation would blow it.
    assert elapsed < 5.0


COVERAGE_CASES = [
    ("/data/movies", "/data/movies", Coverage.WHOLE),
    ("/data/movies/", "/data//movies/", Coverage.WHOLE),  # empty components are dropped
    ("/data", "/data/movies", Coverage.WHOLE),  # a folder above
    ("/", "/data/tv", Coverage.WHOLE),
    ("/data/tv/Anime", "/data/tv", Coverage.PART),  # a folder inside
    ("/data/tv", "/data/tv2", Coverage.NONE),  # whole names only
    ("/data/mov", "/data/movies", Coverage.NONE),
    ("/data/movies", "/data/tv", Coverage.NONE),
    ("/data/tv/Anime", "/data/movies", Coverage.NONE),
    ("/Data/movies", "/data/movies", Coverage.NONE),  # POSIX names keep their case
    ("/data/a\\b", "/data/a\\b/c", Coverage.WHOLE),  # a backslash is part of a POSIX name
    ("/data/a", "/data/a\\b", Coverage.NONE),
    ("D:\\Media", "d:/media/Movies", Coverage.WHOLE),  # Windows: case and separators
    ("D:\\Media\\TV\\Anime", "D:\\media\\tv", Coverage.PART),
    ("D:\\Media", "E:\\Media", Coverage.NONE),
    ("D:\\Média", "d:\\MÉDIA", Coverage.NONE),  # only ASCII case is ignored
    ("\\\\nas\\share", "\\\\NAS\\Share\\tv", Coverage.WHOLE),
    ("\\\\nas\\share\\tv", "//nas/share", Coverage.PART),
    ("\\\\srv\\share", "\\\\?\\srv\\share", Coverage.NONE),  # extended-length path
    ("/data", "D:\\data", Coverage.NONE),  # another style
    ("D:\\Media", "/Media", Coverage.NONE),
    ("/data/movies", "", Coverage.NONE),
    ("/data/movies", "/data/movies\x00", Coverage.NONE),
    ("/data/movies", "data/movies", Coverage.NONE),  # not absolute
]


@pytest.mark.parametrize(("plex_prefix", "folder", "expected"), COVERAGE_CASES)
def test_how_a_mapping_covers_a_folder(plex_prefix: str, folder: str, expected: Coverage) -> None:
    assert coverage(plex_prefix, folder) is expected


@pytest.mark.parametrize(
    ("plex_prefix", "folder", "expected"),
    [case for case in COVERAGE_CASES if case[1] and "\x00" not in case[1]],
)
def test_coverage_agrees_with_resolving(plex_prefix: str, folder: str, expected: Coverage) -> None:
    """A file in a wholly covered folder resolves; in an unrelated one it does not."""
    mapper = _mapper((plex_prefix, "/mnt"))
    resolved = mapper.resolve(folder.rstrip("/\\") + "/file.mkv")
    if expected is Coverage.WHOLE:
        assert resolved is not None
    else:
        # Covered in part: the folder's own files lie outside the prefix.
        assert resolved is None


def test_coverage_refuses_an_unusable_prefix() -> None:
    with pytest.raises(InvalidPathMapping, match="must be an absolute path"):
        coverage("data", "/data")


@pytest.mark.parametrize(
    ("value", "side", "expected"),
    [
        (" /data//movies/ ", "Plex", "/data/movies"),
        ("d:/media/", "local", "d:\\media"),
        ("\\\\nas/Share/", "Plex", "\\\\nas\\Share"),
    ],
)
def test_check_prefix_returns_the_canonical_form(value: str, side: str, expected: str) -> None:
    assert check_prefix(value, side) == expected


@pytest.mark.parametrize(
    ("value", "side", "message"),
    [
        ("data", "Plex", "The Plex prefix 'data' must be an absolute path"),
        ("", "local", "The local prefix must not be empty"),
        ("/a/../b", "local", "The local prefix '/a/../b' must not contain '..' components"),
    ],
)
def test_check_prefix_refuses_as_validate_mapping_does(value: str, side: str, message: str) -> None:
    with pytest.raises(InvalidPathMapping) as err:
        check_prefix(value, side)
    assert str(err.value).startswith(message)
    pair = (value, "/mnt") if side == "Plex" else ("/media", value)
    with pytest.raises(InvalidPathMapping) as same:
        validate_mapping(*pair)
    assert str(same.value) == str(err.value)
