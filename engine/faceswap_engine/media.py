"""Image and video bytes in, BGR arrays out (and back): format sniffing, size limits, decode, encode.

Formats are told by their magic bytes, never by a name or a Content-Type a client chose, and an image's pixel
count is read from its header before any pixel is decoded, so a 30000x30000 PNG costs nothing but a clear error.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from io import BytesIO
from typing import Literal

import cv2
import numpy as np

from .errors import CorruptMedia, MediaTooLarge, UnsupportedFormat

ImageFormat = Literal["png", "jpeg", "bmp", "tiff", "webp"]
VideoFormat = Literal["mp4", "avi", "matroska", "asf", "mpeg", "mpegts", "mxf"]

MAX_IMAGE_PIXELS = 40_000_000  # an 8K frame is 33 MP; beyond this decoding would cost gigabytes
MAX_IMAGE_SIDE = 16_384

IMAGE_CONTENT_TYPES: dict[str, str] = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "bmp": "image/bmp",
    "tiff": "image/tiff",
    "webp": "image/webp",
}


def sniff_image(head: bytes) -> ImageFormat | None:
    """The seed's image formats (bmp, jpeg, png, tiff, webp) by magic bytes."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"BM") and len(head) >= 26:
        return "bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def sniff_video(head: bytes) -> VideoFormat | None:
    """The seed's containers (avi, m4v, mkv, mp4, mpeg, mov, mxf, webm, wmv) by magic bytes."""
    if len(head) >= 12 and head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"):
        return "mp4"  # also mov and m4v (ISO base media / QuickTime)
    if head[:4] == b"RIFF" and head[8:12] in (b"AVI ", b"AVIX"):
        return "avi"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska"  # also webm
    if head.startswith(b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"):
        return "asf"  # wmv
    if head[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"):
        return "mpeg"
    if len(head) >= 189 and head[0] == 0x47 and head[188] == 0x47:
        return "mpegts"
    if head.startswith(b"\x06\x0e\x2b\x34"):
        return "mxf"
    return None


def describe(head: bytes) -> str:
    """A short name for what the bytes look like, for error messages."""
    image = sniff_image(head)
    if image:
        return f"a {image.upper()} image"
    video = sniff_video(head)
    if video:
        return f"a {video} video"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "a GIF image"
    if head.lstrip()[:1] in (b"<", b"{"):
        return "text (HTML/JSON)"
    return "an unknown format"


def require_image_format(head: bytes, loc: list[str]) -> ImageFormat:
    fmt = sniff_image(head)
    if fmt is None:
        raise UnsupportedFormat(
            f"unsupported image format ({describe(head)}); allowed: bmp, jpeg, png, tiff, webp", loc
        )
    return fmt


def require_video_format(head: bytes, loc: list[str]) -> VideoFormat:
    fmt = sniff_video(head)
    if fmt is None:
        raise UnsupportedFormat(
            f"unsupported video format ({describe(head)}); allowed: avi, m4v, mkv, mp4, mpeg, mov, mxf, webm, wmv",
            loc,
        )
    return fmt


def image_size(data: bytes, loc: list[str]) -> tuple[int, int]:
    """(width, height) from the header alone, without decoding pixels."""
    from PIL import Image  # header parsing only; cv2 has no header-only reader

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        previous = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None  # we apply our own limit below, with a clearer error
        try:
            with Image.open(BytesIO(data)) as im:
                return int(im.size[0]), int(im.size[1])
        except Exception as exc:  # noqa: BLE001 - any header failure is a corrupt file to the caller
            raise CorruptMedia(f"the image header cannot be read: {exc}", loc) from exc
        finally:
            Image.MAX_IMAGE_PIXELS = previous


@dataclass(frozen=True)
class DecodedImage:
    bgr: np.ndarray
    format: ImageFormat

    @property
    def width(self) -> int:
        return int(self.bgr.shape[1])

    @property
    def height(self) -> int:
        return int(self.bgr.shape[0])


def decode_image(data: bytes, loc: list[str], *, max_pixels: int = MAX_IMAGE_PIXELS) -> DecodedImage:
    """Sniff, check the header's size against the limit, then decode to 8-bit BGR (EXIF orientation applied)."""
    if not data:
        raise CorruptMedia("the image is empty (0 bytes)", loc)
    fmt = require_image_format(data[:64], loc)
    width, height = image_size(data, loc)
    if width <= 0 or height <= 0:
        raise CorruptMedia("the image has no pixels", loc)
    if width * height > max_pixels or max(width, height) > MAX_IMAGE_SIDE:
        raise MediaTooLarge(
            f"image is too large: {width}x{height} pixels (limit {max_pixels:,} pixels, {MAX_IMAGE_SIDE} per side)",
            loc,
        )
    array = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if array is None or array.size == 0:
        raise CorruptMedia(f"the {fmt.upper()} image cannot be decoded (corrupt or truncated)", loc)
    return DecodedImage(bgr=array, format=fmt)


def output_format_for(target: ImageFormat) -> Literal["png", "jpeg"]:
    """Same family as the target: JPEG stays JPEG (lossy in, lossy out); everything else becomes lossless PNG."""
    return "jpeg" if target == "jpeg" else "png"


def encode_image(bgr: np.ndarray, fmt: Literal["png", "jpeg"]) -> bytes:
    """Encode a BGR result; JPEG at quality 95, PNG at a fast compression level."""
    if fmt == "jpeg":
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
    else:
        ok, buf = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:
        raise CorruptMedia(f"the result could not be encoded as {fmt}")
    return buf.tobytes()


def extension_for(fmt: Literal["png", "jpeg"]) -> str:
    return "jpg" if fmt == "jpeg" else "png"
