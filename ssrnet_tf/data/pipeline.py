"""tf.data input pipelines from a :class:`SampleTable` to model-ready batches.

:func:`make_dataset` turns a table into batches of ``(images, targets)``:
float32 ``(batch, size, size, 3)`` raw 0-255 **BGR** pixels (the models'
input) and either the ages ``(batch,)`` or, given a ``target_encoder`` (a
head's or an ``AgeTask``'s ``encode_targets``), a dict of per-output
targets. Per-sample targets are computed once, up front, from the table's
labels and gathered by sample index inside the graph.

The graph per sample: read file -> decode (JPEG/PNG/BMP/GIF; grey and RGBA
become 3-channel BGR) -> bilinear resize -> uint8 -> optional cache (memory
or file) -> shuffle -> batch -> augment (:mod:`ssrnet_tf.data.augment`) ->
float32 + targets -> prefetch (AUTOTUNE). With ``cache="faces"`` the first
steps happen once, into the persistent decoded-face cache
(:mod:`ssrnet_tf.data.face_cache`), and the graph is: shuffled sample
indices -> batch -> gather the batch's uint8 faces from the cache ->
augment -> float32 + targets -> prefetch.

Bad input never stops an epoch and is never dropped silently:

* entries a reader could not label are in the table's report;
* every file is checked before the graph is built
  (:func:`ssrnet_tf.data.file_check.check_image_files`: missing, empty,
  not an image, not decodable); bad files are left out with a warning that
  names them;
* should a file still fail in the graph (deleted or damaged after the
  check), ``ignore_errors`` skips it; counters before and after the decode
  notice, and :meth:`InputReport.refresh` (run by
  :class:`InputReportCallback` after each epoch) names the file.

:class:`InputReport` counts read, skipped and used samples, lists every
skipped one with its reason, logs the counts and is written as JSON beside
the run (``<run_dir>/input_report_<name>.json``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import pathlib
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import keras
import numpy as np
import tensorflow as tf

from ssrnet_tf.data import augment as augment_lib
from ssrnet_tf.data import decode, face_cache, file_check, sample_table, sampling
from ssrnet_tf.data.folder_walk import display_path
from ssrnet_tf.utils import atomic

logger = logging.getLogger(__name__)

SAMPLING = ("sequential", "balanced")
REPORT_FORMAT = "ssrnet_tf.input_report"


@dataclasses.dataclass
class PipelineConfig:
    """How :func:`make_dataset` builds a pipeline.

    Attributes:
        input_size: Side of the square model input (64 for SSR-Net).
        batch_size: Images per batch (50 in the SSR-Net paper).
        shuffle: Shuffle every epoch (seeded). Unshuffled pipelines keep
            the table's row order (minus skipped rows).
        shuffle_buffer: Shuffle buffer; ``None`` shuffles the whole set.
        cache: ``None`` (decode every epoch), ``"memory"`` (decode once
            per pipeline, in memory), ``"faces"`` (the persistent
            decoded-face cache of :mod:`ssrnet_tf.data.face_cache`, shared
            by every run that reads the same files at the same size and
            crop), or a file path prefix (a ``tf.data`` cache file; a
            fingerprint of the file list and size is appended, so a cache is
            never reused for other data).
        cache_dir: Folder of the ``"faces"`` caches (``None``:
            :func:`ssrnet_tf.data.face_cache.default_cache_dir`).
        crop: Crop settings the image files were made with (part of the
            ``"faces"`` cache key: other crops, another cache).
        augment: Augmentations, or ``None``.
        sampling: ``"sequential"`` (each image once per epoch) or
            ``"balanced"`` (age classes equally likely; endless, train with
            ``steps_per_epoch``).
        class_bin_width: Years per age class for balanced sampling.
        drop_remainder: Drop a last partial batch.
        deterministic: Keep element order in parallel maps, so the same seed
            gives the same batches (a little slower).
        seed: Seed of shuffling, class choice and augmentation.
        file_check: ``"decode"`` (fully decode every file up front) or
            ``"header"`` (existence, size, signature only; a damaged file is
            then caught in the graph).
        file_check_cache: JSON file caching the file verdicts.
    """

    input_size: int = 64
    batch_size: int = 50
    shuffle: bool = True
    shuffle_buffer: Optional[int] = None
    cache: Optional[str] = "memory"
    cache_dir: Optional[str] = None
    crop: Optional[Dict[str, Any]] = None
    augment: Optional[augment_lib.AugmentConfig] = None
    sampling: str = "sequential"
    class_bin_width: float = 1.0
    drop_remainder: bool = False
    deterministic: bool = False
    seed: int = 0
    file_check: str = "decode"
    file_check_cache: Optional[str] = None

    def __post_init__(self):
        if self.input_size < 1 or self.batch_size < 1:
            raise ValueError(f"input_size and batch_size must be >= 1, got {self.input_size}, {self.batch_size}.")
        if self.sampling not in SAMPLING:
            raise ValueError(f"sampling must be one of {SAMPLING}, got {self.sampling!r}.")
        if self.file_check not in file_check.LEVELS:
            raise ValueError(f"file_check must be one of {file_check.LEVELS}, got {self.file_check!r}.")
        if self.shuffle_buffer is not None and self.shuffle_buffer < 1:
            raise ValueError(f"shuffle_buffer must be >= 1, got {self.shuffle_buffer}.")
        if isinstance(self.augment, dict):
            self.augment = augment_lib.AugmentConfig.from_dict(self.augment)

    def evaluation(self) -> "PipelineConfig":
        """This config for evaluation: no shuffle, no augmentation, sequential, all samples."""
        return dataclasses.replace(self, shuffle=False, augment=None, sampling="sequential", drop_remainder=False)


@dataclasses.dataclass
class InputReport:
    """What a pipeline read, skipped and used.

    Attributes:
        name: Pipeline name (``"train"``, ``"val"``...).
        dataset: The table's name.
        read: Entries read: the table's rows plus the entries its reader
            skipped.
        used: Samples the pipeline delivers per epoch.
        skipped: One ``{"path", "reason", "stage"}`` per skipped entry;
            stage ``"label"`` (reader), ``"file"`` (up-front check) or
            ``"runtime"`` (failed in the graph). ``read == used + len(skipped)``.
        input_size: Model input side.
        sampling: ``"sequential"`` or ``"balanced"``.
        steps_per_epoch: Batches in one pass over the used samples.
        class_counts: Images per age class (balanced sampling).
        reader: The reader's report without its ``skipped`` list.
        path: Where the report was last written.
    """

    name: str
    dataset: str
    read: int
    used: int
    skipped: List[Dict[str, str]]
    input_size: int
    sampling: str
    steps_per_epoch: int
    class_counts: Optional[Dict[str, int]] = None
    reader: Dict[str, Any] = dataclasses.field(default_factory=dict)
    path: Optional[str] = None
    # Graph-side counters and the files the graph sees (not serialised).
    _attempted: Optional[tf.Variable] = dataclasses.field(default=None, repr=False)
    _delivered: Optional[tf.Variable] = dataclasses.field(default=None, repr=False)
    _paths: Tuple[str, ...] = dataclasses.field(default=(), repr=False)

    def counts(self) -> Dict[str, int]:
        """``read``, ``skipped`` (and per stage), ``used``."""
        stages = {stage: sum(1 for s in self.skipped if s["stage"] == stage) for stage in ("label", "file", "runtime")}
        return {"read": self.read, "skipped": len(self.skipped), "used": self.used,
                **{f"skipped_{stage}": count for stage, count in stages.items()}}

    def to_dict(self) -> Dict[str, Any]:
        """The JSON document :meth:`write` writes."""
        return {
            "format": REPORT_FORMAT,
            "name": self.name,
            "dataset": self.dataset,
            "counts": self.counts(),
            "input_size": self.input_size,
            "sampling": self.sampling,
            "steps_per_epoch": self.steps_per_epoch,
            "class_counts": self.class_counts,
            "skipped": self.skipped,
            "reader": self.reader,
        }

    def write(self, path: Union[str, os.PathLike, None] = None) -> Optional[pathlib.Path]:
        """Writes the report as JSON (atomically) to ``path`` or where it was last written."""
        path = path or self.path
        if path is None:
            return None
        self.path = str(path)
        return atomic.atomic_write_bytes(path, json.dumps(self.to_dict(), indent=1, default=_json_default).encode())

    def log(self) -> None:
        """Logs the counts (INFO)."""
        counts = self.counts()
        logger.info(
            "%s (%s): read %d, skipped %d (labels %d, files %d, in graph %d), used %d",
            self.name, self.dataset, counts["read"], counts["skipped"], counts["skipped_label"],
            counts["skipped_file"], counts["skipped_runtime"], counts["used"],
        )

    def refresh(self) -> int:
        """Accounts for files that failed inside the graph since the last call.

        Compares the counters before and after the in-graph decode; if some
        samples went missing, re-checks the files to name them, moves them
        from ``used`` to ``skipped`` (stage ``"runtime"``), warns, and
        rewrites the report. Exact once an epoch (or, for cached balanced
        pipelines, every class's first pass) has completed.

        Returns:
            The number of files newly found bad.
        """
        if self._attempted is None or int(self._attempted.numpy()) <= int(self._delivered.numpy()):
            return 0
        known = {s["path"] for s in self.skipped}
        file_check.forget(self._paths)
        verdicts = file_check.check_image_files([p for p in self._paths if p not in known], level="decode")
        found = 0
        for path, reason in verdicts.items():
            if reason is not None:
                logger.warning("skipped in graph %s: %s", display_path(path), reason)
                self.skipped.append({"path": display_path(path), "reason": reason, "stage": "runtime"})
                self.used -= 1
                found += 1
        if found:
            self.log()
            self.write()
        return found


class InputReportCallback(keras.callbacks.Callback):
    """Keras callback: :meth:`InputReport.refresh` after every epoch."""

    def __init__(self, *reports: InputReport):
        super().__init__()
        self.reports = reports

    def on_epoch_end(self, epoch, logs=None):  # pylint: disable=unused-argument
        for report in self.reports:
            report.refresh()


def make_dataset(
    table: sample_table.SampleTable,
    config: Optional[PipelineConfig] = None,
    *,
    target_encoder: Union[Callable[[Dict[str, np.ndarray]], Dict[str, np.ndarray]], Any, None] = None,
    run_dir: Union[str, os.PathLike, None] = None,
    name: str = "train",
    faces: Optional[face_cache.FaceCache] = None,
) -> Tuple[tf.data.Dataset, InputReport]:
    """Builds the input pipeline of one table.

    Args:
        table: Images and labels (any reader's output, or a split part).
        config: Pipeline settings (defaults: 64x64, batch 50, memory cache,
            shuffled, no augmentation).
        target_encoder: ``encode_targets``-style callable, or an object with
            an ``encode_targets`` method (a head, an ``AgeTask``): called
            once with ``table.labels()`` of the usable rows, it returns
            ``{output name: (N, ...) array}``. ``None``: targets are ages.
        run_dir: Folder of the run; the report is written there as
            ``input_report_<name>.json``.
        name: Pipeline name for logs and the report file.
        faces: With ``config.cache == "faces"``: an open face cache that
            holds every file of ``table`` (e.g. the whole dataset's, shared
            by its train, validation and test pipelines); ``None`` opens (or
            builds) the cache of ``table``'s files.

    Returns:
        ``(dataset, report)``: batches of ``(images, targets)``; the
        :class:`InputReport`. With ``sampling="balanced"`` the dataset is
        endless (use ``report.steps_per_epoch``).

    Raises:
        ValueError: If no usable sample is left, or the encoder's targets
            do not have one row per sample.
    """
    config = config or PipelineConfig()
    skipped = [dict(entry, stage="label") for entry in table.report.get("skipped", [])]
    if config.cache == "faces":
        if faces is None:
            faces = face_cache.open_face_cache(table.path.tolist(), config.input_size, config.cache_dir, config.crop)
        if faces.size != config.input_size:
            raise ValueError(f"{name}: the face cache {faces.path} holds {faces.size} px faces, "
                             f"the pipeline needs {config.input_size} px.")
        faces.rows(table.path.tolist())  # every file is in it (KeyError naming one that is not)
        verdicts = {path: faces.problems.get(path) for path in table.path.tolist()}  # decoded when it was built
    else:
        verdicts = file_check.check_image_files(table.path.tolist(), level=config.file_check,
                                                cache_path=config.file_check_cache)
    usable = np.ones(len(table), dtype=bool)
    for row, path in enumerate(table.path.tolist()):
        reason = verdicts[path]
        if reason is not None:
            usable[row] = False
            logger.warning("skipping %s: %s", display_path(path), reason)
            skipped.append({"path": display_path(path), "reason": reason, "stage": "file"})
    good = table.take(usable)
    n = len(good)
    counted = _Counters(tf.Variable(0, dtype=tf.int64, trainable=False),
                        tf.Variable(0, dtype=tf.int64, trainable=False))
    report = InputReport(
        name=name, dataset=table.name, read=len(table) + sum(s["stage"] == "label" for s in skipped),
        used=n, skipped=skipped, input_size=config.input_size, sampling=config.sampling,
        steps_per_epoch=(n // config.batch_size if config.drop_remainder else math.ceil(n / config.batch_size)),
        reader={k: v for k, v in table.report.items() if k != "skipped"},
        _attempted=counted.attempted,
        _delivered=counted.delivered,
        _paths=tuple(good.path.tolist()),
    )
    if run_dir is not None:
        report.path = str(pathlib.Path(run_dir) / f"input_report_{name}.json")
    if n == 0:
        report.log()
        report.write()
        raise ValueError(f"{name}: no usable sample in {table.name or 'the table'} ({report.counts()}).")
    targets = _encode_targets(good, target_encoder)
    if config.sampling == "balanced":
        classes = sampling.age_classes(good.age, bin_width=config.class_bin_width)
        report.class_counts = {str(c): int(len(rows)) for c, rows in sampling.group_by_class(classes).items()}
    report.log()
    report.write()

    paths = tf.constant([os.fsencode(p) for p in good.path.tolist()], dtype=tf.string)  # raw bytes: any file name

    def decoded(indices: tf.data.Dataset) -> tf.data.Dataset:
        """indices -> (uint8 image, index), failures skipped but counted."""
        return (
            indices.map(counted.attempt)
            .map(lambda i: (decode.load_bgr(tf.gather(paths, i), config.input_size), i),
                 num_parallel_calls=tf.data.AUTOTUNE)
            .ignore_errors(log_warning=True)
            .map(counted.deliver)
        )

    cache_name = _cache_name(config, good) if config.cache not in (None, "memory", "faces") else ""
    if config.cache == "faces":
        dataset = _batches_from_faces(faces, good, config, classes if config.sampling == "balanced" else None)
    elif config.sampling == "sequential":
        dataset = tf.data.Dataset.range(n)
        if config.shuffle and config.cache is None:
            dataset = dataset.shuffle(n, seed=config.seed, reshuffle_each_iteration=True)
        dataset = decoded(dataset)
        if config.cache is not None:
            dataset = dataset.cache(cache_name)
            if config.shuffle:
                dataset = dataset.shuffle(config.shuffle_buffer or n, seed=config.seed, reshuffle_each_iteration=True)
    else:
        streams = []
        for c, rows in sampling.group_by_class(classes).items():
            stream = tf.data.Dataset.from_tensor_slices(rows.astype(np.int64))
            if config.cache is None:
                stream = decoded(stream.shuffle(len(rows), seed=config.seed + c, reshuffle_each_iteration=True)
                                 .repeat())
            else:
                stream = decoded(stream).cache(f"{cache_name}_class{c:03d}" if cache_name else "")
                stream = stream.shuffle(len(rows), seed=config.seed + c, reshuffle_each_iteration=True).repeat()
            streams.append(stream)
        dataset = sampling.class_balanced(streams, seed=config.seed)
    if config.cache != "faces":
        dataset = dataset.batch(config.batch_size, drop_remainder=config.drop_remainder)
    if config.sampling == "sequential" and (config.file_check == "decode" or config.cache == "faces"):
        # Every file was decoded once by the file check, so the in-graph decode drops none:
        # the dataset gets its cardinality and Keras knows the epoch length (progress bars,
        # no "input ran out of data" warning). A file broken since then stops with an error.
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(report.steps_per_epoch))
    constants = {key: tf.constant(value) for key, value in targets.items()} if isinstance(targets, dict) \
        else tf.constant(targets)

    def finish(images, indices):
        return tf.cast(images, tf.float32), tf.nest.map_structure(lambda t: tf.gather(t, indices), constants)

    dataset = dataset.map(finish, num_parallel_calls=tf.data.AUTOTUNE)
    if config.augment is not None and config.augment.enabled():
        augmenter = augment_lib.Augmenter(config.augment)
        seeds = tf.data.Dataset.random(seed=config.seed, rerandomize_each_iteration=True).batch(2)
        dataset = tf.data.Dataset.zip((dataset, seeds)).map(
            lambda batch, seed: (augmenter(batch[0], seed), batch[1]), num_parallel_calls=tf.data.AUTOTUNE)
    # A static image shape lets models with fixed-size layers trace once.
    image_shape = (None, config.input_size, config.input_size, 3)
    dataset = dataset.map(lambda images, targets: (tf.ensure_shape(images, image_shape), targets))
    options = tf.data.Options()
    options.deterministic = config.deterministic or not config.shuffle  # unshuffled: table order
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE), report


def _batches_from_faces(faces: face_cache.FaceCache, table: sample_table.SampleTable, config: PipelineConfig,
                        classes: Optional[np.ndarray]) -> tf.data.Dataset:
    """Batches of ``(uint8 images, sample indices)`` gathered from the decoded-face cache.

    Sample indices are shuffled (or drawn class-balanced) and batched first;
    each batch's images are then copied out of the memory-mapped cache in one
    gather, so no file is read or decoded.
    """
    images, rows = faces.images, faces.rows(table.path.tolist())
    size = config.input_size

    def gather(indices):
        return images[rows[indices]]

    def load(indices):
        batch = tf.numpy_function(gather, [indices], tf.uint8, stateful=False)
        batch.set_shape([None, size, size, 3])
        return batch, indices

    n = len(table)
    if classes is None:
        dataset = tf.data.Dataset.range(n)
        if config.shuffle:
            dataset = dataset.shuffle(n, seed=config.seed, reshuffle_each_iteration=True)
    else:
        streams = [tf.data.Dataset.from_tensor_slices(members.astype(np.int64))
                   .shuffle(len(members), seed=config.seed + c, reshuffle_each_iteration=True).repeat()
                   for c, members in sampling.group_by_class(classes).items()]
        dataset = sampling.class_balanced(streams, seed=config.seed)
    dataset = dataset.batch(config.batch_size, drop_remainder=config.drop_remainder)
    return dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE)


class _Counters:
    """Counts samples before and after the in-graph decode."""

    def __init__(self, attempted: tf.Variable, delivered: tf.Variable):
        self.attempted, self.delivered = attempted, delivered

    def attempt(self, index):
        with tf.control_dependencies([self.attempted.assign_add(1)]):
            return tf.identity(index)

    def deliver(self, image, index):
        with tf.control_dependencies([self.delivered.assign_add(1)]):
            return tf.identity(image), tf.identity(index)


def _encode_targets(table: sample_table.SampleTable, target_encoder):
    if target_encoder is None:
        return table.age.astype(np.float32)
    encode = getattr(target_encoder, "encode_targets", target_encoder)
    targets = {key: np.asarray(value) for key, value in encode(table.labels()).items()}
    wrong = {key: value.shape for key, value in targets.items() if value.ndim == 0 or len(value) != len(table)}
    if wrong:
        raise ValueError(f"target encoder must return one row per sample ({len(table)}); got shapes {wrong}.")
    return targets


def _cache_name(config: PipelineConfig, table: sample_table.SampleTable) -> str:
    digest = hashlib.sha1(f"{config.input_size}\n".encode())
    for path in table.path.tolist():
        digest.update(path.encode("utf-8", "surrogateescape") + b"\n")
    name = f"{config.cache}_{config.input_size}px_{digest.hexdigest()[:12]}"
    pathlib.Path(name).parent.mkdir(parents=True, exist_ok=True)
    return name


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
