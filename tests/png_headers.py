"""A PNG that is only a header: any size it declares, a few dozen bytes on disk (decompression-bomb
fixtures: a reader must refuse it from the header, never decode it)."""

import struct
import zlib
from pathlib import Path

COLOUR_TYPES = {"L": 0, "RGB": 2}


def write_header_only_png(path: Path, width: int, height: int, mode: str = "RGB") -> Path:
    """Write a PNG whose IHDR declares ``width`` x ``height`` 8-bit ``mode`` pixels and that has no
    image data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, COLOUR_TYPES[mode], 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return path
