"""One poisoned entry is an error of its own: the page, the run and the library go on."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from custom_components.retrovue.engine.plex import PlexClient
from custom_components.retrovue.engine.plex.models import ItemKind, ItemProblem
from custom_components.retrovue.engine.plex.parse import parse_listing
from custom_components.retrovue.engine.store import Catalog
from tests.emulator import EmuServer, generate_server
from tests.engine.helpers import rows, states, sync_all
from tests.reliability.invariants import assert_invariants
from tests.reliability.poison import JSON_POISONS, Poison, PoisonedEmulator, poison_body

TOKEN = "poison-token"
XML_POISONS = (Poison.FLOAT_1E300, Poison.INT_2_64, Poison.DEEP_XML, Poison.INVALID_UTF8)


def _listing(fmt: str) -> bytes:
    if fmt == "json":
        entries = ",".join(
            f'{{"ratingKey":"{key}","title":"Film {key}","type":"movie","year":2000,'
            f'"duration":5400000,"Media":[{{"id":{key},"Part":[{{"id":{key},'
            f'"file":"/data/movies/{key}.mkv","size":1000}}]}}]}}'
            for key in (1, 2, 3)
        )
        return f'{{"MediaContainer":{{"size":3,"totalSize":3,"Metadata":[{entries}]}}}}'.encode()
    entries = "".join(
        f'<Video ratingKey="{key}" title="Film {key}" type="movie" year="2000" '
        f'duration="5400000"><Media id="{key}"><Part id="{key}" file="/data/movies/{key}.mkv" '
        f'size="1000"/></Media></Video>'
        for key in (1, 2, 3)
    )
    return f'<MediaContainer size="3" totalSize="3">{entries}</MediaContainer>'.encode()


@pytest.mark.parametrize(
    ("fmt", "poison"),
    [("json", poison) for poison in (*JSON_POISONS, Poison.DEEP_XML)]
    + [("xml", poison) for poison in XML_POISONS],
)
def test_a_poisoned_entry_leaves_the_others_whole(fmt: str, poison: Poison) -> None:
    body = poison_body(_listing(fmt), "2", poison)
    applies = (fmt, poison) not in {("json", Poison.DEEP_XML)}
    assert (body != _listing(fmt)) is applies
    page = parse_listing(body, f"application/{fmt}", kinds=(ItemKind.MOVIE,))
    good = {item.rating_key for item in page.items if not item.warnings}
    assert {"1", "3"} <= good
    assert page.received == 3
    assert page.total_size == 3
    if not applies or (fmt, poison) == ("xml", Poison.DEEP_XML):
        assert good == {"1", "2", "3"}  # nothing to read wrongly: the nested element is ignored
        return
    flagged = [p for p in page.problems if p.rating_key == "2"] + [
        item for item in page.items if item.rating_key == "2" and item.warnings
    ]
    assert len(flagged) == 1, (page.items, page.problems)
    if isinstance(flagged[0], ItemProblem):
        assert flagged[0].message.startswith("unreadable entry")
    else:
        assert "duration" in flagged[0].warnings[0]
        assert flagged[0].duration is None


@pytest.fixture
def library() -> EmuServer:
    return generate_server(seed=3, movies=12, shows=2, token=TOKEN, friendly_name="Poisoned")


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize("deep", [False, True], ids=["light", "deep"])
async def test_poisoned_entries_are_counted_and_a_removal_is_still_found(
    library: EmuServer,
    session: aiohttp.ClientSession,
    catalog: Catalog,
    fmt: str,
    deep: bool,
) -> None:
    library.force_xml = fmt == "xml"
    movies = [item.rating_key for item in library.items.values() if item.type == "movie"]
    poisons = JSON_POISONS if fmt == "json" else XML_POISONS
    poisoned = {str(key): poison for key, poison in zip(movies, poisons, strict=False)}
    removed = str(movies[-1])
    async with PoisonedEmulator(library, poisons={}) as emulator:
        client = PlexClient(session, emulator.url, TOKEN, page_size=5, retries=0, backoff=0)
        _, summaries = await sync_all(client, catalog)
        assert all(summary.status == "ok" for summary in summaries)

        emulator.poisons.update(poisoned)
        library.remove_item(removed)
        # Full listings of the movies, so the removal can be found.
        _, summaries = await sync_all(client, catalog, deep=True)
        movie_run = next(s for s in summaries if s.library_key == "1")
        assert movie_run.status == "ok", movie_run.error
        # An element nested deep in XML is only an unknown child: nothing to count.
        counted = {key for key, poison in poisoned.items() if poison is not Poison.DEEP_XML}
        assert movie_run.errors == len(counted)
        assert movie_run.missing_promoted == 1
        found = await states(catalog, library.machine_identifier)
        assert found[removed] == "MISSING"
        assert all(found[key] == "ACTIVE" for key in poisoned), found
        errors = dict(
            await rows(catalog, "SELECT rating_key, last_error FROM items WHERE error_count > 0")
        )
        assert set(errors) == counted, errors
        await assert_invariants(catalog)

        # The poisons gone, the next run reads the entries again and the errors stop.
        emulator.poisons.clear()
        _, summaries = await sync_all(client, catalog, deep=deep)
        assert all(summary.status == "ok" and summary.errors == 0 for summary in summaries)
        await assert_invariants(catalog)
