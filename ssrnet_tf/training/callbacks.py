"""Callbacks that keep a run folder consistent whenever the process dies.

Every file is written to a temporary name and renamed into place, so a
``SIGKILL`` at any moment leaves either the previous or the new version,
never half of one. At the end of epoch ``N`` the writes happen in this
order (the :class:`RunLogger` comes before the backup in the callback
list):

1. ``log.csv`` with the row of epoch ``N``;
2. ``last.keras``;
3. if epoch ``N`` is the best so far: ``best.pending.keras`` and
   ``best.pending.json`` (its epoch and monitored value);
4. the backup: weights + optimizer state, then ``training_metadata.json``
   recording ``N + 1`` completed epochs. **This is the commit.**
5. at the next epoch's start (or the end of training) the pending best
   model is renamed to ``best.keras`` / ``best.json``.

On resume, the backup's epoch count decides: log rows of later epochs are
dropped (their epoch is trained again), a pending best of a committed epoch
is renamed into place, one of an uncommitted epoch is deleted. So a kill
at any instant loses no completed epoch's row, the log has every epoch
exactly once, and ``best.keras`` is always the model of the best logged
value. Temporary files of killed writes are removed on resume and at the
end of a run (:func:`remove_temp_files`).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import pathlib
import shutil
import tempfile
import time

import keras

from ssrnet_tf.errors import UserError
from ssrnet_tf.utils import atomic
from ssrnet_tf.utils.atomic import atomic_write_bytes

BEST, BEST_INFO = "best.keras", "best.json"
PENDING, PENDING_INFO = "best.pending.keras", "best.pending.json"


def remove_temp_files(run_dir) -> list:
    """Removes what killed writes left in a run folder.

    That is the temporary files of :mod:`ssrnet_tf.utils.atomic` and of the
    backup, and ``tmp*/`` folders holding only ``.keras`` files (left by
    earlier versions' checkpoint saving).

    Returns:
        The paths removed.
    """
    run_dir = pathlib.Path(run_dir)
    removed = atomic.remove_temp_files(run_dir)
    for folder in run_dir.rglob("tmp*"):
        if folder.is_dir() and all(p.suffix == ".keras" for p in folder.iterdir()):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` whose files are replaced atomically.

    The weights file (model and optimizer variables) is written under a
    temporary name and renamed, then the metadata (completed epoch count)
    is; on restart the weights and the epoch always belong together or the
    weights are one epoch ahead, which repeats no update.

    Args:
        backup_dir: The backup folder.
        write: ``False`` restores from it but never writes it (the workers
            of a multi-worker run other than the chief).
    """

    def __init__(self, backup_dir, write: bool = True):
        super().__init__(str(backup_dir), save_freq="epoch", delete_checkpoint=False, double_checkpoint=False)
        self.write = write  # False: restore only (a multi-worker run's non-chief workers)

    def _save_model(self):
        if not self.write:
            return
        directory = pathlib.Path(self.backup_dir)
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=atomic.temp_prefix("weights"), suffix=".tmp.weights.h5")
        os.close(fd)
        os.chmod(tmp, atomic.file_mode())  # h5py keeps the mode of the file it truncates
        try:
            self.model.save_weights(tmp, overwrite=True)
            os.replace(tmp, self._weights_path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        metadata = {"epoch": self._current_epoch, "batch": self._last_batch_seen}
        atomic_write_bytes(self._training_metadata_path, json.dumps(metadata).encode())


def completed_epochs(backup_dir) -> int:
    """Epochs recorded by the backup in ``backup_dir`` (0 without one)."""
    path = pathlib.Path(backup_dir) / "training_metadata.json"
    if not path.is_file():
        return 0
    return int(json.loads(path.read_text())["epoch"])


class RunLogger(keras.callbacks.Callback):
    """CSV log, best/last ``.keras`` checkpoints and a one-line epoch summary.

    Must come *before* :class:`AtomicBackupAndRestore` in the callback
    list (see the module docstring for the write order).

    Args:
        run_dir: The run folder.
        spec: :class:`ssrnet_tf.model_spec.ModelSpec` saved with checkpoints.
        monitor: Metric deciding the best checkpoint (lower is better).
        backup_dir: Folder of the :class:`AtomicBackupAndRestore` backup;
            log rows and a pending best model of epochs after its last
            completed one are dropped on resume.
    """

    def __init__(self, run_dir, spec, monitor: str = "val_loss", backup_dir=None):
        super().__init__()
        self.run_dir = pathlib.Path(run_dir)
        self.spec = spec
        self.monitor = monitor
        self.backup_dir = backup_dir
        self.csv_path = self.run_dir / "log.csv"
        self.rows = []
        self.best = math.inf
        self._start = 0.0
        self._rate = float("nan")

    def on_train_begin(self, logs=None):
        done = completed_epochs(self.backup_dir) if self.backup_dir else 0
        remove_temp_files(self.run_dir)
        self._settle_pending(done)
        if self.csv_path.is_file():
            with open(self.csv_path, newline="") as handle:
                self.rows = [row for row in csv.DictReader(handle) if int(row["epoch"]) < done]
        for row in self.rows:
            value = row.get(self.monitor)
            if value not in (None, ""):
                self.best = min(self.best, float(value))

    def on_epoch_begin(self, epoch, logs=None):
        self._settle_pending(epoch)  # the backup of every earlier epoch is complete
        self._start = time.time()
        # The rate the epoch trains with (at its end the schedule already points at the next epoch's).
        self._rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    def on_epoch_end(self, epoch, logs=None):
        from ssrnet_tf.model_spec import save_keras  # pylint: disable=import-outside-toplevel

        logs = dict(logs or {})
        row = {"epoch": epoch, "seconds": round(time.time() - self._start, 2)}
        row["learning_rate"] = self._rate
        row.update({key: float(value) for key, value in sorted(logs.items()) if key != "learning_rate"})
        self.rows.append(row)
        self._write_csv()
        save_keras(self.model, self.run_dir / "last.keras", self.spec)
        value = logs.get(self.monitor)
        improved = value is not None and value < self.best
        if improved:
            self.best = value
            save_keras(self.model, self.run_dir / PENDING, self.spec)
            atomic_write_bytes(self.run_dir / PENDING_INFO,
                               json.dumps({"epoch": epoch, self.monitor: float(value)}).encode())
        mae = next((logs[k] for k in ("val_age_mae", "val_mae", "val_loss") if k in logs), None)
        summary = f"epoch {epoch + 1}: loss {logs.get('loss', float('nan')):.4f}"
        if mae is not None:
            summary += f" | validation MAE {mae:.3f}"
        summary += f" | lr {row['learning_rate']:.2e} | {row['seconds']:.0f}s" + (" | best" if improved else "")
        print(summary, flush=True)

    def on_train_end(self, logs=None):
        self._settle_pending(math.inf)

    def _settle_pending(self, done) -> None:
        """Renames a pending best model of a committed epoch (< ``done``) into place, else deletes it."""
        pending, info = self.run_dir / PENDING, self.run_dir / PENDING_INFO
        if not info.is_file():
            pending.unlink(missing_ok=True)  # its info was never written: an uncommitted epoch
            return
        epoch = json.loads(info.read_text())["epoch"]
        if epoch < done:
            if pending.is_file():
                os.replace(pending, self.run_dir / BEST)
            os.replace(info, self.run_dir / BEST_INFO)
        else:
            pending.unlink(missing_ok=True)
            info.unlink(missing_ok=True)

    def _write_csv(self):
        fields = []
        for row in self.rows:
            fields += [key for key in row if key not in fields]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=fields)
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write_bytes(self.csv_path, buffer.getvalue().encode())


class TrainingDiverged(UserError):
    """The training loss became NaN or infinite."""


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops training at the first batch whose loss is not finite, naming the epoch and batch.

    Keras' ``TerminateOnNaN`` lets the epoch end, so the epoch-end callbacks
    would save a NaN ``last.keras`` and back it up. This raises at once
    instead: the epoch never ends, the backup keeps the last good epoch, and
    no NaN model file is written.

    Args:
        learning_rate: The run's (peak) learning rate, for the advice.
    """

    def __init__(self, learning_rate: float):
        super().__init__()
        self.learning_rate = float(learning_rate)
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        value = float(keras.ops.convert_to_numpy(loss))
        if not math.isfinite(value):
            raise TrainingDiverged(
                f"the training loss became {value} in epoch {self._epoch + 1}, batch {batch + 1}; training stopped "
                f"there, the last completed epoch's backup is kept and no model was saved. Lower the learning rate "
                f"(e.g. optimizer.learning_rate={self.learning_rate / 10:g}) and start a new run, or --resume from "
                "the backup with the lower rate.")
