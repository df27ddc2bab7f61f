"""Take a folder off a running emulator and bring it back: a drive or share dropping, for demos.

`python -m tests.emulator --control-port 32499` serves these on 127.0.0.1 beside the emulator;
`scripts/demo-folder` calls them:

- `POST /take?folder=/data/tv/Show`: every movie and episode whose files all lie under the
  folder leaves the server (a show or season left empty goes with it), as Plex drops items
  whose files vanished when it empties the trash after a scan. Answers the titles taken.
- `POST /restore`: everything taken comes back with the same ratingKeys, as after a rescan.
"""

from __future__ import annotations

from aiohttp import web

from .model import EPISODE, MOVIE, SEASON, SHOW, EmuItem, EmuServer


def _under(file: str, folder: str) -> bool:
    folder = folder.rstrip("/\\")
    return file.startswith((folder + "/", folder + "\\"))


def take_folder(server: EmuServer, folder: str) -> list[list[EmuItem]]:
    """Remove what lies under `folder`; return what `EmuServer.restore_items` puts back."""
    return [server.take_item(rating_key) for rating_key in _roots(server, folder)]


def _roots(server: EmuServer, folder: str) -> list[int]:
    """Return the ratingKeys of the topmost items whose files all lie under `folder`."""

    def inside(item: EmuItem) -> bool:
        files = [part.file for media in item.media for part in media.parts]
        return bool(files) and all(_under(file, folder) for file in files)

    roots: list[EmuItem] = []
    for item in list(server.items.values()):
        if item.type == MOVIE and inside(item):
            roots.append(item)
        elif item.type == SHOW:
            leaves = list(server.leaves(item))
            if leaves and all(inside(leaf) for leaf in leaves):
                roots.append(item)
                continue
            for season_rk in item.children:
                season = server.items[season_rk]
                episodes = [server.items[rk] for rk in season.children]
                if episodes and all(inside(episode) for episode in episodes):
                    roots.append(season)
                else:
                    roots.extend(episode for episode in episodes if inside(episode))
    return [root.rating_key for root in roots]


def _title(server: EmuServer, item: EmuItem) -> str:
    if item.type in (EPISODE, SEASON) and (show := server.show_of(item)) is not None:
        return f"{show.title} - {item.title}"
    return item.title


_RESTORE_ORDER = {MOVIE: 0, SHOW: 0, SEASON: 1, EPISODE: 2}


class DemoControl:
    """The control endpoints of one emulated server."""

    def __init__(self, server: EmuServer) -> None:
        """Control `server`."""
        self.server = server
        self.taken: list[list[EmuItem]] = []

    def app(self) -> web.Application:
        """Return the control application."""
        app = web.Application()
        app.router.add_post("/take", self._take)
        app.router.add_post("/restore", self._restore)
        return app

    async def _take(self, request: web.Request) -> web.Response:
        folder = request.query.get("folder", "")
        if not folder.startswith(("/", "\\")) and ":" not in folder[:3]:
            return web.json_response({"error": "folder must be an absolute Plex path"}, status=400)
        titles = [
            _title(self.server, root)
            for root in (self.server.items[rk] for rk in _roots(self.server, folder))
        ]
        self.taken.extend(take_folder(self.server, folder))
        return web.json_response({"taken": titles})

    async def _restore(self, _request: web.Request) -> web.Response:
        restored = 0
        # Parents before children: a season comes back after its show was restored.
        for items in sorted(self.taken, key=lambda items: _RESTORE_ORDER[items[0].type]):
            self.server.restore_items(items, bump_updated_at=True)
            restored += 1
        self.taken.clear()
        return web.json_response({"restored": restored})
