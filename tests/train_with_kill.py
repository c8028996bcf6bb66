"""``ssrnet-tf train`` that SIGKILLs itself at one file write (for tests/test_kill_resume.py).

Environment:
    KILL_RUN_DIR: the run folder; only renames into it are counted.
    KILL_AT_REPLACE: kill at this (1-based) rename; 0 or unset: never.
    KILL_AT_NAME: or kill at the first rename onto this path (relative to
        the run folder, e.g. ``log.csv`` or ``backup/training_metadata.json``).
    KILL_WHEN: ``before`` (the temporary file is written, the rename not
        done: a kill during the write) or ``after`` (right after it).

Every write of the run folder ends with an ``os.replace`` (atomic writes,
``.keras`` checkpoints, the backup, the pending best model), so counting
renames reaches every write, in order.
"""

import os
import signal
import sys


def main() -> int:
    run_dir = os.path.realpath(os.environ["KILL_RUN_DIR"]) + os.sep
    kill_at = int(os.environ.get("KILL_AT_REPLACE", "0") or 0)
    kill_name = os.environ.get("KILL_AT_NAME", "")
    when = os.environ.get("KILL_WHEN", "before")
    real_replace = os.replace
    count = [0]

    def replace(src, dst, *args, **kwargs):
        target = os.path.realpath(os.fspath(dst))
        if not target.startswith(run_dir):
            return real_replace(src, dst, *args, **kwargs)
        count[0] += 1
        chosen = count[0] == kill_at or target[len(run_dir):] == kill_name
        if chosen and when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        result = real_replace(src, dst, *args, **kwargs)
        if chosen and when == "after":
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    os.replace = replace
    from ssrnet_tf import cli  # pylint: disable=import-outside-toplevel

    return cli.main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
