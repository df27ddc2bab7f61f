"""GDM searches against a responder on loopback, and the parsing of answers."""

from __future__ import annotations

import pytest

from custom_components.retrovue.engine.plex.gdm import (
    SEARCH,
    GdmError,
    GdmServer,
    _Collector,
    async_search,
    parse_reply,
)
from tests.emulator.gdm import GdmAnswer, GdmResponder

ANSWER = GdmAnswer("0123abcd", "Den", 32400).render()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (ANSWER, GdmServer("0123abcd", "Den", "192.168.1.20", 32400, "1.41.0.8992-8463ad060")),
        (
            b"HTTP/1.0 200 OK\r\ncontent-type: PLEX/MEDIA-SERVER\r\nresource-identifier: x\r\n",
            GdmServer("x", "192.168.1.20", "192.168.1.20", 32400),
        ),
        (ANSWER.replace(b"Port: 32400", b"Port: 99999"), "port 32400"),
        (ANSWER.replace(b"Port: 32400", b"Port: http"), "port 32400"),
        (ANSWER.replace(b"Port: 32400", b"Port: 32401"), "port 32401"),
        (ANSWER.replace(b"200 OK", b"404 Not Found"), None),
        (ANSWER.replace(b"plex/media-server", b"plex/media-player"), None),
        (ANSWER.replace(b"Resource-Identifier: 0123abcd", b"Resource-Identifier:"), None),
        (b"", None),
        (ANSWER + b"x" * 5000, None),
        (ANSWER.replace(b"Name: Den", b"Name: Caf\xc3\xa9 \xff"), "name Café \ufffd"),
    ],
    ids=[
        "answer",
        "lower_case_headers",
        "port_out_of_range",
        "port_not_a_number",
        "other_port",
        "not_ok",
        "a_player",
        "no_identifier",
        "empty",
        "too_large",
        "bad_utf8",
    ],
)
def test_parse_reply(data: bytes, expected: GdmServer | str | None) -> None:
    server = parse_reply(data, "192.168.1.20")
    if isinstance(expected, str):
        assert server is not None
        what, _, value = expected.partition(" ")
        assert str(getattr(server, what)) == value
    else:
        assert server == expected


def test_urls() -> None:
    assert GdmServer("x", "Den", "192.168.1.20", 32400).url == "http://192.168.1.20:32400"
    assert GdmServer("x", "Den", "fd00::20", 32400).url == "http://[fd00::20]:32400"


async def test_search_collects_the_servers_that_answer() -> None:
    async with GdmResponder(
        [
            GdmAnswer("machine-2", "Living Room", 32400),
            GdmAnswer("machine-1", "Attic", 32401),
            # Answers twice (two interfaces): kept once.
            GdmAnswer("machine-1", "Attic", 32401),
            GdmAnswer("player-1", "TV", 32500, content_type="plex/media-player"),
        ]
    ) as responder:
        responder.raw_answers.append(b"\x00\x01 not GDM")
        servers = await async_search(target=responder.target, window=0.2)
    assert responder.searches == [SEARCH]
    assert SEARCH == b"M-SEARCH * HTTP/1.1\r\n\r\n"
    assert [(s.name, s.machine_identifier, s.url) for s in servers] == [
        ("Attic", "machine-1", "http://127.0.0.1:32401"),
        ("Living Room", "machine-2", "http://127.0.0.1:32400"),
    ]


async def test_search_without_answers() -> None:
    async with GdmResponder() as responder:
        assert await async_search(target=responder.target, window=0.05) == []
    # Nobody listens here: the search ends after its window all the same.
    assert await async_search(target=("127.0.0.1", 9), window=0.05) == []


async def test_search_without_a_socket() -> None:
    # TEST-NET-1 is no address of this machine: the socket cannot be bound to it.
    with pytest.raises(GdmError, match="cannot open a UDP socket"):
        await async_search(target=("127.0.0.1", 9), window=0.05, local_address="192.0.2.1")


def test_errors_from_the_network_do_not_end_a_search() -> None:
    collector = _Collector()
    collector.error_received(ConnectionRefusedError("port unreachable"))
    collector.datagram_received(ANSWER, ("192.168.1.20", 32414))
    assert list(collector.servers) == ["0123abcd"]
