"""One process per run folder: an advisory lock held for the whole run.

A second ``train`` (or ``--resume``) on a run folder that a live process
holds is refused with the holder's PID and host, instead of both runs
writing the same checkpoints and the later summary replacing the earlier.
The lock is an ``flock`` on ``RUN_DIR/.lock``: the kernel releases it when
its process exits for any reason (a crash, ``SIGKILL``), so a stale lock is
taken over by the next run without any clean-up, and there is no window in
which two processes both believe they hold it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pathlib
import socket
import time

from ssrnet_tf.errors import UserError

LOCK_NAME = ".lock"


class RunFolderInUse(UserError):
    """Another live process is training in this run folder."""


@contextlib.contextmanager
def run_lock(run_dir):
    """Holds the run folder's lock for the ``with`` block (creating the folder).

    Raises:
        RunFolderInUse: If another process holds it, naming that process.
    """
    run_dir = pathlib.Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    handle = open(run_dir / LOCK_NAME, "a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise RunFolderInUse(f"{run_dir}: this run folder is in use by {holder}; wait for that run to end, or set "
                                 "run.output_dir to another folder (nothing was changed).") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%dT%H:%M:%S')}\n")
        handle.flush()
        yield run_dir
    finally:
        handle.close()  # releases the lock


def holds_only_the_lock(run_dir) -> bool:
    """Whether ``run_dir`` is empty but for its lock file (a run folder not started yet)."""
    return all(entry.name == LOCK_NAME for entry in pathlib.Path(run_dir).iterdir())
