"""Safe extraction of downloaded data set archives (.tar, .tar.gz, .tgz, .tar.bz2, .tar.xz, .zip).

All or nothing: every member is checked before anything is written, the members are written
into a hidden staging folder inside the target (``TARGET/.lkca-extract-*``), and only once all
of them are complete are they moved to their names, which are new ones: an existing file is
never replaced, a failure at any point (a corrupt member, a full disk) deletes everything this
extraction created, and a killed extraction leaves its partial files only in the staging folder.

Refused, each in one line, before anything is written:

- members that would land outside the target (absolute paths, ``..``), links, device files and
  FIFOs (the data sets' archives hold files and folders only);
- zip members that are encrypted or use a compression zipfile cannot read (deflate64 ...);
- an archive that contradicts itself (``a`` as a file and ``a/b`` under it, a file twice);
- a member whose name exists in the target as a file or a symbolic link (a dangling link or a
  link loop included), or as a folder where the member is a file; a ``--to`` that is a file, a
  link to nothing, or in a read-only folder;
- an archive that expands to more than :data:`MAX_RATIO` times its size (a decompression bomb):
  the paper's archives expand about 1.1 times (CIFAR-10's tar.gz of 170 MB holds 186 MB;
  Tiny-ImageNet's and ADE20K's zips hold JPEGs, which barely compress). Each member counts
  :data:`MEMBER_COST` bytes besides its data (so a million empty files count too), and archives
  below :data:`MIN_BUDGET` / MAX_RATIO bytes may write :data:`MIN_BUDGET`.
"""

from __future__ import annotations

import errno
import gzip
import lzma
import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from lkca.errors import DataFormatError

MAX_RATIO = 20  # bytes written per byte of archive, at most (the paper's archives: about 1.1)
MEMBER_COST = 512  # bytes each member counts besides its data (a tar header's size)
MIN_BUDGET = 1 << 20  # any archive may write 1 MiB
STAGING_PREFIX = ".lkca-extract-"
_CHUNK = 1 << 20
_ZIP_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate",
                zipfile.ZIP_BZIP2: "bzip2", zipfile.ZIP_LZMA: "lzma"}
# what a damaged compressed stream raises while it is read (bz2: OSError "Invalid data stream")
_READ_ERRORS = (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, gzip.BadGzipFile,
                lzma.LZMAError, OSError)


@dataclass(frozen=True)
class Member:
    """One entry of an archive: its name as stored, its path in the target, folder or file, its
    declared size, and how to read its bytes."""

    name: str
    parts: tuple[str, ...]
    is_dir: bool
    size: int
    open: Callable[[], IO[bytes]]


def safe_extract(archive: str | Path, target: str | Path) -> list[str]:
    """Extract ``archive`` into ``target`` (created if missing), all or nothing; returns the
    member names. DataFormatError (one line) for anything refused, nothing written then."""
    archive = Path(archive)
    if not archive.is_file():
        what = "is not a file" if archive.exists() else "does not exist"
        raise DataFormatError(f"archive {archive} {what}; check the path")
    root = _check_target(Path(target))
    budget = max(MAX_RATIO * archive.stat().st_size, MIN_BUDGET)
    with _members(archive) as members:
        _check_plan(archive, members, root, budget)
        _extract(archive, members, root, budget)
    return [m.name for m in members]


def _refuse(archive: Path, name: str, problem: str) -> DataFormatError:
    return DataFormatError(f"{archive}: member {name!r} {problem}; refusing to extract it: "
                           "download the archive again from the official source")


def _corrupt(archive: Path, err: BaseException | None = None) -> DataFormatError:
    detail = f" ({type(err).__name__}: {err})" if err is not None and str(err) else ""
    return DataFormatError(f"{archive} is not a readable .tar/.tar.gz/.zip archive{detail} "
                           "(corrupt or truncated download?); download it again")


def _parts(archive: Path, name: str) -> tuple[str, ...]:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts:
        raise _refuse(archive, name, "would be written outside the target (absolute path or '..')")
    return tuple(p for p in path.parts if p != ".")


@contextmanager
def _members(archive: Path) -> Iterator[list[Member]]:
    """The archive's members (each checked on its own), while the archive is open."""
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                yield [_zip_member(archive, zf, info) for info in zf.infolist()]
        else:
            with tarfile.open(archive) as tf:
                members = [_tar_member(archive, tf, m) for m in tf.getmembers()]
                _drain(tf)
                yield members
    except _READ_ERRORS as err:
        raise _corrupt(archive, err) from None


def _drain(tf: tarfile.TarFile) -> None:
    """Read the compressed stream to its end, so its own check runs (gzip's CRC-32 and length,
    bzip2's and xz's checksums): tarfile stops at the end-of-archive blocks and would not notice
    damaged data in a member it has skipped over."""
    assert tf.fileobj is not None
    while tf.fileobj.read(_CHUNK):
        pass


def _zip_member(archive: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> Member:
    parts = _parts(archive, info.filename)
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise _refuse(archive, info.filename, "is a symbolic link")
    if info.flag_bits & 0x1:
        raise _refuse(archive, info.filename, "is encrypted (lkca takes no passwords)")
    if info.compress_type not in _ZIP_METHODS:
        raise _refuse(archive, info.filename, f"uses zip compression method {info.compress_type}, "
                      f"which Python's zipfile cannot read (only {', '.join(_ZIP_METHODS.values())})")
    return Member(info.filename, parts, info.is_dir(), info.file_size, lambda: zf.open(info))


def _tar_member(archive: Path, tf: tarfile.TarFile, m: tarfile.TarInfo) -> Member:
    parts = _parts(archive, m.name)
    if m.issym() or m.islnk():
        raise _refuse(archive, m.name, "is a link (the data sets' archives hold files and folders "
                      "only)")
    if not (m.isreg() or m.isdir()):
        raise _refuse(archive, m.name, "is a device file or FIFO")

    def read() -> IO[bytes]:
        f = tf.extractfile(m)
        assert f is not None  # a regular file
        return f

    return Member(m.name, parts, m.isdir(), m.size if m.isreg() else 0, read)


def _check_target(target: Path) -> Path:
    """The folder to extract into, resolved (links followed), or DataFormatError when it cannot
    be one: a file, a link to nothing or a loop, not writable."""
    try:
        root = target.resolve(strict=False)
        if target.is_symlink() and not target.exists():
            raise DataFormatError(f"--to {target} is a symbolic link to nothing (or a link loop); "
                                  "point --to at a folder")
    except RuntimeError:  # a link loop (Python < 3.13)
        raise DataFormatError(f"--to {target} is a symbolic link loop; point --to at a "
                              "folder") from None
    existing = root
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        what = "" if existing == root else f" ({existing} is a file)"
        raise DataFormatError(f"--to {target} is not a folder{what}; point --to at a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise DataFormatError(f"--to {target}: {existing} is not writable (read-only or another "
                              "user's); extract into a writable folder")
    return root


def _check_plan(archive: Path, members: list[Member], root: Path, budget: int) -> None:
    """The members together: no file also a folder, no file twice, no clash with what the
    target holds, the declared sizes within the budget."""
    files: dict[tuple[str, ...], str] = {}
    folders: set[tuple[str, ...]] = set()
    for m in members:
        for i in range(1, len(m.parts)):
            folders.add(m.parts[:i])
        if m.is_dir:
            folders.add(m.parts)
        elif m.parts in files:
            raise _refuse(archive, m.name, "appears twice in the archive")
        elif m.parts:
            files[m.parts] = m.name
    for parts, name in files.items():
        if parts in folders:
            raise _refuse(archive, name, "is both a file and a folder in the archive (a file "
                          f"and {'/'.join(parts)}/...)")
    for parts in sorted(folders):
        _check_existing(archive, root, parts, want_dir=True)
    for parts in files:
        _check_existing(archive, root, parts, want_dir=False)
    declared = sum(m.size + MEMBER_COST for m in members)
    if declared > budget:
        raise _bomb(archive, declared)


def _check_existing(archive: Path, root: Path, parts: tuple[str, ...], want_dir: bool) -> None:
    path = root.joinpath(*parts)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as err:
        raise DataFormatError(f"cannot extract {archive} into {root}: {path} "
                              f"({err.strerror or err}); choose another --to") from None
    if stat.S_ISLNK(mode):
        raise DataFormatError(f"cannot extract {archive} into {root}: {path} is a symbolic link "
                              "(lkca writes no member through a link); remove it or choose "
                              "another --to")
    if want_dir and stat.S_ISDIR(mode):
        return
    what = "a folder" if stat.S_ISDIR(mode) else "a file"
    raise DataFormatError(f"cannot extract {archive} into {root}: {path} already exists as {what} "
                          "(an earlier extraction?) and lkca replaces nothing; delete it or "
                          "choose another --to")


def _bomb(archive: Path, size: int, declared: bool = True) -> DataFormatError:
    return DataFormatError(
        f"{archive} expands to {'' if declared else 'more than '}{size:,} bytes, over "
        f"{MAX_RATIO} times its "
        f"{archive.stat().st_size:,} bytes (the paper's archives expand about 1.1 times); "
        "refusing to extract it (a decompression bomb?): download the archive again from the "
        "official source")


def _extract(archive: Path, members: list[Member], root: Path, budget: int) -> None:
    """Write every member into a staging folder, then move each to its name; on any failure
    remove everything created (the folders made, the files moved, the staging folder)."""
    created: list[Path] = []  # folders made by this extraction, parents first
    moved: list[Path] = []
    staging: Path | None = None
    try:
        _make_folder(root, created)
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=root))
        spent = 0
        for m in members:
            spent += MEMBER_COST
            if m.is_dir or not m.parts:
                continue
            dest = staging.joinpath(*m.parts)
            dest.parent.mkdir(parents=True, exist_ok=True)
            spent = _copy(archive, m, dest, spent, budget)
        for m in members:
            if m.parts:
                final = root.joinpath(*m.parts)
                _make_folder(final if m.is_dir else final.parent, created)
                if not m.is_dir:
                    _move_new(staging.joinpath(*m.parts), final)
                    moved.append(final)
    except BaseException as err:
        for path in reversed(moved):
            path.unlink(missing_ok=True)
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        for folder in reversed(created):
            try:
                folder.rmdir()
            except OSError:
                pass
        if isinstance(err, OSError):
            raise _write_failure(archive, root, err) from None
        raise
    shutil.rmtree(staging, ignore_errors=True)


def _copy(archive: Path, m: Member, dest: Path, spent: int, budget: int) -> int:
    """Copy one member's bytes to ``dest`` (a new file); the budget spent so far."""
    try:
        source = m.open()
    except (RuntimeError, NotImplementedError, *_READ_ERRORS) as err:
        raise _corrupt(archive, err) from None
    with source, open(dest, "xb") as out:
        while True:
            try:
                chunk = source.read(_CHUNK)
            except (RuntimeError, NotImplementedError, *_READ_ERRORS) as err:
                raise _corrupt(archive, err) from None
            if not chunk:
                return spent
            spent += len(chunk)
            if spent > budget:
                raise _bomb(archive, spent, declared=False)
            out.write(chunk)


def _move_new(source: Path, dest: Path) -> None:
    """Move ``source`` to ``dest``, which must not exist: a hard link (refused by the kernel when
    ``dest`` appeared meanwhile) then the staging name removed; a rename where the file system
    has no hard links."""
    try:
        os.link(source, dest)
    except OSError as err:
        if err.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK):
            raise
        if dest.exists() or dest.is_symlink():
            raise FileExistsError(errno.EEXIST, "created meanwhile", str(dest)) from None
        os.rename(source, dest)
        return
    os.unlink(source)


def _make_folder(folder: Path, created: list[Path]) -> None:
    """Create ``folder`` and its missing parents, recording each one created."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        path.mkdir()
        created.append(path)


def _write_failure(archive: Path, root: Path, err: OSError) -> DataFormatError:
    fix = ("free disk space or choose another --to" if err.errno in (errno.ENOSPC, errno.EDQUOT)
           else "choose another --to")
    where = f" ({err.filename})" if err.filename else ""
    return DataFormatError(f"could not extract {archive} into {root}: {err.strerror or err}"
                           f"{where}; nothing was extracted: {fix}")


__all__ = ["MAX_RATIO", "MEMBER_COST", "MIN_BUDGET", "Member", "safe_extract"]
