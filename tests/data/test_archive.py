import io
import tarfile
import zipfile

import pytest

from lkca.data.archive import safe_extract
from lkca.errors import DataFormatError


def _tar(path, members):
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))


def test_extracts_a_normal_archive(tmp_path):
    _tar(tmp_path / "a.tar.gz", [("cifar-10-batches-py/test_batch", b"x")])
    assert safe_extract(tmp_path / "a.tar.gz", tmp_path / "data") == [
        "cifar-10-batches-py/test_batch"]
    assert (tmp_path / "data" / "cifar-10-batches-py" / "test_batch").read_bytes() == b"x"


@pytest.mark.parametrize("evil", ["../escape.txt", "/tmp/lkca-absolute-escape.txt",
                                  "ok/../../escape.txt"])
@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_traversal_members_are_refused_and_nothing_is_written(tmp_path, evil, kind):
    archive = tmp_path / f"evil.{kind}"
    if kind == "tar":
        _tar(archive, [("good.txt", b"g"), (evil, b"e")])
    else:
        with zipfile.ZipFile(archive, "w") as zf:
            zf.writestr("good.txt", b"g")
            zf.writestr(zipfile.ZipInfo(evil), b"e")
    target = tmp_path / "data"
    with pytest.raises(DataFormatError, match="outside"):
        safe_extract(archive, target)
    assert not (tmp_path / "escape.txt").exists()
    assert not (target / "good.txt").exists()  # checked before anything is written


def test_corrupt_archive(tmp_path):
    (tmp_path / "x.tar.gz").write_bytes(b"garbage")
    with pytest.raises(DataFormatError, match="not a readable"):
        safe_extract(tmp_path / "x.tar.gz", tmp_path / "d")


def test_lkca_data_extract_command(tmp_path, capsys):
    from lkca.cli import main

    _tar(tmp_path / "a.tar.gz", [("cifar-10-batches-py/test_batch", b"x")])
    assert main(["data", "extract", str(tmp_path / "a.tar.gz"), "--to", str(tmp_path / "d")]) == 0
    assert (tmp_path / "d" / "cifar-10-batches-py" / "test_batch").read_bytes() == b"x"
    _tar(tmp_path / "evil.tar.gz", [("../escape.txt", b"e")])
    assert main(["data", "extract", str(tmp_path / "evil.tar.gz"), "--to", str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "outside" in err
    assert not (tmp_path / "escape.txt").exists()


def _one_line_refusal(capsys, argv, expected):
    from lkca.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and expected in err, err


def test_a_truncated_tar_gz_is_one_line(tmp_path, capsys):
    path = tmp_path / "data.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        for i in range(3):
            payload = bytes(range(256)) * 400
            info = tarfile.TarInfo(f"d/f{i}")
            info.size = len(payload)
            tf.addfile(info, io.BytesIO(payload))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    _one_line_refusal(capsys, ["data", "extract", str(path), "--to", str(tmp_path / "out")],
                      "corrupt or truncated")


def test_a_zip_holding_a_symbolic_link_is_refused(tmp_path, capsys):
    path = tmp_path / "data.zip"
    with zipfile.ZipFile(path, "w") as zf:
        info = zipfile.ZipInfo("d/link")
        info.external_attr = (0o120777 << 16)  # a symlink entry
        zf.writestr(info, "/etc/passwd")
    _one_line_refusal(capsys, ["data", "extract", str(path), "--to", str(tmp_path / "out")],
                      "is a symbolic link; refusing")
    assert not (tmp_path / "out" / "d" / "link").exists()


# --- all or nothing: every refusal one line, nothing created, every input byte-identical --------

def _zip(path, members, compression=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members:
            zf.writestr(name, data)


def _extract_refused(capsys, tmp_path, archive, target, expected):
    from tests.tiny_train import assert_refused

    return assert_refused(capsys, ["data", "extract", str(archive), "--to", str(target)],
                          expected, tmp_path)


def _patch_zip_header(path, name: bytes, offset: int, value: bytes):
    """Rewrite bytes of both headers (local and central) of member ``name``."""
    data = bytearray(path.read_bytes())
    for signature, name_at in ((b"PK\x03\x04", 30), (b"PK\x01\x02", 46)):
        start = data.index(signature + b"")
        while data[start + name_at:start + name_at + len(name)] != name:
            start = data.index(signature, start + 1)
        at = start + offset + (2 if signature == b"PK\x01\x02" else 0)
        data[at:at + len(value)] = value
    path.write_bytes(bytes(data))


def test_an_encrypted_zip_member_is_one_line(tmp_path, capsys):
    path = tmp_path / "enc.zip"
    _zip(path, [("d/a.txt", b"secret" * 100)])
    _patch_zip_header(path, b"d/a.txt", 6, b"\x01\x00")  # general purpose flag: encrypted
    _extract_refused(capsys, tmp_path, path, tmp_path / "out", "is encrypted")


def test_a_deflate64_zip_member_is_one_line(tmp_path, capsys):
    path = tmp_path / "d64.zip"
    _zip(path, [("d/a.txt", b"x" * 1000)])
    _patch_zip_header(path, b"d/a.txt", 8, b"\x09\x00")  # compression method 9: deflate64
    _extract_refused(capsys, tmp_path, path, tmp_path / "out", "compression method 9")


def test_a_broken_bzip2_member_is_one_line(tmp_path, capsys):
    path = tmp_path / "bz.zip"
    payload = bytes(range(256)) * 64
    _zip(path, [("d/a.bin", payload)], zipfile.ZIP_BZIP2)
    data = bytearray(path.read_bytes())
    start = data.index(b"BZh") + 10  # inside the bzip2 stream, past its magic
    data[start:start + 20] = b"\x00" * 20
    path.write_bytes(bytes(data))
    _extract_refused(capsys, tmp_path, path, tmp_path / "out", "corrupt or truncated")


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_a_damaged_member_after_good_ones_leaves_nothing(tmp_path, capsys, kind):
    members = [(f"d/f{i}", bytes([i]) * 5000 + bytes(range(256)) * 40) for i in range(4)]
    path = tmp_path / f"a.{kind}"
    if kind == "tar":
        _tar(path, members)
        data = bytearray(path.read_bytes())
        middle = len(data) * 3 // 4
        data[middle:middle + 40] = b"\x00" * 40  # a later member's compressed bytes
    else:
        _zip(path, members)
        data = bytearray(path.read_bytes())
        last = data.rindex(b"PK\x03\x04")
        data[last + 60:last + 100] = b"\xff" * 40
    path.write_bytes(bytes(data))
    target = tmp_path / "data"
    target.mkdir()
    (target / "mine.txt").write_text("kept")
    _extract_refused(capsys, tmp_path, path, target, "download it again")


@pytest.mark.parametrize("layout", ["a file then a/b", "a folder then a file"])
def test_an_archive_that_contradicts_itself_is_refused(tmp_path, capsys, layout):
    path = tmp_path / "x.tar.gz"
    if layout == "a file then a/b":
        _tar(path, [("a", b"file"), ("a/b", b"under it")])
    else:
        with tarfile.open(path, "w:gz") as tf:
            folder = tarfile.TarInfo("a")
            folder.type = tarfile.DIRTYPE
            tf.addfile(folder)
            info = tarfile.TarInfo("a")
            info.size = 1
            tf.addfile(info, io.BytesIO(b"f"))
    _extract_refused(capsys, tmp_path, path, tmp_path / "out", "is both a file and a folder")


def test_a_to_that_is_a_file_or_a_file_above_it_is_refused(tmp_path, capsys):
    _tar(tmp_path / "a.tar.gz", [("d/x", b"x")])
    (tmp_path / "file").write_text("mine")
    _extract_refused(capsys, tmp_path, tmp_path / "a.tar.gz", tmp_path / "file", "is not a folder")
    _extract_refused(capsys, tmp_path, tmp_path / "a.tar.gz", tmp_path / "file" / "sub",
                     "is not a folder")


def test_a_dangling_or_looping_link_as_to_or_in_the_target_is_refused(tmp_path, capsys):
    import os

    _tar(tmp_path / "a.tar.gz", [("d/x", b"x")])
    os.symlink(tmp_path / "nowhere", tmp_path / "dangling")
    _extract_refused(capsys, tmp_path, tmp_path / "a.tar.gz", tmp_path / "dangling",
                     "symbolic link")
    os.symlink(tmp_path / "loop", tmp_path / "loop")
    _extract_refused(capsys, tmp_path, tmp_path / "a.tar.gz", tmp_path / "loop", "symbolic link")
    for name, points_to in (("t1", "nowhere"), ("t2", "d")):  # TARGET/d a dangling link, a loop
        target = tmp_path / name
        target.mkdir()
        os.symlink(target / points_to, target / "d")
        _extract_refused(capsys, tmp_path, tmp_path / "a.tar.gz", target, "is a symbolic link")


def test_a_member_that_exists_in_the_target_is_never_replaced(tmp_path, capsys):
    _tar(tmp_path / "a.tar.gz", [("d/x", b"new"), ("d/y", b"new")])
    target = tmp_path / "data"
    (target / "d").mkdir(parents=True)
    (target / "d" / "y").write_text("the user's")
    _extract_refused(capsys, tmp_path, tmp_path / "a.tar.gz", target, "already exists as a file")
    (target / "d" / "y").unlink()
    (target / "d" / "x").mkdir()  # a folder where a member is a file
    _extract_refused(capsys, tmp_path, tmp_path / "a.tar.gz", target,
                     "already exists as a folder")


def test_a_second_archive_merges_into_existing_folders(tmp_path):
    _tar(tmp_path / "a.tar.gz", [("d/x", b"1")])
    _tar(tmp_path / "b.tar.gz", [("d/y", b"2")])
    safe_extract(tmp_path / "a.tar.gz", tmp_path / "data")
    safe_extract(tmp_path / "b.tar.gz", tmp_path / "data")
    assert sorted(p.name for p in (tmp_path / "data" / "d").iterdir()) == ["x", "y"]
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["d"]  # no staging folder left


def test_a_read_only_target_is_refused(tmp_path, capsys, monkeypatch):
    import os

    _tar(tmp_path / "a.tar.gz", [("d/x", b"x")])
    target = tmp_path / "ro"
    target.mkdir()
    real = os.access
    # root writes anywhere chmod allows nothing; a read-only mount is what access(2) reports
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(target)
                        else real(p, mode))
    _extract_refused(capsys, tmp_path, tmp_path / "a.tar.gz", target, "is not writable")


BOMB_CHILD = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the cap fails (EFBIG), as on a full disk
cap = int(sys.argv[3])
resource.setrlimit(resource.RLIMIT_FSIZE, (cap, cap))  # no file may grow past the cap
resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
from lkca.cli import main
sys.exit(main(["data", "extract", sys.argv[1], "--to", sys.argv[2]]))
"""


def _run_capped(archive, target, cap):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-c", BOMB_CHILD, str(archive), str(target), str(cap)],
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("kind", ["zip", "tar.gz", "many empty files"])
def test_a_decompression_bomb_is_refused_before_writing(tmp_path, kind):
    from lkca.data.archive import MAX_RATIO
    from tests.tiny_train import snapshot

    path = tmp_path / f"bomb.{kind.replace(' ', '_')}"
    if kind == "zip":  # 200 MB of zeros in about 200 KB
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("z.bin", "w") as f:
            for _ in range(200):
                f.write(bytes(1 << 20))
    elif kind == "tar.gz":
        with tarfile.open(path, "w:gz") as tf:
            info = tarfile.TarInfo("z.bin")
            info.size = 200 << 20
            tf.addfile(info, io.BufferedReader(_Zeros(info.size)))
    else:
        with tarfile.open(path, "w:gz") as tf:
            for i in range(20000):
                tf.addfile(tarfile.TarInfo(f"e/{i}"), io.BytesIO(b""))
    assert path.stat().st_size * MAX_RATIO < (10 << 20) < (200 << 20)
    before = snapshot(tmp_path)
    proc = _run_capped(path, tmp_path / "out", 8 << 20)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "decompression bomb" in proc.stderr, proc.stderr
    assert snapshot(tmp_path) == before


class _Zeros(io.RawIOBase):
    def __init__(self, size):
        self.left = size

    def readable(self):
        return True

    def readinto(self, buffer):
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n


def test_a_full_disk_mid_extraction_leaves_nothing(tmp_path):
    import random

    from tests.tiny_train import snapshot

    rng = random.Random(0)  # files that do not compress: 100 kB, then 2 MiB
    _tar(tmp_path / "a.tar.gz", [("d/f0", rng.randbytes(100_000)), ("d/f1", rng.randbytes(2 << 20))])
    target = tmp_path / "data"
    target.mkdir()
    (target / "mine.txt").write_text("kept")
    before = snapshot(tmp_path)
    proc = _run_capped(tmp_path / "a.tar.gz", target, 1 << 20)  # the 2nd file fails half-written
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "nothing was extracted" in proc.stderr, proc.stderr
    assert snapshot(tmp_path) == before
