"""Thumbnails of kept photos, made with Pillow: a case page of twenty phone pictures of 4 MB
each should not make a township lead's phone download 80 MB. A thumbnail is a JPEG at most
LONG_SIDE pixels on its long side. The photos come from anyone in the groups, so decoding is
capped: an image claiming more than MAX_PIXELS (a decompression bomb: a few kB that inflate
to gigabytes) is refused, as is anything Pillow cannot decode; the page then links the
original only."""

from __future__ import annotations

import io
import warnings

from PIL import Image, ImageOps

LONG_SIDE = 320
MAX_PIXELS = 60_000_000  # a 60 MP phone camera at most; Pillow's own default warns only above 89 MP
QUALITY = 80
# Pillow's own guard, checked in Image.open from the header: set to ours for every decode in
# the process (it warns above the cap and raises above twice it).
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


class NoThumbnail(ValueError):
    """The bytes did not decode as an image within the limits."""


def thumbnail(data: bytes, long_side: int = LONG_SIDE, max_pixels: int = MAX_PIXELS) -> bytes:
    """JPEG bytes of the picture scaled to fit long_side (never enlarged), turned upright by its
    EXIF orientation; NoThumbnail when it will not decode or is larger than max_pixels."""
    try:
        with warnings.catch_warnings():
            # Pillow warns between MAX_IMAGE_PIXELS and twice that and raises above: a warning is
            # a refusal here too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                width, height = img.size
                if width * height > max_pixels:  # told by the header, before any pixel is decoded
                    raise NoThumbnail(f"{width}x{height} is more than {max_pixels} pixels")
                img.draft("RGB", (long_side, long_side))  # JPEG: decode at a reduced scale
                upright = ImageOps.exif_transpose(img)
                rgb = upright.convert("RGB")
                rgb.thumbnail((long_side, long_side))
                out = io.BytesIO()
                rgb.save(out, "JPEG", quality=QUALITY, optimize=True)
                return out.getvalue()
    except NoThumbnail:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        # OSError: truncated or unknown data; SyntaxError/ValueError: a malformed header.
        raise NoThumbnail(type(e).__name__) from e
