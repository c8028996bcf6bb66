"""Where each dataset comes from, and which reader reads it.

Nothing here downloads: the age datasets are licensed for research and most
need a request or a sign-up. :data:`DATASETS` records, for each, its page
(as documented by its authors at the time of writing), licence terms and
the folder layout its reader expects; :func:`read_dataset` dispatches to the
reader by name.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import re
from typing import Dict, Optional, Union

from ssrnet_tf.data import label_ranges, sample_table


@dataclasses.dataclass(frozen=True)
class DatasetSource:
    """How to obtain a dataset and which function reads it.

    Attributes:
        name: Registry key.
        title: Human-readable name.
        url: The authors' page (download links or request form).
        license: Licence / terms in brief.
        instructions: What to fetch and what to pass to the reader.
        reader: ``"module:function"`` in :mod:`ssrnet_tf.data`.
    """

    name: str
    title: str
    url: str
    license: str
    instructions: str
    reader: str

    def load_reader(self):
        """The reader function."""
        module_name, function_name = self.reader.split(":")
        return getattr(importlib.import_module(f"ssrnet_tf.data.{module_name}"), function_name)


DATASETS: Dict[str, DatasetSource] = {
    source.name: source
    for source in (
        DatasetSource(
            "utkface", "UTKFace", "https://susanqq.github.io/UTKFace/",
            "non-commercial research only",
            "Download 'Aligned&Cropped Faces' (UTKFace.tar.gz) from the page, extract, and pass the "
            "UTKFace/ folder to read_utkface(folder).",
            "utkface:read_utkface",
        ),
        DatasetSource(
            "imdb", "IMDB-WIKI (IMDB part)", "https://data.vision.ee.ethz.ch/cvl/rrothe/imdb-wiki/",
            "academic research only",
            "Download 'imdb_crop.tar' (faces only, 7 GB) from the page, extract, and pass "
            "imdb_crop/imdb.mat to read_imdb_wiki(mat_path); images are found beside it.",
            "imdb_wiki:read_imdb_wiki",
        ),
        DatasetSource(
            "wiki", "IMDB-WIKI (WIKI part)", "https://data.vision.ee.ethz.ch/cvl/rrothe/imdb-wiki/",
            "academic research only",
            "Download 'wiki_crop.tar' (faces only, 1 GB), extract, and pass wiki_crop/wiki.mat to "
            "read_imdb_wiki(mat_path).",
            "imdb_wiki:read_imdb_wiki",
        ),
        DatasetSource(
            "morph2", "MORPH Album 2 (academic)", "https://www.faceaginggroup.com/morph/",
            "licensed; the academic release is sold by UNCW (linked from that page)",
            "Request the MORPH-II academic release; pass its CSV (columns id_num,...,age,...,photo) to "
            "read_morph2(csv_path, image_root=release_folder).",
            "morph2:read_morph2",
        ),
        DatasetSource(
            "appa_real", "APPA-REAL", "https://chalearnlap.cvc.uab.cat/dataset/26/description/",
            "research only (ChaLearn terms)",
            "Download appa-real-release.zip from the ChaLearn LAP page (sign-in), extract, and pass "
            "appa-real-release/ to read_appa_real(folder).",
            "appa_real:read_appa_real",
        ),
        DatasetSource(
            "chalearn_lap2016", "ChaLearn LAP 2016 apparent age",
            "https://chalearnlap.cvc.uab.cat/dataset/19/description/",
            "research only (ChaLearn terms)",
            "Download the train/valid/test images and their '<split>_gt.csv' (image,mean,stdv) files "
            "from the ChaLearn LAP page, put them in one folder, and pass it to read_chalearn_lap(folder).",
            "appa_real:read_chalearn_lap",
        ),
        DatasetSource(
            "megaage", "MegaAge", "http://mmlab.ie.cuhk.edu.hk/projects/MegaAge/",
            "non-commercial research only",
            "Request MegaAge from the project page, extract, and pass the folder holding list/, train/, "
            "test/ to read_megaage(folder).",
            "megaage:read_megaage",
        ),
        DatasetSource(
            "megaage_asian", "MegaAge-Asian", "http://mmlab.ie.cuhk.edu.hk/projects/MegaAge/",
            "non-commercial research only",
            "Download megaage_asian from the project page, extract, and pass the folder holding list/, "
            "train/, test/ to read_megaage(folder, name='megaage_asian').",
            "megaage:read_megaage",
        ),
        DatasetSource(
            "fgnet", "FG-NET aging database", "https://yanweifu.github.io/FG_NET_data/",
            "research only",
            "Download FGNET.zip from the page, extract, and pass FGNET/images/ to read_fgnet(folder); "
            "evaluate with leave_one_subject_out().",
            "fgnet:read_fgnet",
        ),
        DatasetSource(
            "csv", "Generic CSV", "", "yours",
            "Write a CSV with the header path,age[,gender,race,subject,split] and pass it to "
            "read_csv_table(csv_path).",
            "csv_table:read_csv_table",
        ),
    )
}


def download_instructions(name: str, cli_setting: Optional[str] = None) -> str:
    """How to obtain dataset ``name`` (text for logs and error messages).

    Args:
        name: A key of :data:`DATASETS`.
        cli_setting: If given (``"data.path"``, ``"--data"``), the advice
            names this command-line setting instead of the reader function.

    Raises:
        KeyError: Naming the known datasets if ``name`` is not one.
    """
    source = _source(name)
    where = f" ({source.url})" if source.url else ""
    instructions = source.instructions
    if cli_setting:
        instructions = re.sub(r"pass (.+?) to read_\w+\([^)]*\)", rf"pass \1 as {cli_setting}=PATH", instructions)
    return f"{source.title}{where}, licence: {source.license}. {instructions}"


def read_dataset(name: str, path: Union[str, os.PathLike], *, cli_setting: Optional[str] = None,
                 **kwargs) -> sample_table.SampleTable:
    """Reads dataset ``name`` from ``path`` with its registered reader.

    Args:
        name: A key of :data:`DATASETS`.
        path: What the reader takes (folder, ``.mat`` or CSV).
        cli_setting: The command-line setting that gave ``path``
            (``"data.path"``): the error for a missing path then names it.
        **kwargs: Further reader arguments.

    Returns:
        The reader's :class:`SampleTable`, without rows whose age is
        outside the dataset's plausible range (reported in its
        ``report["skipped"]``, see :mod:`ssrnet_tf.data.label_ranges`).

    Raises:
        KeyError: If ``name`` is unknown.
        FileNotFoundError: With download instructions, if ``path`` is absent.
    """
    source = _source(name)
    if not os.path.exists(path):
        where = f"{cli_setting}={path}" if cli_setting else str(path)
        raise FileNotFoundError(f"{where}: not found. {download_instructions(name, cli_setting)}")
    if name == "megaage_asian":
        kwargs.setdefault("name", "megaage_asian")
    return label_ranges.drop_implausible(source.load_reader()(path, **kwargs), name)


def _source(name: str) -> DatasetSource:
    try:
        return DATASETS[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; known: {sorted(DATASETS)}.") from None
