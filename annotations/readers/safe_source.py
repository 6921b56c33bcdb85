"""A SAFE product in a folder or a zip, read in place: zips checked for path tricks and bombs before any
member is read, XML without DTDs, bounded reads."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path, PurePosixPath

from annotations.readers.base import IngestError, Limits


def _parse_xml(data: bytes, what: str) -> ET.Element:
    """Parse XML that came from outside: no DTDs (entity expansion bombs, external entities)."""
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise IngestError(f"{what} declares a DTD or entities, which S1 XML never does: refused")
    try:
        return ET.fromstring(data)
    except ET.ParseError as e:
        raise IngestError(f"{what} is not valid XML: {e}") from e


def _text(el: ET.Element | None, path: str) -> str | None:
    found = el.find(path) if el is not None else None
    return found.text.strip() if found is not None and found.text else None

def _safe_rel(href: str, what: str) -> str:
    """A manifest href as a clean relative path; anything that could escape the product is refused."""
    rel = href.strip().replace("\\", "/")
    while rel.startswith("./"):
        rel = rel[2:]
    parts = PurePosixPath(rel).parts
    if not rel or rel.startswith("/") or ".." in parts or re.match(r"^[A-Za-z]:", rel):
        raise IngestError(f"{what} points outside the product ({href!r}): refused")
    return str(PurePosixPath(*parts))

class _SafeSource:
    """A SAFE product in a folder or a zip, read in place: member checks, bounded reads, GDAL paths."""

    def __init__(self, path: Path, limits: Limits) -> None:
        self.path = path
        self.limits = limits
        self.zip: zipfile.ZipFile | None = None
        self.prefix = ""
        if path.is_dir():
            if not (path / "manifest.safe").is_file():
                raise IngestError(f"{path.name} is a folder without manifest.safe: not a SAFE product", path)
            self.name = path.name
            self.members: dict[str, int] = {}
            return
        self.zip = _open_checked_zip(path, limits)
        manifests = [n for n in self.zip.namelist() if PurePosixPath(n).name == "manifest.safe" and n.count("/") <= 1]
        if not manifests:
            self.zip.close()
            raise IngestError(f"{path.name} holds no SAFE product: there is no manifest.safe in it", path)
        if len(manifests) > 1:
            self.zip.close()
            raise IngestError(f"{path.name} holds {len(manifests)} SAFE products; put one product per zip", path)
        parent = str(PurePosixPath(manifests[0]).parent)
        self.prefix = "" if parent == "." else parent + "/"
        stem = path.name[: -len(".zip")] if path.name.lower().endswith(".zip") else path.stem
        self.name = parent if parent != "." else (stem if stem.upper().endswith(".SAFE") else f"{stem}.SAFE")
        self.members = {i.filename: i.file_size for i in self.zip.infolist() if not i.is_dir()}

    def close(self) -> None:
        if self.zip is not None:
            self.zip.close()

    def member(self, rel: str) -> str:
        """Path of `rel` as stored: inside the zip, or relative to the SAFE folder."""
        return self.prefix + rel if self.zip is not None else rel

    def size(self, rel: str) -> int | None:
        """Size in bytes, None when absent (or when a folder entry escapes the product through a link)."""
        if self.zip is not None:
            return self.members.get(self.member(rel))
        p = self.path / rel
        try:
            if not p.is_file() or not p.resolve().is_relative_to(self.path.resolve()):
                return None
            return p.stat().st_size
        except OSError:
            return None

    def read_bytes(self, rel: str, what: str) -> bytes:
        size = self.size(rel)
        if size is None:
            raise IngestError(f"{what} is missing from {self.name}")
        if size > self.limits.max_xml_bytes:
            raise IngestError(f"{what} in {self.name} is {size:,} bytes, too large for S1 metadata")
        if self.zip is not None:
            with self.zip.open(self.member(rel)) as f:
                return f.read(self.limits.max_xml_bytes + 1)
        return (self.path / rel).read_bytes()

    def gdal_path(self, rel: str) -> str:
        if self.zip is not None:
            return f"/vsizip/{self.path.resolve()}/{self.member(rel)}"
        return str(self.path / rel)


def _open_checked_zip(path: Path, limits: Limits) -> zipfile.ZipFile:
    """Open a zip and refuse it, before reading any member, if any entry could escape a folder (absolute path,
    '..', link), is encrypted, or if it could be a bomb (total size or a member's compression ratio)."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise IngestError(f"{path.name} is not a readable zip archive: {e}", path) from e
    try:
        infos = zf.infolist()
        if len(infos) > limits.max_zip_members:
            raise IngestError(
                f"{path.name} has {len(infos):,} entries, more than the {limits.max_zip_members:,} allowed"
            )
        total = 0
        for info in infos:
            n = info.filename
            parts = n.replace("\\", "/").split("/")
            if n.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", n):
                raise IngestError(f"{path.name} has an entry with an absolute path ({n!r}): refused (zip slip)")
            if ".." in parts:
                raise IngestError(f"{path.name} has an entry that climbs out of its folder ({n!r}): refused (zip slip)")
            if (info.external_attr >> 16) & 0o170000 == 0o120000:
                raise IngestError(f"{path.name} has a symbolic link entry ({n!r}): refused")
            if info.flag_bits & 0x1:
                raise IngestError(f"{path.name} has an encrypted entry ({n!r}): refused")
            total += info.file_size
            if info.file_size >= limits.zip_ratio_min_bytes and info.file_size > limits.max_zip_ratio * max(
                info.compress_size, 1
            ):
                ratio = info.file_size / max(info.compress_size, 1)
                raise IngestError(
                    f"{path.name} looks like a zip bomb: {n!r} expands {ratio:,.0f}-fold to {info.file_size:,} bytes"
                )
        if total > limits.max_zip_total_bytes:
            raise IngestError(
                f"{path.name} would expand to {total:,} bytes, over the {limits.max_zip_total_bytes:,}-byte limit"
            )
    except IngestError as e:
        zf.close()
        raise e.at(path) from None
    return zf
