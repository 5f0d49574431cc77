"""Photos on local disk, content-addressed: a file is named by the sha256 of its bytes
(<root>/ab/cd/abcd…), so the same picture sent twice is kept once and a name proves its
content. Only images (JPEG, PNG, GIF, WebP, told by their first bytes) up to MAX_BYTES.
Beside each photo its thumbnail, `<sha>.thumb.jpg` (bot.thumbnails), or a `<sha>.nothumb`
marker when the picture will not decode: then pages link the original only."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from bot.thumbnails import NoThumbnail, thumbnail

MAX_BYTES = 10 * 1024 * 1024
SHA256 = re.compile(r"^[0-9a-f]{64}$")


class NotAnImage(ValueError):
    pass


class TooLarge(ValueError):
    pass


def sniff(data: bytes) -> str | None:
    """The image type told by the magic bytes, or None."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


class PhotoStore:
    def __init__(self, root: Path, max_bytes: int = MAX_BYTES) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes

    def path(self, sha256: str) -> Path:
        if not SHA256.match(sha256):
            raise ValueError("not a sha256")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def thumb_path(self, sha256: str) -> Path:
        return self.path(sha256).with_name(f"{sha256}.thumb.jpg")

    def nothumb_path(self, sha256: str) -> Path:
        return self.path(sha256).with_name(f"{sha256}.nothumb")

    def put(self, data: bytes) -> tuple[str, str]:
        """Keep the bytes (once) and their thumbnail; their sha256 and content type."""
        if len(data) > self.max_bytes:
            raise TooLarge(f"{len(data)} bytes")
        kind = sniff(data)
        if kind is None:
            raise NotAnImage("not JPEG/PNG/GIF/WebP")
        digest = hashlib.sha256(data).hexdigest()
        target = self.path(digest)
        if not (target.exists() and target.stat().st_size == len(data)):
            _write(target, data)
        self._thumb(digest, data)
        return digest, kind

    def _thumb(self, digest: str, data: bytes) -> None:
        """The thumbnail once (a photo kept before thumbnails existed gets one when sent again)."""
        if self.thumb_path(digest).exists() or self.nothumb_path(digest).exists():
            return
        try:
            small = thumbnail(data)
        except NoThumbnail:
            _write(self.nothumb_path(digest), b"")
            return
        _write(self.thumb_path(digest), small)

    def read_thumb(self, sha256: str) -> bytes | None:
        try:
            return self.thumb_path(sha256).read_bytes()
        except (FileNotFoundError, ValueError):
            return None

    def has_thumb(self, sha256: str) -> bool:
        """Whether the photo has a thumbnail; one kept before thumbnails existed gets it now."""
        try:
            if self.thumb_path(sha256).exists():
                return True
            if self.nothumb_path(sha256).exists():
                return False
        except ValueError:
            return False
        data = self.read(sha256)
        if data is None:
            return False
        self._thumb(sha256, data)
        return self.thumb_path(sha256).exists()

    def read(self, sha256: str) -> bytes | None:
        try:
            return self.path(sha256).read_bytes()
        except (FileNotFoundError, ValueError):
            return None


def _write(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    # Written aside and renamed: a reader never sees half a file under the final name.
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".part-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
