"""The ADE20K loader on tiny files written in the real ADEChallengeData2016 layout (the writer and
the ``ade`` fixture live in conftest.py)."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lkca.data.ade20k import ADE20K, load_ade20k, reduce_zero_label
from lkca.errors import DataFormatError


def test_reads_pairs_by_stem_and_reduces_zero_label(ade: Path):
    ds = load_ade20k(ade, "train", check=True)
    assert len(ds) == 2 and [p.stem for p in ds.image_paths] == [p.stem for p in ds.label_paths]
    assert ds.image_paths[0].name == "ADE_train_00000001.jpg"
    image, label = ds[0]
    assert image.dtype == np.uint8 and image.shape == (24, 32, 3)
    assert label.dtype == np.uint8 and label.shape == (24, 32)
    assert set(np.unique(label[:, :8])) == {255} and set(np.unique(label[:, 8:16])) == {0}
    assert set(np.unique(label[:, 16:])) == {149}
    assert np.array_equal(ds.decode_label(0, reduce=False)[:, 16:], np.full((24, 16), 150))
    val = ADE20K(ade / "ADEChallengeData2016", "validation")  # the folder itself also works
    assert len(val) == 1 and val[0][0].shape == (40, 16, 3) and val.num_classes == 150
    assert reduce_zero_label(np.array([0, 1, 150], np.uint8)).tolist() == [255, 0, 149]


def test_missing_annotation_and_orphan_annotation(ade: Path, write_pair):
    root = ade / "ADEChallengeData2016"
    (root / "annotations" / "training" / "ADE_train_00000002.png").unlink()
    with pytest.raises(DataFormatError, match=r"ADE_train_00000002\.jpg has no annotation"):
        ADE20K(ade, "training")
    (root / "images" / "validation" / "ADE_val_00000001.jpg").unlink()
    write_pair(root, "validation", "ADE_val_00000002")
    with pytest.raises(DataFormatError, match=r"ADE_val_00000001\.png has no image"):
        ADE20K(ade, "val")


def test_corrupt_jpg_names_the_file(ade: Path):
    path = ade / "ADEChallengeData2016" / "images" / "training" / "ADE_train_00000002.jpg"
    path.write_bytes(path.read_bytes()[:200])  # truncated
    ds = ADE20K(ade, "training")
    ds[0]  # the intact pair still decodes
    with pytest.raises(DataFormatError, match=r"ADE_train_00000002\.jpg cannot be decoded"):
        ds[1]
    path.write_bytes(b"not a jpeg at all")
    with pytest.raises(DataFormatError, match=r"ADE_train_00000002\.jpg cannot be read"):
        ds.check_sizes()


def test_size_mismatch_names_the_label(ade: Path, write_pair):
    root = ade / "ADEChallengeData2016"
    write_pair(root, "training", "ADE_train_00000003", size=(24, 32))
    Image.fromarray(np.ones((20, 32), np.uint8), mode="L").save(
        root / "annotations" / "training" / "ADE_train_00000003.png")
    ds = ADE20K(ade, "training")
    with pytest.raises(DataFormatError, match=r"ADE_train_00000003\.png is 32x20 but its image"):
        ds[2]
    with pytest.raises(DataFormatError, match=r"ADE_train_00000003\.png is 32x20"):
        load_ade20k(ade, "training", check=True)


def test_label_above_150_and_rgb_label(ade: Path, write_pair):
    root = ade / "ADEChallengeData2016"
    bad = np.ones((24, 32), np.uint8)
    bad[3, 4] = 151
    write_pair(root, "validation", "ADE_val_00000002", label=bad)
    ds = ADE20K(ade, "validation")
    with pytest.raises(DataFormatError, match=r"ADE_val_00000002\.png has label value 151"):
        ds[1]
    Image.fromarray(np.zeros((24, 32, 3), np.uint8)).save(
        root / "annotations" / "validation" / "ADE_val_00000002.png")
    with pytest.raises(DataFormatError, match=r"ADE_val_00000002\.png is a RGB image"):
        ds[1]


def test_missing_folders_and_bad_split(tmp_path: Path):
    with pytest.raises(DataFormatError, match="ADEChallengeData2016 does not exist"):
        ADE20K(tmp_path, "training")
    (tmp_path / "ADEChallengeData2016" / "images" / "training").mkdir(parents=True)
    with pytest.raises(DataFormatError, match=r"annotations/training does not exist"):
        ADE20K(tmp_path, "training")
    (tmp_path / "ADEChallengeData2016" / "annotations" / "training").mkdir(parents=True)
    with pytest.raises(DataFormatError, match="has no .jpg images"):
        ADE20K(tmp_path, "training")
    with pytest.raises(DataFormatError, match="no split 'testing'"):
        ADE20K(tmp_path, "testing")


@pytest.mark.parametrize("kind", ["image", "label"])
@pytest.mark.parametrize("pixels", [20000 * 20000, 10000 * 10000])  # PIL: error, warning
def test_a_decompression_bomb_is_refused_from_its_header(ade: Path, kind: str, pixels: int):
    """An image or label map whose header declares more pixels than PIL's bomb limit (400M: PIL's
    error; 100M: PIL only warns, lkca refuses it too) names the file and is never decoded."""
    from png_headers import write_header_only_png

    root = ade / "ADEChallengeData2016"
    side = int(pixels ** 0.5)
    if kind == "image":
        path = root / "images" / "training" / "ADE_train_00000002.jpg"
        write_header_only_png(path, side, side, "RGB")
    else:
        path = root / "annotations" / "training" / "ADE_train_00000002.png"
        write_header_only_png(path, side, side, "L")
    ds = ADE20K(ade, "training")
    ds[0]  # the intact pair still decodes
    with pytest.raises(DataFormatError, match=path.name) as err:
        ds[1]
    assert "\n" not in str(err.value) and "decompression bomb" in str(err.value)
    with pytest.raises(DataFormatError, match=path.name):
        ds.check_sizes()
