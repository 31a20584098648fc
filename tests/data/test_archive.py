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
