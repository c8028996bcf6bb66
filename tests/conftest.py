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
