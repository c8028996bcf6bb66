"""Which code produced a result: the git commit of the checkout, recorded when a run starts."""

from __future__ import annotations

import pathlib
import subprocess
from typing import Dict, Optional

_ROOT = pathlib.Path(__file__).resolve().parents[2]


def _git(*args: str) -> Optional[str]:
    try:
        result = subprocess.run(["git", "-C", str(_ROOT), *args], capture_output=True, text=True, check=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip()


def code_version() -> Dict[str, object]:
    """``{"commit": short hash or None, "dirty": bool or None}`` of the checkout this package runs from.

    ``None`` where the package is not in a git checkout (an installed wheel).
    ``dirty`` is true when tracked files differ from the commit, so the
    commit alone does not reproduce the result.
    """
    commit = _git("rev-parse", "--short", "HEAD")
    if not commit:
        return {"commit": None, "dirty": None}
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def describe(version: Optional[Dict[str, object]]) -> str:
    """``"abc1234"``, ``"abc1234 + uncommitted changes"`` or ``"not recorded"``."""
    if not version or not version.get("commit"):
        return "not recorded"
    return f"{version['commit']}" + (" + uncommitted changes" if version.get("dirty") else "")
