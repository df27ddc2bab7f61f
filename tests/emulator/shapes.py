"""Build the element trees PMS answers with, from the live model."""

from __future__ import annotations

from typing import Final

from .model import (
    EPISODE,
    MOVIE,
    SEASON,
    SHOW,
    EmuItem,
    EmuMedia,
    EmuPart,
    EmuSection,
    EmuServer,
)
from .render import Node, Value

IDENTIFIER: Final = "com.plexapp.plugins.library"
MEDIA_TAG_PREFIX: Final = "/system/bundle/media/flags/"
MEDIA_TAG_VERSION: Final = 1_732_000_000

_VIDEO_PROFILES: Final = {"h264": "high", "hevc": "main 10", "mpeg4": "advanced simple"}
_CODEC_LABELS: Final = {
    "h264": "H.264",
    "hevc": "HEVC",
    "mpeg4": "MPEG-4",
    "aac": "AAC",
    "ac3": "Dolby Digital",
    "eac3": "Dolby Digital+",
    "dts": "DTS",
    "mp3": "MP3",
    "truehd": "TrueHD",
    "flac": "FLAC",
}
_CHANNEL_LABELS: Final = {1: "Mono", 2: "Stereo", 6: "5.1", 8: "7.1"}
_RES_LABELS: Final = {"4k": "4K", "1080": "1080p", "720": "720p", "480": "480p", "sd": "SD"}
_FRAME_RATES: Final = {"24p": 23.976, "25p": 25.0, "PAL": 25.0, "NTSC": 29.97, "60p": 59.94}


def _meta(rk: int) -> str:
    return f"/library/metadata/{rk}"


def part_node(part: EmuPart, media: EmuMedia, *, detail: bool) -> Node:
    """Build a Part element (Streams only in detail answers)."""
    attrs: dict[str, Value] = {
        "id": part.id,
        "key": part.key,
        "duration": part.duration,
        "file": part.file,
        "size": part.size,
        "container": part.container,
    }
    if media.video_codec in _VIDEO_PROFILES:
        attrs["videoProfile"] = _VIDEO_PROFILES[media.video_codec]
    node = Node("Part", attrs)
    if detail:
        node.children = stream_nodes(part, media)
    return node


def stream_nodes(part: EmuPart, media: EmuMedia) -> list[Node]:
    """Build plausible video, audio and (sometimes) subtitle Streams for a Part."""
    res = _RES_LABELS.get(media.video_resolution, media.video_resolution)
    vcodec = _CODEC_LABELS.get(media.video_codec, media.video_codec.upper())
    acodec = _CODEC_LABELS.get(media.audio_codec, media.audio_codec.upper())
    channels = _CHANNEL_LABELS.get(media.audio_channels, f"{media.audio_channels}ch")
    streams = [
        Node(
            "Stream",
            {
                "id": part.id * 10 + 1,
                "streamType": 1,
                "default": True,
                "codec": media.video_codec,
                "index": 0,
                "bitrate": max(media.bitrate - 640, 1),
                "frameRate": _FRAME_RATES.get(media.video_frame_rate, 23.976),
                "height": media.height,
                "width": media.width,
                "displayTitle": f"{res} ({vcodec})",
                "extendedDisplayTitle": f"{res} ({vcodec})",
            },
        ),
        Node(
            "Stream",
            {
                "id": part.id * 10 + 2,
                "streamType": 2,
                "selected": True,
                "default": True,
                "codec": media.audio_codec,
                "index": 1,
                "channels": media.audio_channels,
                "bitrate": 640 if media.audio_channels > 2 else 192,
                "language": "English",
                "languageTag": "en",
                "languageCode": "eng",
                "displayTitle": f"English ({acodec} {channels})",
                "extendedDisplayTitle": f"English ({acodec} {channels})",
            },
        ),
    ]
    if part.id % 3 == 0:
        streams.append(
            Node(
                "Stream",
                {
                    "id": part.id * 10 + 3,
                    "streamType": 3,
                    "codec": "srt",
                    "index": 2,
                    "language": "English",
                    "languageTag": "en",
                    "languageCode": "eng",
                    "displayTitle": "English (SRT External)",
                },
            )
        )
    return streams


def media_node(media: EmuMedia, *, detail: bool) -> Node:
    """Build a Media element with its Parts."""
    attrs: dict[str, Value] = {
        "id": media.id,
        "duration": media.duration,
        "bitrate": media.bitrate,
        "width": media.width,
        "height": media.height,
        "aspectRatio": media.aspect_ratio,
        "audioChannels": media.audio_channels,
        "audioCodec": media.audio_codec,
        "videoCodec": media.video_codec,
        "videoResolution": media.video_resolution,
        "container": media.container,
        "videoFrameRate": media.video_frame_rate,
    }
    if media.video_codec in _VIDEO_PROFILES:
        attrs["videoProfile"] = _VIDEO_PROFILES[media.video_codec]
    return Node("Media", attrs, [part_node(p, media, detail=detail) for p in media.parts])


def _section_attrs(attrs: dict[str, Value], section: EmuSection) -> None:
    attrs["librarySectionTitle"] = section.title
    attrs["librarySectionID"] = int(section.key) if section.key.isdigit() else section.key
    attrs["librarySectionKey"] = f"/library/sections/{section.key}"


def _watch_attrs(attrs: dict[str, Value], item: EmuItem) -> None:
    if item.view_count:
        attrs["viewCount"] = item.view_count
    if item.last_viewed_at is not None:
        attrs["lastViewedAt"] = item.last_viewed_at
    if item.view_offset:
        attrs["viewOffset"] = item.view_offset


def item_node(
    server: EmuServer, item: EmuItem, *, detail: bool = False, include_guids: bool = False
) -> Node:
    """Build a Video (movie, episode) or Directory (show, season) element."""
    if item.type == MOVIE:
        node = _movie(server, item, detail)
    elif item.type == EPISODE:
        node = _episode(server, item, detail)
    elif item.type == SEASON:
        node = _season(server, item, detail)
    else:
        node = _show(server, item, detail)
    if item.media:
        node.children.extend(media_node(m, detail=detail) for m in item.media)
    if (detail or include_guids) and item.ext_guids:
        node.children.extend(Node("Guid", {"id": g}) for g in item.ext_guids)
    if detail and item.type == SHOW and item.path:
        node.children.append(Node("Location", {"path": item.path}))
    return node


def _common_head(item: EmuItem, key: str) -> dict[str, Value]:
    return {"ratingKey": str(item.rating_key), "key": key}


def _title_attrs(attrs: dict[str, Value], item: EmuItem) -> None:
    attrs["title"] = item.title
    # PMS only sends titleSort when it differs from the title.
    if item.sort_title != item.title:
        attrs["titleSort"] = item.sort_title


def _art(attrs: dict[str, Value], item: EmuItem) -> None:
    base = _meta(item.rating_key)
    attrs["thumb"] = f"{base}/thumb/{item.updated_at}"
    attrs["art"] = f"{base}/art/{item.updated_at}"


def _movie(server: EmuServer, item: EmuItem, detail: bool) -> Node:
    attrs = _common_head(item, _meta(item.rating_key))
    attrs["guid"] = item.guid
    if item.studio:
        attrs["studio"] = item.studio
    attrs["type"] = MOVIE
    _title_attrs(attrs, item)
    if detail:
        _section_attrs(attrs, server.sections[item.section_key])
    if item.content_rating:
        attrs["contentRating"] = item.content_rating
    attrs["summary"] = item.summary
    if item.rating is not None:
        attrs["rating"] = item.rating
    if item.year is not None:
        attrs["year"] = item.year
    _art(attrs, item)
    if item.duration is not None:
        attrs["duration"] = item.duration
    if item.originally_available_at:
        attrs["originallyAvailableAt"] = item.originally_available_at
    attrs["addedAt"] = item.added_at
    attrs["updatedAt"] = item.updated_at
    _watch_attrs(attrs, item)
    return Node("Video", attrs, group="Metadata")


def _episode(server: EmuServer, item: EmuItem, detail: bool) -> Node:
    season = server.items[item.parent_rk or -1]
    show = server.items[season.parent_rk or -1]
    attrs = _common_head(item, _meta(item.rating_key))
    attrs["parentRatingKey"] = str(season.rating_key)
    attrs["grandparentRatingKey"] = str(show.rating_key)
    attrs["guid"] = item.guid
    attrs["parentGuid"] = season.guid
    attrs["grandparentGuid"] = show.guid
    attrs["type"] = EPISODE
    _title_attrs(attrs, item)
    attrs["grandparentKey"] = _meta(show.rating_key)
    attrs["parentKey"] = _meta(season.rating_key)
    if detail:
        _section_attrs(attrs, server.sections[item.section_key])
    attrs["grandparentTitle"] = show.title
    attrs["parentTitle"] = season.title
    if show.content_rating:
        attrs["contentRating"] = show.content_rating
    attrs["summary"] = item.summary
    if item.index is not None:
        attrs["index"] = item.index
    if season.index is not None:
        attrs["parentIndex"] = season.index
    if item.originally_available_at:
        attrs["year"] = int(item.originally_available_at[:4])
    _art(attrs, item)
    attrs["parentThumb"] = f"{_meta(season.rating_key)}/thumb/{season.updated_at}"
    attrs["grandparentThumb"] = f"{_meta(show.rating_key)}/thumb/{show.updated_at}"
    attrs["grandparentArt"] = f"{_meta(show.rating_key)}/art/{show.updated_at}"
    if item.duration is not None:
        attrs["duration"] = item.duration
    if item.originally_available_at:
        attrs["originallyAvailableAt"] = item.originally_available_at
    attrs["addedAt"] = item.added_at
    attrs["updatedAt"] = item.updated_at
    _watch_attrs(attrs, item)
    return Node("Video", attrs, group="Metadata")


def _season(server: EmuServer, item: EmuItem, detail: bool) -> Node:
    show = server.items[item.parent_rk or -1]
    attrs = _common_head(item, f"{_meta(item.rating_key)}/children")
    attrs["parentRatingKey"] = str(show.rating_key)
    attrs["guid"] = item.guid
    attrs["parentGuid"] = show.guid
    attrs["type"] = SEASON
    attrs["title"] = item.title
    attrs["parentKey"] = _meta(show.rating_key)
    if detail:
        _section_attrs(attrs, server.sections[item.section_key])
    attrs["parentTitle"] = show.title
    attrs["summary"] = item.summary
    if item.index is not None:
        attrs["index"] = item.index
    _art(attrs, item)
    attrs["parentThumb"] = f"{_meta(show.rating_key)}/thumb/{show.updated_at}"
    attrs["leafCount"] = len(item.children)
    attrs["viewedLeafCount"] = server.viewed_leaf_count(item)
    attrs["addedAt"] = item.added_at
    attrs["updatedAt"] = item.updated_at
    return Node("Directory", attrs, group="Metadata")


def _show(server: EmuServer, item: EmuItem, detail: bool) -> Node:
    attrs = _common_head(item, f"{_meta(item.rating_key)}/children")
    attrs["guid"] = item.guid
    if item.studio:
        attrs["studio"] = item.studio
    attrs["type"] = SHOW
    _title_attrs(attrs, item)
    if detail:
        _section_attrs(attrs, server.sections[item.section_key])
    if item.content_rating:
        attrs["contentRating"] = item.content_rating
    attrs["summary"] = item.summary
    if item.rating is not None:
        attrs["rating"] = item.rating
    if item.year is not None:
        attrs["year"] = item.year
    _art(attrs, item)
    attrs["banner"] = f"{_meta(item.rating_key)}/banner/{item.updated_at}"
    attrs["theme"] = f"{_meta(item.rating_key)}/theme/{item.updated_at}"
    if item.duration is not None:
        attrs["duration"] = item.duration
    if item.originally_available_at:
        attrs["originallyAvailableAt"] = item.originally_available_at
    attrs["leafCount"] = server.leaf_count(item)
    attrs["viewedLeafCount"] = server.viewed_leaf_count(item)
    attrs["childCount"] = len(item.children)
    attrs["addedAt"] = item.added_at
    attrs["updatedAt"] = item.updated_at
    return Node("Directory", attrs, group="Metadata")


def all_episodes_node(server: EmuServer, show: EmuItem) -> Node:
    """Build the "All episodes" pseudo-directory PMS puts first in a show's children."""
    return Node(
        "Directory",
        {
            "leafCount": server.leaf_count(show),
            "thumb": f"{_meta(show.rating_key)}/thumb/{show.updated_at}",
            "viewedLeafCount": server.viewed_leaf_count(show),
            "key": f"{_meta(show.rating_key)}/allLeaves",
            "title": "All episodes",
        },
        group="Metadata",
    )


# ------------------------------------------------------------------ containers


def container(attrs: dict[str, Value], children: list[Node] | None = None) -> Node:
    """Build a MediaContainer."""
    return Node("MediaContainer", attrs, children, group=None)


def identity(server: EmuServer) -> Node:
    """Build the `/identity` answer."""
    return container(
        {
            "size": 0,
            "claimed": server.claimed,
            "machineIdentifier": server.machine_identifier,
            "version": server.version,
        }
    )


_ROOT_DIRECTORIES: Final = (
    "activities",
    "butler",
    "channels",
    "clients",
    "diagnostics",
    "hubs",
    "library",
    "livetv",
    "media",
    "metadata",
    "music",
    "neighborhood",
    "playQueues",
    "player",
    "playlists",
    "resources",
    "search",
    "server",
    "servers",
    "statistics",
    "system",
    "transcode",
    "updater",
    "user",
)


def root(server: EmuServer) -> Node:
    """Build the `/` answer."""
    attrs: dict[str, Value] = {
        "size": len(_ROOT_DIRECTORIES),
        "allowCameraUpload": False,
        "allowChannelAccess": True,
        "allowMediaDeletion": True,
        "allowSharing": True,
        "allowSync": True,
        "allowTuners": True,
        "backgroundProcessing": True,
        "certificate": True,
        "companionProxy": True,
        "countryCode": "usa",
        "diagnostics": "logs,databases,streaminglogs",
        "eventStream": True,
        "friendlyName": server.friendly_name,
        "hubSearch": True,
        "itemClusters": True,
        "livetv": 7,
        "machineIdentifier": server.machine_identifier,
        "mediaProviders": True,
        "multiuser": True,
        "myPlex": True,
        "myPlexMappingState": "mapped",
        "myPlexSigninState": "ok",
        "myPlexSubscription": server.my_plex_subscription,
        "myPlexUsername": server.my_plex_username,
        "offlineTranscode": 1,
        "ownerFeatures": "webhooks,sync,camera_upload",
        "platform": server.platform,
        "platformVersion": server.platform_version,
        "pluginHost": True,
        "pushNotifications": False,
        "readOnlyLibraries": False,
        "streamingBrainABRVersion": 3,
        "streamingBrainVersion": 2,
        "sync": True,
        "transcoderActiveVideoSessions": 0,
        "transcoderAudio": True,
        "transcoderLyrics": True,
        "transcoderSubtitles": True,
        "transcoderVideo": True,
        "transcoderVideoBitrates": "64,96,208,320,720,1500,2000,3000,4000,8000,10000,12000,20000",
        "transcoderVideoQualities": "0,1,2,3,4,5,6,7,8,9,10,11,12",
        "transcoderVideoResolutions": "128,128,160,240,320,480,768,720,720,1080,1080,1080,1080",
        "updatedAt": max((s.updated_at for s in server.sections.values()), default=0),
        "updater": True,
        "version": server.version,
        "voiceSearch": True,
    }
    children = [
        Node("Directory", {"count": 1, "key": name, "title": name}) for name in _ROOT_DIRECTORIES
    ]
    return container(attrs, children)


def section_node(section: EmuSection) -> Node:
    """Build one `Directory` of `/library/sections`."""
    is_movie = section.type == MOVIE
    attrs: dict[str, Value] = {
        "allowSync": True,
        "art": f"/:/resources/{'movie' if is_movie else 'show'}-fanart.jpg",
        "composite": f"/library/sections/{section.key}/composite/{section.updated_at}",
        "filters": True,
        "refreshing": False,
        "thumb": f"/:/resources/{'movie' if is_movie else 'show'}.png",
        "key": section.key,
        "type": section.type,
        "title": section.title,
        "agent": section.agent,
        "scanner": section.scanner,
        "language": section.language,
        "uuid": section.uuid,
        "updatedAt": section.updated_at,
        "createdAt": section.created_at,
        "scannedAt": section.scanned_at,
        "content": True,
        "directory": True,
        "contentChangedAt": section.content_changed_at,
        "hidden": section.hidden,
    }
    locations = [
        Node("Location", {"id": loc_id, "path": path}) for loc_id, path in section.locations
    ]
    return Node("Directory", attrs, locations)


def sections(server: EmuServer) -> Node:
    """Build the `/library/sections` answer."""
    return container(
        {"size": len(server.sections), "allowSync": False, "title1": "Plex Library"},
        [section_node(s) for s in server.sections.values()],
    )


def library() -> Node:
    """Build the `/library` answer (python-plexapi reads it first)."""
    attrs: dict[str, Value] = {
        "size": 3,
        "allowSync": False,
        "art": "/:/resources/library-art.png",
        "content": "",
        "identifier": IDENTIFIER,
        "mediaTagPrefix": MEDIA_TAG_PREFIX,
        "mediaTagVersion": MEDIA_TAG_VERSION,
        "title1": "Plex Library",
        "title2": "",
    }
    children = [
        Node("Directory", {"key": key, "title": title})
        for key, title in (
            ("sections", "Library Sections"),
            ("recentlyAdded", "Recently Added Content"),
            ("onDeck", "On Deck Content"),
        )
    ]
    return container(attrs, children)


def library_attrs(section: EmuSection | None) -> dict[str, Value]:
    """Return attributes every library container carries, hoisting the section's."""
    attrs: dict[str, Value] = {"allowSync": True, "identifier": IDENTIFIER}
    if section is not None:
        attrs["librarySectionID"] = int(section.key) if section.key.isdigit() else section.key
        attrs["librarySectionTitle"] = section.title
        attrs["librarySectionUUID"] = section.uuid
    attrs["mediaTagPrefix"] = MEDIA_TAG_PREFIX
    attrs["mediaTagVersion"] = MEDIA_TAG_VERSION
    return attrs


_VIEW_GROUPS: Final = {1: MOVIE, 2: SHOW, 3: SEASON, 4: EPISODE}
_TITLE2: Final = {1: "All Movies", 2: "All Shows", 3: "All Seasons", 4: "All Episodes"}


def section_all_attrs(section: EmuSection, type_number: int) -> dict[str, Value]:
    """Return the container attributes of `/library/sections/{key}/all`."""
    attrs = library_attrs(section)
    is_movie = section.type == MOVIE
    attrs["art"] = f"/:/resources/{'movie' if is_movie else 'show'}-fanart.jpg"
    attrs["thumb"] = f"/:/resources/{'movie' if is_movie else 'show'}.png"
    attrs["title1"] = section.title
    attrs["title2"] = _TITLE2.get(type_number, "All")
    attrs["viewGroup"] = _VIEW_GROUPS.get(type_number, "secondary")
    attrs["viewMode"] = 65592
    return attrs


def children_attrs(server: EmuServer, parent: EmuItem) -> dict[str, Value]:
    """Return the container attributes of `/library/metadata/{id}/children`."""
    section = server.sections.get(parent.section_key)
    attrs = library_attrs(section)
    attrs["key"] = str(parent.rating_key)
    base = _meta(parent.rating_key)
    if parent.type == SHOW:
        attrs["art"] = f"{base}/art/{parent.updated_at}"
        attrs["banner"] = f"{base}/banner/{parent.updated_at}"
        attrs["nocache"] = True
        attrs["parentTitle"] = parent.title
        if parent.year is not None:
            attrs["parentYear"] = parent.year
        attrs["summary"] = parent.summary
        attrs["theme"] = f"{base}/theme/{parent.updated_at}"
        attrs["thumb"] = f"{base}/thumb/{parent.updated_at}"
        attrs["title1"] = section.title if section else ""
        attrs["title2"] = parent.title
        attrs["viewGroup"] = SEASON
    elif parent.type == SEASON:
        show = server.items[parent.parent_rk or -1]
        attrs["grandparentRatingKey"] = str(show.rating_key)
        attrs["grandparentTitle"] = show.title
        attrs["nocache"] = True
        if parent.index is not None:
            attrs["parentIndex"] = parent.index
        attrs["parentTitle"] = parent.title
        attrs["thumb"] = f"{base}/thumb/{parent.updated_at}"
        attrs["title1"] = show.title
        attrs["title2"] = parent.title
        attrs["viewGroup"] = EPISODE
    attrs["viewMode"] = 65592
    return attrs


def all_leaves_attrs(server: EmuServer, parent: EmuItem) -> dict[str, Value]:
    """Return the container attributes of `/library/metadata/{id}/allLeaves`."""
    section = server.sections.get(parent.section_key)
    attrs = library_attrs(section)
    attrs["key"] = str(parent.rating_key)
    show = parent if parent.type == SHOW else server.show_of(parent)
    if show is not None:
        attrs["parentTitle"] = show.title
        attrs["title1"] = show.title
    attrs["title2"] = "All episodes"
    attrs["viewGroup"] = EPISODE
    attrs["viewMode"] = 65592
    return attrs


def children_of(server: EmuServer, item: EmuItem, *, include_guids: bool = False) -> Node:
    """Build the `Children` element `includeChildren=1` embeds in a detail answer."""
    kids = [
        item_node(server, server.items[rk], include_guids=include_guids) for rk in item.children
    ]
    return Node("Children", {"size": len(kids)}, kids, group=None)
