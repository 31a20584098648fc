"""Safe extraction of downloaded data set archives (.tar, .tar.gz, .tgz, .zip).

Every member is checked before anything is written: absolute paths, ``..`` components, links
pointing outside the target and device files are refused (path traversal), so a crafted archive
cannot write outside the data directory. Zip members that are symbolic links are refused
(tar links must stay inside the target), and a truncated or corrupt archive is one clear error.
"""

from __future__ import annotations

import gzip
import lzma
import stat
import tarfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from lkca.errors import DataFormatError


def _check_member(archive: Path, name: str, target: Path) -> None:
    path = PurePosixPath(name.replace("\\", "/"))
    resolved = (target / name).resolve()
    if path.is_absolute() or ".." in path.parts or not resolved.is_relative_to(target):
        raise DataFormatError(
            f"{archive}: member {name!r} would be written outside {target} (absolute path or "
            "'..'); refusing to extract it: download the archive again from the official source"
        )


def safe_extract(archive: str | Path, target: str | Path) -> list[str]:
    """Extract ``archive`` into ``target`` after checking every member; returns member names."""
    archive, target = Path(archive), Path(target).resolve()
    if not archive.is_file():
        raise DataFormatError(f"archive {archive} does not exist; check the path")
    target.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        try:
            with zipfile.ZipFile(archive) as zf:
                names = zf.namelist()
                for info in zf.infolist():
                    _check_member(archive, info.filename, target)
                    if stat.S_ISLNK(info.external_attr >> 16):
                        raise DataFormatError(f"{archive}: member {info.filename!r} is a symbolic "
                                              "link; refusing to extract it: download the archive "
                                              "again from the official source")
                zf.extractall(target)
        except (zipfile.BadZipFile, zlib.error, EOFError) as err:
            raise DataFormatError(f"{archive} is not a readable .zip archive ({err}; corrupt or "
                                  "truncated download?); download it again") from None
        return names
    try:
        with tarfile.open(archive) as tf:
            members = tf.getmembers()
            for m in members:
                _check_member(archive, m.name, target)
                if m.issym() or m.islnk():
                    _check_member(archive, str(PurePosixPath(m.name).parent / m.linkname), target)
                if m.isdev():
                    raise DataFormatError(f"{archive}: member {m.name!r} is a device file; "
                                          "refusing to extract it")
            tf.extractall(target, members=members, filter="data")
            return [m.name for m in members]
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, lzma.LZMAError):
        raise DataFormatError(f"{archive} is not a readable .tar/.tar.gz/.zip archive (corrupt or "
                              "truncated download?); download it again") from None
