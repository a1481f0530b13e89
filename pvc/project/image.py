"""Per-item image metadata from the file header with Pillow, without decoding pixels."""

from __future__ import annotations

import io
import re
import threading
import warnings
from pathlib import Path

from pvc.errors import BadInput

__all__ = ["image_meta"]

# The extensions the Supervisely SDK accepts as images (imaging/image.py).
_EXIF_ORIENTATION = 0x0112
_EXIF_IN_HEADER = frozenset({"JPEG", "MPO", "TIFF", "WEBP"})
_BOMB_GUARD = threading.Lock()


def image_meta(data: bytes | None, path: Path) -> dict:
    """width, height, channels, mode, format (and EXIF orientation when set) of one image.

    Pillow reads only the header here. Its decompression-bomb guard protects decoders; since nothing is
    decoded, a very large image is opened again with the guard lifted rather than refused.
    """
    if path.suffix.lower() == ".nrrd":
        return {"format": "NRRD"}  # an image project may hold NRRD slices: Pillow has no reader for them
    from PIL import Image  # loaded on first use: `pvc --help` and `pvc log` need no image library

    try:
        return _read_header(data, path)
    except Image.DecompressionBombError:
        with _BOMB_GUARD:
            limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                return _read_header(data, path)
            finally:
                Image.MAX_IMAGE_PIXELS = limit


def _read_header(data: bytes | None, path: Path) -> dict:
    from PIL import Image, UnidentifiedImageError

    source = io.BytesIO(data) if data is not None else path
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(source) as im:
                meta = {
                    "width": im.width,
                    "height": im.height,
                    "channels": len(im.getbands()),
                    "mode": im.mode,
                    "format": im.format,
                }
                # Pillow reads EXIF from the header for these; for PNG, getexif() decodes the whole image
                orientation = im.getexif().get(_EXIF_ORIENTATION) if im.format in _EXIF_IN_HEADER else None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise BadInput(path, f"not a readable image ({_short(exc)})") from None
    if orientation and orientation != 1:
        meta["exif_orientation"] = int(orientation)
    return meta


def _short(exc: Exception) -> str:
    """The library's message without object reprs: a reason is stored, and must not vary between runs."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return re.sub(r"\s*<[^<>]* at 0x[0-9a-fA-F]+>", "", text)[:120]
