"""The download of an export: its folder zipped on the fly, in bounded memory."""

from __future__ import annotations

import os
import struct
import tempfile
import time
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from training.exports.common import ExportError
from training.models import Export
from training.services.export_retention import export_location

ZIP_CHUNK = 1 << 20


class StreamingZip:
    """A zip written front to back as a stream of byte chunks, in bounded memory whatever the number of files:
    each member is a local header, its data (stored or deflated) and a data descriptor; the central directory
    records go to a spooled temporary file (Python's zipfile keeps a ~1.3 kB object per member until the end)
    and are copied out by `finish()`. Zip64 fields appear only where a size, an offset or the count needs them."""

    def __init__(self, chunk_size: int = ZIP_CHUNK) -> None:
        self.chunk_size = chunk_size
        self.offset = 0
        self.count = 0
        self._central = tempfile.SpooledTemporaryFile(max_size=4 << 20)  # noqa: SIM115 (closed by close())
        self._central_size = 0

    def _out(self, data: bytes) -> bytes:
        self.offset += len(data)
        return data

    def directory(self, name: str, *, mtime: float) -> bytes:
        name = name.rstrip("/") + "/"
        header = self._local_header(name, method=0, mtime=mtime, descriptor=False, zip64=False)
        self._record(name, method=0, mtime=mtime, crc=0, compressed=0, size=0, local_offset=self.offset,
                     descriptor=False, external=(0o40755 << 16) | 0x10)
        return self._out(header)

    def file(self, name: str, source: str | Path, *, deflate: bool) -> Iterator[bytes]:
        stat = os.stat(source)
        zip64 = stat.st_size >= 0xFFFF0000  # deflate can grow a little: leave room
        local_offset = self.offset
        method = 8 if deflate else 0
        yield self._out(self._local_header(name, method=method, mtime=stat.st_mtime, descriptor=True, zip64=zip64))
        crc = size = compressed = 0
        packer = zlib.compressobj(6, zlib.DEFLATED, -15) if deflate else None
        with open(source, "rb") as src:
            while block := src.read(self.chunk_size):
                crc = zlib.crc32(block, crc)
                size += len(block)
                data = packer.compress(block) if packer else block
                if data:
                    compressed += len(data)
                    yield self._out(data)
        if packer:
            tail = packer.flush()
            compressed += len(tail)
            yield self._out(tail)
        zip64 = zip64 or size >= 0xFFFFFFFF or compressed >= 0xFFFFFFFF
        sizes = struct.pack("<QQ", compressed, size) if zip64 else struct.pack("<II", compressed, size)
        yield self._out(struct.pack("<II", 0x08074B50, crc) + sizes)
        self._record(name, method=method, mtime=stat.st_mtime, crc=crc, compressed=compressed, size=size,
                     local_offset=local_offset, descriptor=True, external=(stat.st_mode & 0xFFFF) << 16)

    def finish(self) -> Iterator[bytes]:
        """The central directory and the end records."""
        central_offset = self.offset
        self._central.seek(0)
        while block := self._central.read(self.chunk_size):
            yield self._out(block)
        self.close()
        count, size = self.count, self._central_size
        if count >= 0xFFFF or central_offset >= 0xFFFFFFFF or size >= 0xFFFFFFFF:
            end64_offset = self.offset
            yield self._out(struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, count, count, size,
                                        central_offset))
            yield self._out(struct.pack("<IIQI", 0x07064B50, 0, end64_offset, 1))
        yield self._out(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, min(count, 0xFFFF), min(count, 0xFFFF),
                                    min(size, 0xFFFFFFFF), min(central_offset, 0xFFFFFFFF), 0))

    def close(self) -> None:
        self._central.close()

    def _local_header(self, name: str, *, method: int, mtime: float, descriptor: bool, zip64: bool) -> bytes:
        encoded = name.encode("utf-8")
        flags = 0x0800 | (0x0008 if descriptor else 0)  # UTF-8 names; sizes and CRC after the data
        extra = struct.pack("<HHQQ", 0x0001, 16, 0, 0) if zip64 else b""
        sizes = 0xFFFFFFFF if zip64 else 0
        dos_time, dos_date = _dos_time(mtime)
        return struct.pack("<IHHHHHIIIHH", 0x04034B50, 45 if zip64 else 20, flags, method, dos_time, dos_date, 0,
                           sizes, sizes, len(encoded), len(extra)) + encoded + extra

    def _record(self, name: str, *, method: int, mtime: float, crc: int, compressed: int, size: int,
                local_offset: int, descriptor: bool, external: int) -> None:
        encoded = name.encode("utf-8")
        wide = [v for v in (size, compressed) if v >= 0xFFFFFFFF]
        if wide:
            wide = [size, compressed]  # the zip64 extra holds both sizes when either overflows
        if local_offset >= 0xFFFFFFFF:
            wide.append(local_offset)
        extra = struct.pack(f"<HH{len(wide)}Q", 0x0001, 8 * len(wide), *wide) if wide else b""
        dos_time, dos_date = _dos_time(mtime)
        flags = 0x0800 | (0x0008 if descriptor else 0)
        record = struct.pack(
            "<IHHHHHHIIIHHHHHII", 0x02014B50, 0x031E, 45 if extra else 20, flags, method, dos_time, dos_date, crc,
            0xFFFFFFFF if len(wide) >= 2 else compressed, 0xFFFFFFFF if len(wide) >= 2 else size, len(encoded),
            len(extra), 0, 0, 0, external, 0xFFFFFFFF if local_offset >= 0xFFFFFFFF else local_offset,
        ) + encoded + extra
        self._central.write(record)
        self._central_size += len(record)
        self.count += 1


def _dos_time(mtime: float) -> tuple[int, int]:
    t = time.localtime(mtime)
    if t.tm_year < 1980:
        return 0, (1 << 5) | 1  # 1980-01-01, the earliest a zip can say
    clock = (t.tm_hour << 11) | (t.tm_min << 5) | (t.tm_sec // 2)
    return clock, ((t.tm_year - 1980) << 9) | (t.tm_mon << 5) | t.tm_mday


_STORED_SUFFIXES = {".tif", ".tiff", ".npy", ".png", ".zip"}


def export_archive_name(export: Export) -> str:
    return f"cryolabel-export-{export.number}-{export.format}"


def export_zip_chunks(export: Export, *, chunk_size: int = ZIP_CHUNK) -> Iterator[bytes]:
    """The export's folder as a zip, in chunks of about `chunk_size` bytes, built while it is sent: nothing
    is written to disk and memory stays bounded. Rasters are stored (they barely compress), text deflated."""
    root = export_location(export)
    if export.pruned_at is not None:
        raise ExportError(f"the files of export #{export.number} were removed on "
                          f"{export.pruned_at:%Y-%m-%d %H:%M} UTC: {export.pruned_reason}")
    if not root.is_dir():
        raise ExportError(f"the files of export #{export.number} are gone ({root})")
    return _zip_folder(root, PurePosixPath(export_archive_name(export)), chunk_size)


def _zip_folder(root: Path, top: PurePosixPath, chunk_size: int) -> Iterator[bytes]:
    archive = StreamingZip(chunk_size)
    pending: list[bytes] = []
    pending_size = 0
    try:
        for piece in _zip_pieces(archive, root, top):
            pending.append(piece)
            pending_size += len(piece)
            if pending_size >= chunk_size:
                yield b"".join(pending)
                pending, pending_size = [], 0
        if pending:
            yield b"".join(pending)
    finally:
        archive.close()  # also when the client went away mid-download


def _zip_pieces(archive: StreamingZip, root: Path, top: PurePosixPath) -> Iterator[bytes]:
    # Strings rather than Path objects per file: see _ExportWriter._put (pathlib interns every name).
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, root).replace(os.sep, "/")
        base = str(top) if rel_dir == "." else f"{top}/{rel_dir}"
        if not filenames and not dirnames:
            yield archive.directory(base, mtime=os.stat(dirpath).st_mtime)  # empty class folders stay in the tree
        for name in sorted(filenames):
            stored = os.path.splitext(name)[1].lower() in _STORED_SUFFIXES
            yield from archive.file(f"{base}/{name}", os.path.join(dirpath, name), deflate=not stored)
    yield from archive.finish()
