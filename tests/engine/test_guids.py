"""Tests for the Plex GUID parser."""

from __future__ import annotations

import pytest

from custom_components.retrovue.engine.plex.guids import (
    ExternalId,
    _parse_guid,
    guid_rows,
    parse_guid,
    parse_guids,
    primary_external_id,
)
from tests.emulator import generate_server


@pytest.mark.parametrize(
    ("guid", "expected", "uri"),
    [
        (
            "plex://movie/5d776825880197001ec967c6",
            ExternalId("plex", "movie/5d776825880197001ec967c6"),
            "plex://movie/5d776825880197001ec967c6",
        ),
        (
            "plex://show/5d9c086c46115600200aa2fe",
            ExternalId("plex", "show/5d9c086c46115600200aa2fe"),
            "plex://show/5d9c086c46115600200aa2fe",
        ),
        (
            "plex://season/602e67d31d3358002c411c39",
            ExternalId("plex", "season/602e67d31d3358002c411c39"),
            "plex://season/602e67d31d3358002c411c39",
        ),
        (
            "plex://episode/5d9c1275e98e47001eb84029",
            ExternalId("plex", "episode/5d9c1275e98e47001eb84029"),
            "plex://episode/5d9c1275e98e47001eb84029",
        ),
        ("imdb://tt0133093", ExternalId("imdb", "tt0133093"), "imdb://tt0133093"),
        ("tmdb://603", ExternalId("tmdb", "603"), "tmdb://603"),
        ("tvdb://81189", ExternalId("tvdb", "81189"), "tvdb://81189"),
    ],
)
def test_new_agent_guids(guid: str, expected: ExternalId, uri: str) -> None:
    parsed = parse_guid(guid)
    assert parsed == expected
    assert parsed is not None
    assert parsed.uri == uri
    assert parsed.raw == guid


@pytest.mark.parametrize(
    ("guid", "expected", "uri"),
    [
        (
            "com.plexapp.agents.imdb://tt0133093?lang=en",
            ExternalId("imdb", "tt0133093"),
            "imdb://tt0133093",
        ),
        (
            "com.plexapp.agents.themoviedb://603?lang=en",
            ExternalId("tmdb", "603"),
            "tmdb://603",
        ),
        ("com.plexapp.agents.tmdb://603?lang=de", ExternalId("tmdb", "603"), "tmdb://603"),
        (
            "com.plexapp.agents.themoviedb://1399/2/3?lang=en",
            ExternalId("tmdb", "1399", 2, 3),
            "tmdb://1399/2/3",
        ),
        (
            "com.plexapp.agents.thetvdb://74205?lang=en",
            ExternalId("tvdb", "74205"),
            "tvdb://74205",
        ),
        (
            "com.plexapp.agents.thetvdb://74205/1?lang=en",
            ExternalId("tvdb", "74205", 1),
            "tvdb://74205/1",
        ),
        (
            "com.plexapp.agents.thetvdb://74205/1/1?lang=en",
            ExternalId("tvdb", "74205", 1, 1),
            "tvdb://74205/1/1",
        ),
        (
            "com.plexapp.agents.thetvdb://74205/0/12?lang=en",
            ExternalId("tvdb", "74205", 0, 12),
            "tvdb://74205/0/12",
        ),
        (
            "com.plexapp.agents.thetvdb://74205/01/002",
            ExternalId("tvdb", "74205", 1, 2),
            "tvdb://74205/1/2",
        ),
        (
            "com.plexapp.agents.hama://anidb-123/1/1?lang=en",
            ExternalId("anidb", "123", 1, 1),
            "anidb://123/1/1",
        ),
        (
            "com.plexapp.agents.hama://anidb-123?lang=en",
            ExternalId("anidb", "123"),
            "anidb://123",
        ),
        (
            "com.plexapp.agents.hama://tvdb-81189/1/5?lang=en",
            ExternalId("tvdb", "81189", 1, 5),
            "tvdb://81189/1/5",
        ),
        (
            "com.plexapp.agents.hama://tvdb2-81189?lang=en",
            ExternalId("tvdb", "81189"),
            "tvdb://81189",
        ),
        (
            "com.plexapp.agents.hama://something-else?lang=en",
            ExternalId("hama", "something-else"),
            "hama://something-else",
        ),
        (
            "com.plexapp.agents.none://8f1b6c3e1c4f5e2a?lang=xn",
            ExternalId("none", "8f1b6c3e1c4f5e2a"),
            "none://8f1b6c3e1c4f5e2a",
        ),
        (
            "tv.plex.agents.none://12345",
            ExternalId("none", "12345"),
            "none://12345",
        ),
        ("local://123", ExternalId("local", "123"), "local://123"),
        ("collection://abc123", ExternalId("collection", "abc123"), "collection://abc123"),
        (
            "com.plexapp.agents.foo://x?lang=en",
            ExternalId("foo", "x"),
            "foo://x",
        ),
        (
            "com.plexapp.agents.localmedia://42",
            ExternalId("localmedia", "42"),
            "localmedia://42",
        ),
        ("com.example.bar://y", ExternalId("bar", "y"), "bar://y"),
        ("custom://z", ExternalId("custom", "z"), "custom://z"),
    ],
)
def test_legacy_and_other_guids(guid: str, expected: ExternalId, uri: str) -> None:
    parsed = parse_guid(guid)
    assert parsed == expected
    assert parsed is not None
    assert parsed.uri == uri
    assert parsed.raw == guid


@pytest.mark.parametrize(
    ("guid", "expected"),
    [
        ("  imdb://tt0133093  ", ExternalId("imdb", "tt0133093")),
        ("IMDB://tt0133093", ExternalId("imdb", "tt0133093")),
        ("imdb://TT0133093", ExternalId("imdb", "tt0133093")),
        ("COM.PLEXAPP.AGENTS.TheTVDB://74205/1/1?lang=en", ExternalId("tvdb", "74205", 1, 1)),
        (
            "Plex://movie/5d776825880197001ec967c6",
            ExternalId("plex", "movie/5d776825880197001ec967c6"),
        ),
        ("tmdb://603/", ExternalId("tmdb", "603")),
        ("tmdb://603#frag", ExternalId("tmdb", "603")),
        ("tvdb://81189?lang=en&x=1", ExternalId("tvdb", "81189")),
    ],
)
def test_lenient_normalization(guid: str, expected: ExternalId) -> None:
    assert parse_guid(guid) == expected


def test_raw_keeps_the_input_and_is_not_compared() -> None:
    parsed = parse_guid(" com.plexapp.agents.imdb://tt0133093?lang=en ")
    assert parsed is not None
    assert parsed.raw == " com.plexapp.agents.imdb://tt0133093?lang=en "
    assert parsed == ExternalId("imdb", "tt0133093", raw="other")
    assert hash(parsed) == hash(ExternalId("imdb", "tt0133093"))


@pytest.mark.parametrize(
    "guid",
    [
        None,
        "",
        "   ",
        "garbage",
        "tt0133093",
        "://603",
        "imdb://",
        "imdb://   ",
        "imdb://?lang=en",
        "com.plexapp.agents.thetvdb://?lang=en",
        "com.plexapp.agents.://123",
        "tv.plex.agents.://123",
        "not a scheme://123",
        "1imdb://tt1",
        "imdb://tt 0133093",
        "imdb://tt\x000133093",
        "com.plexapp.agents.thetvdb://74205/one/1?lang=en",
        "com.plexapp.agents.thetvdb://74205/1/1/1?lang=en",
        "com.plexapp.agents.thetvdb://74205/-1/1",
        "com.plexapp.agents.thetvdb://74205/1/²",
        "com.plexapp.agents.thetvdb:///1/1",
        "com.plexapp.agents.hama://anidb-/1/1",
        "com.plexapp.agents.hama://anidb-123/x",
    ],
)
def test_unparseable_guids(guid: str | None) -> None:
    assert parse_guid(guid) is None


def test_uri_formats_season_without_episode() -> None:
    assert ExternalId("tvdb", "74205", season=0).uri == "tvdb://74205/0"
    assert ExternalId("tvdb", "74205").uri == "tvdb://74205"
    assert ExternalId("tvdb", "74205", 3, 4).uri == "tvdb://74205/3/4"


def test_parse_guids_primary_first_and_deduplicated() -> None:
    ids = parse_guids(
        "plex://movie/5d776825880197001ec967c6",
        ["imdb://tt0133093", "tmdb://603", "imdb://tt0133093", "garbage", "", "TMDB://603"],
    )
    assert [external.uri for external in ids] == [
        "plex://movie/5d776825880197001ec967c6",
        "imdb://tt0133093",
        "tmdb://603",
    ]


def test_parse_guids_dedupes_primary_against_extra() -> None:
    ids = parse_guids("com.plexapp.agents.imdb://tt0133093?lang=en", ["imdb://tt0133093"])
    assert len(ids) == 1
    assert ids[0].raw == "com.plexapp.agents.imdb://tt0133093?lang=en"


def test_parse_guids_keeps_distinct_episode_ids() -> None:
    ids = parse_guids(
        "com.plexapp.agents.thetvdb://74205/1/1?lang=en",
        ["tvdb://74205", "com.plexapp.agents.thetvdb://74205/1/2?lang=en"],
    )
    assert [external.uri for external in ids] == [
        "tvdb://74205/1/1",
        "tvdb://74205",
        "tvdb://74205/1/2",
    ]


@pytest.mark.parametrize(
    ("primary", "extra", "expected"),
    [
        (None, [], ()),
        ("", [], ()),
        ("garbage", ["also garbage"], ()),
        (None, ["tmdb://603"], (ExternalId("tmdb", "603"),)),
        ("local://1", [], (ExternalId("local", "1"),)),
    ],
)
def test_parse_guids_edge_cases(
    primary: str | None, extra: list[str], expected: tuple[ExternalId, ...]
) -> None:
    assert parse_guids(primary, extra) == expected


def test_parse_guids_accepts_a_generator() -> None:
    ids = parse_guids(None, (guid for guid in ("tvdb://1", "tvdb://2")))
    assert [external.value for external in ids] == ["1", "2"]


_MATRIX = (
    ExternalId("plex", "movie/5d776825880197001ec967c6"),
    ExternalId("tvdb", "81189"),
    ExternalId("tmdb", "603"),
    ExternalId("imdb", "tt0133093"),
)


@pytest.mark.parametrize(
    ("ids", "prefer", "expected"),
    [
        (_MATRIX, None, ExternalId("imdb", "tt0133093")),
        (_MATRIX[:3], None, ExternalId("tmdb", "603")),
        (_MATRIX[:2], None, ExternalId("tvdb", "81189")),
        (_MATRIX[:1], None, ExternalId("plex", "movie/5d776825880197001ec967c6")),
        ((), None, None),
        ((ExternalId("local", "1"), ExternalId("none", "x")), None, None),
        (_MATRIX, ("tvdb", "imdb"), ExternalId("tvdb", "81189")),
        (_MATRIX, ("PLEX",), ExternalId("plex", "movie/5d776825880197001ec967c6")),
        (_MATRIX, ("anidb",), None),
        (_MATRIX, (), None),
        (
            (ExternalId("tmdb", "1"), ExternalId("tmdb", "2")),
            None,
            ExternalId("tmdb", "1"),
        ),
    ],
)
def test_primary_external_id(
    ids: tuple[ExternalId, ...], prefer: tuple[str, ...] | None, expected: ExternalId | None
) -> None:
    if prefer is None:
        assert primary_external_id(ids) == expected
    else:
        assert primary_external_id(ids, prefer) == expected


def test_primary_external_id_accepts_a_generator() -> None:
    chosen = primary_external_id(iter(parse_guids("plex://show/abc", ["tvdb://81189"])))
    assert chosen == ExternalId("tvdb", "81189")


@pytest.mark.parametrize(
    "guid",
    [
        "plex://movie/5d776825880197001ec967c6",
        "imdb://tt0133093",
        "imdb://TT0133093",
        "tmdb://603",
        "tvdb://81189",
        "tvdb://81189/1/2",
        "plex://movie/5D776825",
        "imdb://tt0133093?lang=en",
        "IMDB://tt1",
        "tmdb://",
    ],
)
def test_plain_guids_take_the_short_way_to_the_same_result(guid: str) -> None:
    general = _parse_guid(guid)
    assert parse_guid(guid) == general
    if general is not None:
        assert parse_guid(guid).raw == guid  # type: ignore[union-attr]


def test_generated_guids_parse_the_same_either_way() -> None:
    server = generate_server(seed=3, movies=60, shows=8)
    guids = [g for item in server.items.values() for g in (item.guid, *item.ext_guids) if g]
    assert len(guids) > 100
    assert [parse_guid(g) for g in guids] == [_parse_guid(g) for g in guids]
    assert all(parse_guid(g) is not None for g in guids)


def _rows_the_long_way(primary: str | None, extra: list[str]) -> list[tuple[str, str, str]]:
    return [(ext.uri, ext.provider, ext.value) for ext in parse_guids(primary, extra)]


@pytest.mark.parametrize(
    ("primary", "extra"),
    [
        (None, []),
        ("garbage", ["", "also garbage"]),
        ("plex://movie/5d776825", ["imdb://TT0133093", "tmdb://603", "imdb://tt0133093"]),
        ("com.plexapp.agents.imdb://tt0133093?lang=en", ["imdb://tt0133093", "tvdb://81189/1/2"]),
        ("com.plexapp.agents.thetvdb://74205/1/1?lang=en", ["tvdb://74205", "tvdb://74205/1/1"]),
        ("com.plexapp.agents.hama://anidb-123/1/1", ["local://1", "tmdb://"]),
    ],
)
def test_guid_rows_are_the_parsed_ids(primary: str | None, extra: list[str]) -> None:
    assert guid_rows(primary, extra) == _rows_the_long_way(primary, extra)


def test_guid_rows_of_generated_items_are_the_parsed_ids() -> None:
    server = generate_server(seed=5, movies=60, shows=8)
    for item in server.items.values():
        rows = guid_rows(item.guid, item.ext_guids)
        assert rows == _rows_the_long_way(item.guid, list(item.ext_guids))
        assert len({uri for uri, _, _ in rows}) == len(rows)
