"""Shared fixtures: paths to ../shared, skipped with a reason when absent."""

from __future__ import annotations

import os
import pathlib

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED = pathlib.Path(os.environ.get("SSRNET_TF_SHARED", REPO_ROOT.parent / "shared"))
REFERENCE_DIR = SHARED / "reference" / "ssrnet"
UTKFACE_DIR = SHARED / "data" / "utkface" / "UTKFace"
REFERENCE_NAMES = ("imdb", "wiki", "morph2", "megaface_asian")


@pytest.fixture(scope="session", autouse=True)
def _face_cache_dir(tmp_path_factory):
    """Decoded-face caches of the tests go to a temporary folder, never the user's ``~/.cache``."""
    if "SSRNET_TF_CACHE_DIR" in os.environ:
        yield pathlib.Path(os.environ["SSRNET_TF_CACHE_DIR"])
        return
    folder = tmp_path_factory.mktemp("face_cache")
    os.environ["SSRNET_TF_CACHE_DIR"] = str(folder)
    yield folder
    del os.environ["SSRNET_TF_CACHE_DIR"]


def _require(path: pathlib.Path, what: str) -> pathlib.Path:
    if not path.exists():
        pytest.skip(f"{what} not found at {path} (../shared is absent in this checkout)")
    return path


@pytest.fixture(scope="session")
def reference_dir() -> pathlib.Path:
    """Folder of the published SSR-Net weights and test vectors."""
    return _require(REFERENCE_DIR, "reference SSR-Net weights")


@pytest.fixture(scope="session")
def utkface_dir() -> pathlib.Path:
    """Folder of the shared UTKFace faces."""
    return _require(UTKFACE_DIR, "UTKFace faces")


#: What a wheel is built from (a copy, so no stale build/ folder of the checkout leaks in).
_WHEEL_SOURCES = ("ssrnet_tf", "setup.cfg", "setup.py", "pyproject.toml", "README.md", "LICENSE")


@pytest.fixture(scope="session")
def built_wheel(tmp_path_factory) -> pathlib.Path:
    """The wheel built from this checkout (no network: this venv's setuptools)."""
    import shutil  # pylint: disable=import-outside-toplevel
    import subprocess  # pylint: disable=import-outside-toplevel
    import sys  # pylint: disable=import-outside-toplevel

    source = tmp_path_factory.mktemp("wheel_source")
    for name in _WHEEL_SOURCES:
        path = REPO_ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.pyd"))
        else:
            shutil.copy2(path, source / name)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(out), str(source)], check=True, capture_output=True, timeout=300)
    (wheel,) = out.glob("ssrnet_tf-*.whl")
    return wheel


def make_layered_venv(path: pathlib.Path) -> pathlib.Path:
    """A fresh venv that sees this venv's packages but not its ssrnet_tf.

    Like Colab, where TensorFlow and friends are preinstalled: installing a
    wheel there needs no download, and the ssrnet_tf it imports afterwards
    is the wheel's (this venv's editable install is not activated: its
    ``.pth`` files are not processed). Returns the venv's python.
    """
    import site  # pylint: disable=import-outside-toplevel
    import subprocess  # pylint: disable=import-outside-toplevel
    import sys  # pylint: disable=import-outside-toplevel
    import sysconfig  # pylint: disable=import-outside-toplevel

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, timeout=120)
    python = path / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    base = [p for p in site.getsitepackages() if p.startswith(sys.prefix)] or [sysconfig.get_paths()["purelib"]]
    (pathlib.Path(purelib) / "base_env.pth").write_text("\n".join(base) + "\n")
    return python
