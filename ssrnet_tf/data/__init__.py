"""Datasets and image input of ssrnet_tf.

Readers (each returns a :class:`~ssrnet_tf.data.sample_table.SampleTable`):
:func:`~ssrnet_tf.data.utkface.read_utkface`,
:func:`~ssrnet_tf.data.imdb_wiki.read_imdb_wiki`,
:func:`~ssrnet_tf.data.morph2.read_morph2`,
:func:`~ssrnet_tf.data.appa_real.read_appa_real` /
:func:`~ssrnet_tf.data.appa_real.read_chalearn_lap`,
:func:`~ssrnet_tf.data.megaage.read_megaage`,
:func:`~ssrnet_tf.data.fgnet.read_fgnet`,
:func:`~ssrnet_tf.data.csv_table.read_csv_table`, or by name with
:func:`~ssrnet_tf.data.sources.read_dataset`.

Splits: :mod:`ssrnet_tf.data.splits`. Input pipelines:
:func:`~ssrnet_tf.data.pipeline.make_dataset` with
:class:`~ssrnet_tf.data.pipeline.PipelineConfig` and
:class:`~ssrnet_tf.data.augment.AugmentConfig`.

The names below are imported on first use, so ``import ssrnet_tf.data``
does not import TensorFlow.
"""

import importlib

_EXPORTS = {
    "SampleTable": "sample_table",
    "concatenate": "sample_table",
    "read_utkface": "utkface",
    "read_imdb_wiki": "imdb_wiki",
    "read_morph2": "morph2",
    "read_appa_real": "appa_real",
    "read_chalearn_lap": "appa_real",
    "read_apparent_age_csv": "appa_real",
    "read_megaage": "megaage",
    "read_fgnet": "fgnet",
    "read_csv_table": "csv_table",
    "write_csv_table": "csv_table",
    "read_dataset": "sources",
    "download_instructions": "sources",
    "DATASETS": "sources",
    "Split": "splits",
    "random_split": "splits",
    "official_split": "splits",
    "leave_one_subject_out": "splits",
    "check_image_files": "file_check",
    "AugmentConfig": "augment",
    "Augmenter": "augment",
    "PipelineConfig": "pipeline",
    "InputReport": "pipeline",
    "InputReportCallback": "pipeline",
    "make_dataset": "pipeline",
    "age_classes": "sampling",
    "class_balanced": "sampling",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"ssrnet_tf.data.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'ssrnet_tf.data' has no attribute {name!r}")
