"""Thumbnails of phone-sized photos: a 12 MP (4000x3000) JPEG and PNG and a 48 MP JPEG, as a
phone sends them. Prints the median of R runs of bot.thumbnails.thumbnail for each, the
original's and the thumbnail's size, and the time to refuse a decompression bomb's header.

    .venv/bin/python -m bench.thumbnails [--runs 5]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import statistics
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root

from PIL import Image

from bot.thumbnails import NoThumbnail, thumbnail


def photo(width: int, height: int, kind: str) -> bytes:
    """A photo-like picture (a gradient with noise: JPEG cannot make it trivially small)."""
    gradient = Image.linear_gradient("L").resize((width, height))
    noise = Image.effect_noise((width, height), 40)
    img = Image.merge("RGB", (gradient, noise, gradient.transpose(Image.Transpose.FLIP_LEFT_RIGHT)))
    out = io.BytesIO()
    img.save(out, kind, **({"quality": 90} if kind == "JPEG" else {}))
    return out.getvalue()


def bomb() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    header = (50_000).to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
    data = chunk(b"IDAT", zlib.compress(b"\0" * 64))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + data + chunk(b"IEND", b"")


def median_ms(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        with contextlib.suppress(NoThumbnail):
            fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    for label, data in (
        ("12 MP JPEG", photo(4000, 3000, "JPEG")),
        ("12 MP PNG", photo(4000, 3000, "PNG")),
        ("48 MP JPEG", photo(8000, 6000, "JPEG")),
    ):
        small = thumbnail(data)
        ms = median_ms(functools.partial(thumbnail, data), runs)
        print(
            f"{label}: {len(data) / 1e6:.1f} MB -> {len(small) / 1e3:.1f} kB thumbnail, {ms:.0f} ms (median of {runs})"
        )
    ms = median_ms(lambda: thumbnail(bomb()), runs)
    print(f"2.5 GP bomb ({len(bomb())} bytes): refused in {ms:.2f} ms")


if __name__ == "__main__":
    main()
