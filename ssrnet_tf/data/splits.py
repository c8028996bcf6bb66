"""Train/test splits: seeded random, official, leave-one-subject-out.

A :class:`Split` holds the image paths of each part, so it is independent
of row order and can be saved beside a run and applied again to a table
read later (:meth:`Split.save` writes JSON atomically; :meth:`Split.load`
reads it back; :meth:`Split.select` cuts a table into the parts).

The SSR-Net and label-distribution papers train on a random 80 % of a
dataset and test on the other 20 %; MegaAge and APPA-REAL have official
lists (the ``split`` column); FG-NET is evaluated leave-one-subject-out.

References:
    Yang, Huang, Lin, Hsiu and Chuang, "SSR-Net: A Compact Soft Stagewise
    Regression Network for Age Estimation", IJCAI 2018 (random 80/20).
    Gao, Xing, Xie, Wu and Geng, "Deep Label Distribution Learning with
    Label Ambiguity", TIP 2017.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
from typing import Any, Dict, List, Mapping, Optional, Union

import numpy as np

from ssrnet_tf.data import sample_table
from ssrnet_tf.utils import atomic

FORMAT = "ssrnet_tf.split"
FORMAT_VERSION = 1
DEFAULT_FRACTIONS = {"train": 0.8, "test": 0.2}


@dataclasses.dataclass
class Split:
    """Named parts of a dataset, as lists of image paths.

    Attributes:
        parts: ``{part name: [path, ...]}`` in the split's order.
        method: ``"random"``, ``"official"`` or ``"leave_one_subject_out"``.
        seed: The seed of a random split, else ``None``.
        details: Parameters (fractions, subject, dataset, ...).
    """

    parts: Dict[str, List[str]]
    method: str
    seed: Optional[int] = None
    details: Dict[str, Any] = dataclasses.field(default_factory=dict)

    def sizes(self) -> Dict[str, int]:
        """Number of images per part."""
        return {name: len(paths) for name, paths in self.parts.items()}

    def indices(self, table: sample_table.SampleTable) -> Dict[str, np.ndarray]:
        """Row indices of each part in ``table``.

        A split whose paths are bare file names (one saved for use on
        other machines, like the shipped models' test splits) matches the
        table's files by name, when the table's file names are unique.

        Raises:
            ValueError: If ``table`` repeats a path, or lacks one of the
                split's paths (the first few are named).
        """
        paths_of_table = table.path.tolist()
        row_of = {path: row for row, path in enumerate(paths_of_table)}
        if len(row_of) != len(table):
            raise ValueError(f"{table.name or 'table'}: paths repeat; a split by path is ambiguous.")
        by_name = {os.path.basename(path): row for row, path in enumerate(paths_of_table)}
        if len(by_name) == len(table):
            row_of.update({name: row for name, row in by_name.items() if name not in row_of})
        out = {}
        for name, paths in self.parts.items():
            absent = [p for p in paths if p not in row_of]
            if absent:
                raise ValueError(
                    f"split part {name!r}: {len(absent)} paths are not in {table.name or 'the table'}, "
                    f"e.g. {absent[:3]}."
                )
            out[name] = np.asarray([row_of[p] for p in paths], dtype=np.int64)
        return out

    def select(self, table: sample_table.SampleTable) -> Dict[str, sample_table.SampleTable]:
        """``table`` cut into the parts (rows in the split's order)."""
        return {name: table.take(rows) for name, rows in self.indices(table).items()}

    def to_dict(self) -> Dict[str, Any]:
        """The JSON document :meth:`save` writes."""
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "method": self.method,
            "seed": self.seed,
            "details": self.details,
            "sizes": self.sizes(),
            "parts": self.parts,
        }

    def save(self, path: Union[str, os.PathLike]) -> pathlib.Path:
        """Writes the split as JSON, atomically (a crash leaves the old file).

        Returns:
            ``path`` as a ``pathlib.Path``.
        """
        text = json.dumps(self.to_dict(), indent=1, sort_keys=False)
        return atomic.atomic_write_bytes(path, text.encode("utf-8"))

    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> "Split":
        """Reads a split written by :meth:`save`.

        Raises:
            ValueError: If the file is not a split file.
        """
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
        if document.get("format") != FORMAT:
            raise ValueError(f"{path}: not a {FORMAT} file (format={document.get('format')!r}).")
        return cls(
            parts={name: list(paths) for name, paths in document["parts"].items()},
            method=document["method"],
            seed=document.get("seed"),
            details=document.get("details", {}),
        )


def random_split(
    table: sample_table.SampleTable,
    *,
    fractions: Mapping[str, float] = DEFAULT_FRACTIONS,
    seed: int = 0,
    by_subject: bool = False,
) -> Split:
    """A seeded random split (80/20 train/test by default).

    The same seed on the same set of paths gives the same split whatever
    the table's row order (rows are sorted by path before shuffling).

    Args:
        table: The dataset.
        fractions: Part name -> fraction; must sum to 1. Sizes are rounded
            at cumulative boundaries, so they add up to ``len(table)``.
        seed: Seed of the shuffle.
        by_subject: Keep each subject's images in one part (rows without a
            subject count as their own subject).

    Returns:
        A :class:`Split` with ``method="random"``.

    Raises:
        ValueError: If the fractions are negative or do not sum to 1.
    """
    names = list(fractions)
    values = np.asarray([fractions[name] for name in names], dtype=np.float64)
    if np.any(values < 0) or not np.isclose(values.sum(), 1.0):
        raise ValueError(f"fractions must be >= 0 and sum to 1, got {dict(fractions)}.")
    order = np.argsort(table.path, kind="stable")
    if by_subject:
        groups = np.where(table.subject[order] != "", np.char.add("s:", table.subject[order]),
                          np.char.add("p:", table.path[order]))
        unique, group_of_row = np.unique(groups, return_inverse=True)
        shuffled = np.random.default_rng(seed).permutation(len(unique))
        bounds = _bounds(values, len(unique))
        part_of_group = np.empty(len(unique), dtype=np.int64)
        for part, (start, stop) in enumerate(zip(bounds[:-1], bounds[1:])):
            part_of_group[shuffled[start:stop]] = part
        part_of_row = part_of_group[group_of_row]  # rows in path order
        parts = {name: table.path[order[part_of_row == i]].tolist() for i, name in enumerate(names)}
    else:
        shuffled = order[np.random.default_rng(seed).permutation(len(order))]
        bounds = _bounds(values, len(order))
        parts = {name: table.path[shuffled[bounds[i]:bounds[i + 1]]].tolist() for i, name in enumerate(names)}
    return Split(parts, "random", seed, {"fractions": dict(fractions), "by_subject": by_subject,
                                         "dataset": table.name})


def official_split(table: sample_table.SampleTable) -> Split:
    """The dataset's own lists, from the table's ``split`` column.

    Returns:
        A :class:`Split` with one part per distinct non-empty ``split`` value
        (rows in table order; ``details["unassigned"]`` counts rows with none).

    Raises:
        ValueError: If no row has a split.
    """
    names = [name for name in dict.fromkeys(table.split.tolist()) if name]
    if not names:
        raise ValueError(f"{table.name or 'table'} has no official split (its split column is empty).")
    parts = {name: table.path[table.split == name].tolist() for name in names}
    return Split(parts, "official", None, {"dataset": table.name, "unassigned": int(np.sum(table.split == ""))})


def leave_one_subject_out(table: sample_table.SampleTable) -> List[Split]:
    """One fold per subject: test on that subject's images, train on the rest.

    Returns:
        :class:`Split` folds (parts ``"train"`` and ``"test"``) in sorted
        subject order; ``details["subject"]`` names the held-out subject.

    Raises:
        ValueError: If any row lacks a subject id.
    """
    if np.any(table.subject == ""):
        raise ValueError(
            f"{table.name or 'table'}: {int(np.sum(table.subject == ''))} rows have no subject id; "
            "leave-one-subject-out needs one for every image."
        )
    folds = []
    for subject in np.unique(table.subject):
        held_out = table.subject == subject
        folds.append(Split(
            {"train": table.path[~held_out].tolist(), "test": table.path[held_out].tolist()},
            "leave_one_subject_out", None, {"subject": str(subject), "dataset": table.name},
        ))
    return folds


def _bounds(fractions: np.ndarray, n: int) -> np.ndarray:
    cumulative = np.concatenate([[0.0], np.cumsum(fractions)])
    bounds = np.round(cumulative / cumulative[-1] * n).astype(np.int64)
    bounds[-1] = n
    return bounds
