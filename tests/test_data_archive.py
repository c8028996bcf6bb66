"""ssrnet_tf.data.archive: a face folder from a folder, a tar.gz or a zip."""

import io
import tarfile
import zipfile

import pytest

from ssrnet_tf.data import archive

NAMES = ("25_0_0_a.jpg.chip.jpg", "40_1_2_b.jpg.chip.jpg", "7_0_1_c.jpg.chip.jpg")


def _dataset(root):
    faces = root / "download" / "UTKFace"
    faces.mkdir(parents=True)
    for name in NAMES:
        (faces / name).write_bytes(b"jpeg")
    (root / "download" / "README.txt").write_text("licence")
    (root / "download" / "one_other.jpg").write_bytes(b"jpeg")  # fewer images than UTKFace/
    return root / "download"


def test_folder_with_images_is_returned_as_is(tmp_path):
    faces = _dataset(tmp_path) / "UTKFace"
    assert archive.faces_folder(faces) == faces


def test_subfolder_with_most_images_is_found(tmp_path):
    assert archive.faces_folder(_dataset(tmp_path)) == tmp_path / "download" / "UTKFace"


@pytest.mark.parametrize("kind", ["UTKFace.tar.gz", "UTKFace.zip"])
def test_archive_is_extracted_once(tmp_path, kind):
    source = _dataset(tmp_path)
    path = tmp_path / kind
    if kind.endswith(".zip"):
        with zipfile.ZipFile(path, "w") as opened:
            for name in NAMES:
                opened.write(source / "UTKFace" / name, f"UTKFace/{name}")
    else:
        with tarfile.open(path, "w:gz") as opened:
            opened.add(source / "UTKFace", arcname="UTKFace")
    folder = archive.faces_folder(path, extract_to=tmp_path / "data")
    assert folder == tmp_path / "data" / "UTKFace" / "UTKFace"
    assert sorted(p.name for p in folder.iterdir()) == sorted(NAMES)
    (folder / NAMES[0]).unlink()  # a second call reuses the extraction
    assert archive.faces_folder(path, extract_to=tmp_path / "data") == folder
    assert not (folder / NAMES[0]).exists()
    assert not list((tmp_path / "data").glob(".*partial"))


def test_tar_member_outside_the_folder_is_refused(tmp_path):
    path = tmp_path / "evil.tar"
    with tarfile.open(path, "w") as opened:
        info = tarfile.TarInfo("../outside.jpg")
        info.size = 4
        opened.addfile(info, io.BytesIO(b"jpeg"))
    with pytest.raises(Exception):  # tarfile's filter error, or ValueError on old Pythons
        archive.faces_folder(path, extract_to=tmp_path / "data")
    assert not (tmp_path / "outside.jpg").exists()


def test_errors_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing"):
        archive.faces_folder(tmp_path / "missing.tar.gz")
    (tmp_path / "notes.txt").write_text("not an archive")
    with pytest.raises(ValueError, match="not a tar or zip"):
        archive.faces_folder(tmp_path / "notes.txt", extract_to=tmp_path / "data")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no .jpg"):
        archive.faces_folder(tmp_path / "empty")
