"""Which file names are videos or images, and their MIME types.

One table drives the seed's extension allow-lists, the S3 trigger filter, the content type of stored
outputs and the data-URI check, so they cannot disagree.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import unquote, urlsplit

MediaKind = Literal["video", "image"]

_VIDEO_MIME: dict[str, str] = {
    "avi": "video/x-msvideo",
    "m4v": "video/x-m4v",
    "mkv": "video/x-matroska",
    "mp4": "video/mp4",
    "mpeg": "video/mpeg",
    "mov": "video/quicktime",
    "mxf": "application/mxf",
    "webm": "video/webm",
    "wmv": "video/x-ms-wmv",
}
_IMAGE_MIME: dict[str, str] = {
    "bmp": "image/bmp",
    "jpeg": "image/jpeg",
    "jpg": "image/jpeg",
    "png": "image/png",
    "tiff": "image/tiff",
    "tif": "image/tiff",
    "webp": "image/webp",
}

VIDEO_EXTENSIONS: frozenset[str] = frozenset(_VIDEO_MIME)
IMAGE_EXTENSIONS: frozenset[str] = frozenset(_IMAGE_MIME)

# MIME types accepted in data URIs (common aliases included, since browsers and tools differ).
VIDEO_MIME_TYPES: frozenset[str] = frozenset(_VIDEO_MIME.values()) | {
    "video/avi", "video/msvideo", "video/x-ms-asf", "video/mpg", "video/x-mpeg", "video/mxf",
}
IMAGE_MIME_TYPES: frozenset[str] = frozenset(_IMAGE_MIME.values()) | {
    "image/jpg", "image/pjpeg", "image/x-ms-bmp", "image/x-bmp", "image/tif", "image/x-tiff",
}


def extension_of(name: str) -> str | None:
    """Lower-case extension of the last path segment, without the dot (None if it has none)."""
    last = name.rsplit("/", 1)[-1]
    if "." not in last:
        return None
    ext = last.rsplit(".", 1)[1].lower()
    return ext or None


def url_path_extension(url: str) -> str | None:
    """Extension of a URL's (percent-decoded) path, ignoring query and fragment."""
    return extension_of(unquote(urlsplit(url).path))


def kind_of(name: str) -> MediaKind | None:
    """'video' or 'image' by extension, None when the extension is unknown."""
    ext = extension_of(name)
    if ext in VIDEO_EXTENSIONS:
        return "video"
    if ext in IMAGE_EXTENSIONS:
        return "image"
    return None


def kind_of_mime(mime: str) -> MediaKind | None:
    mime = mime.strip().lower()
    if mime in VIDEO_MIME_TYPES:
        return "video"
    if mime in IMAGE_MIME_TYPES:
        return "image"
    return None


def content_type_for(name: str, default: str = "application/octet-stream") -> str:
    """MIME type for a file name (used when storing outputs)."""
    ext = extension_of(name) or ""
    return _VIDEO_MIME.get(ext) or _IMAGE_MIME.get(ext) or default


def extension_for_content_type(content_type: str | None, kind: MediaKind) -> str:
    """File extension to give an output of this MIME type (falls back to mp4/png)."""
    ct = (content_type or "").split(";", 1)[0].strip().lower()
    table = _VIDEO_MIME if kind == "video" else _IMAGE_MIME
    preferred = {"image/jpeg": "jpg", "image/tiff": "tif"}
    if ct in preferred and kind == "image":
        return preferred[ct]
    for ext, mime in table.items():
        if mime == ct:
            return ext
    return "mp4" if kind == "video" else "png"
