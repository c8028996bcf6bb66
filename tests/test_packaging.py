"""The package as published: one repository URL, a complete wheel."""

import configparser
import re
import zipfile

import pytest

from conftest import REPO_ROOT

BADGE = re.compile(r"colab\.research\.google\.com/github/([\w.-]+/[\w.-]+)/blob/main/(notebooks/[\w.-]+\.ipynb)")


def _metadata_url() -> str:
    config = configparser.ConfigParser()
    config.read(REPO_ROOT / "setup.cfg")
    return config["metadata"]["url"]


def _published_texts():
    paths = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))]
    return {path.relative_to(REPO_ROOT).as_posix(): path.read_text() for path in paths}


def test_the_repository_url_is_set_once_in_the_package_metadata():
    url = _metadata_url()
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url), url
    assert "OWNER" not in url


def test_badges_and_install_cells_name_the_metadata_repository():
    repository = _metadata_url().removeprefix("https://github.com/")
    badges = 0
    for name, text in _published_texts().items():
        assert "OWNER/" not in text, f"{name} still has the OWNER placeholder"
        for found, notebook in BADGE.findall(text):
            badges += 1
            assert found == repository, f"{name}: badge names {found}, setup.cfg says {repository}"
            assert (REPO_ROOT / notebook).is_file(), f"{name}: badge for a missing {notebook}"
        for found in re.findall(r"github\.com/([\w.-]+/[\w.-]*ssrnet-tf\b)", text):
            assert found == repository, f"{name}: names github.com/{found}, setup.cfg says {repository}"
    assert badges >= 2 * len(list((REPO_ROOT / "notebooks").glob("*.ipynb")))  # README + each notebook


def test_readme_lists_every_notebook():
    readme = (REPO_ROOT / "README.md").read_text()
    for path in (REPO_ROOT / "notebooks").glob("*.ipynb"):
        assert f"/blob/main/notebooks/{path.name})" in readme, f"README has no Colab badge for {path.name}"


@pytest.mark.slow
def test_wheel_has_configs_package_data_and_metadata(built_wheel):
    with zipfile.ZipFile(built_wheel) as wheel:
        names = set(wheel.namelist())
        (metadata_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = wheel.read(metadata_name).decode()
    data = [p for pattern in ("*.yaml", "*.keras", "*.tflite", "*.md") for p in (REPO_ROOT / "ssrnet_tf").rglob(pattern)]
    data += list((REPO_ROOT / "ssrnet_tf" / "pretrained_models").glob("*.json"))
    assert any(p.suffix == ".yaml" for p in data)
    missing = [p.relative_to(REPO_ROOT).as_posix() for p in data if p.relative_to(REPO_ROOT).as_posix() not in names]
    assert not missing, f"package data left out of the wheel: {missing}"
    assert f"Home-page: {_metadata_url()}" in metadata or f"Project-URL: Source, {_metadata_url()}" in metadata
    assert re.search(r"^Author: \S", metadata, re.M)
    assert metadata.count("Classifier: ") >= 5
    assert "ssrnet_tf/cli.py" in names
    # The optional C pyramid is compiled into the wheel wherever this checkout's was.
    from ssrnet_tf.faces import area_pyramid

    if area_pyramid.COMPILED:
        assert any(n.startswith("ssrnet_tf/faces/_area_pyramid.") for n in names), sorted(names)[:20]
