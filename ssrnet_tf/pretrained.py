"""The published SSR-Net weights: registry, download cache and loader.

The SSR-Net authors published four SSR-Net(3,3,3) weights files, trained
with Keras 2.0.6 on IMDB, WIKI, MORPH2 and MegaAge-Asian. They are
weights-only HDF5 files whose groups are named after the Keras 2 layers
(``conv2d_1``, ``batch_normalization_1``, ``dense_1``, ``pred_age_stage1``,
...). :func:`load_reference_ssrnet` maps those names onto the layers of
:func:`ssrnet_tf.models.build_ssrnet` and loads them.

Example:
    >>> model = load_pretrained("imdb")  # downloads once, then cached
    >>> model = load_reference_ssrnet("ssrnet_3_3_3_64_1.0_1.0_imdb.h5")
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pathlib
import tempfile
import urllib.error
import urllib.request
from typing import Dict, Optional, Union

import numpy as np

from ssrnet_tf.models import SSRNetConfig, build_ssrnet
from ssrnet_tf.utils import atomic

PathLike = Union[str, os.PathLike]

_REPOSITORY = "https://github.com/shamangary/SSR-Net/raw/master/pre-trained"
_REFERENCE_NAME = "ssrnet_3_3_3_64_1.0_1.0"

#: Environment variable overriding the download cache folder.
CACHE_ENV = "SSRNET_TF_CACHE"


@dataclasses.dataclass(frozen=True)
class PretrainedWeights:
    """One published weights file.

    Attributes:
        name: Registry name (the training set).
        url: Public home of the file.
        sha256: SHA-256 of the file, checked after every download and on
            every cache hit.
        description: One line for listings.
    """

    name: str
    url: str
    sha256: str
    description: str

    @property
    def filename(self) -> str:
        """File name in the cache and in a local weights folder."""
        return f"{_REFERENCE_NAME}_{self.name}.h5"


def _published(name: str, sha256: str, description: str) -> PretrainedWeights:
    url = f"{_REPOSITORY}/{name}/{_REFERENCE_NAME}/{_REFERENCE_NAME}.h5"
    return PretrainedWeights(name, url, sha256, description)


#: The four published SSR-Net(3,3,3) files, by training set.
REGISTRY: Dict[str, PretrainedWeights] = {
    w.name: w
    for w in (
        _published(
            "imdb",
            "f51ac230a68bafdcd9699160f01e4d67a78232419ebcfae8622e0638e6dd4ca3",
            "IMDB (IMDB-WIKI), ages 0-100",
        ),
        _published(
            "wiki",
            "f8b677f1a61fcf1233de0bd942f3172b1397fcbfe0f2784220154af1faf833e0",
            "WIKI (IMDB-WIKI), ages 0-100",
        ),
        _published(
            "morph2",
            "0ad001c42cc2425ffaebd7d374983eba5c89e4f695ab10431c4c95573dc69f4d",
            "MORPH Album 2, ages 16-77",
        ),
        _published(
            "megaface_asian",
            "4bc9348a8ee89dc21d16a4e06a994e287650d068eb9f789578698c7377a07ef7",
            "MegaAge-Asian, ages 0-70",
        ),
    )
}


def reference_layer_map(num_stages: int = 3) -> Dict[str, str]:
    """Maps the published files' Keras 2 layer names to ours.

    Args:
        num_stages: Stages of the reference model (3 for the published
            files).

    Returns:
        Dict ``{keras2_name: ssrnet_tf_name}`` covering every layer with
        weights.
    """
    mapping = {}
    for block in range(1, 5):
        for stream, offset in (("stream1", 0), ("stream2", 4)):
            mapping[f"conv2d_{block + offset}"] = f"{stream}_block{block}_conv"
            mapping[f"batch_normalization_{block + offset}"] = (
                f"{stream}_block{block}_bn"
            )
    for k in range(1, num_stages + 1):
        prefix = f"stage{k}"
        mapping[f"conv2d_{7 + 2 * k}"] = f"{prefix}_stream2_conv"
        mapping[f"conv2d_{8 + 2 * k}"] = f"{prefix}_stream1_conv"
        mapping[f"dense_{3 * k - 2}"] = f"{prefix}_stream2_dense"
        mapping[f"dense_{3 * k - 1}"] = f"{prefix}_stream1_dense"
        mapping[f"dense_{3 * k}"] = f"{prefix}_fused_dense"
        mapping[f"pred_age_stage{k}"] = f"{prefix}_probabilities"
        mapping[f"delta_s{k}"] = f"{prefix}_scale"
        mapping[f"local_delta_stage{k}"] = f"{prefix}_shift"
    return mapping


def _weight_key(name: str) -> str:
    """``'conv2d_1/kernel:0'`` or ``'stream1/kernel'`` -> ``'kernel'``."""
    return name.rsplit("/", 1)[-1].split(":", 1)[0]


def read_keras2_weights(h5_path: PathLike) -> Dict[str, Dict[str, np.ndarray]]:
    """Reads a Keras 2 weights HDF5 file into plain arrays.

    Args:
        h5_path: A weights-only file (``save_weights``) or a full-model file
            (whose weights sit under ``model_weights``).

    Returns:
        ``{layer_name: {weight_key: array}}`` for every layer with weights,
        e.g. ``{"conv2d_1": {"kernel": ..., "bias": ...}}``.

    Raises:
        FileNotFoundError: If ``h5_path`` does not exist.
        ValueError: If it is not a readable Keras 2 weights file.
    """
    import h5py  # pylint: disable=import-outside-toplevel

    path = pathlib.Path(h5_path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: weights file not found.")
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise ValueError(f"{path}: not a readable HDF5 file ({error}).") from None
    with handle:
        root = handle["model_weights"] if "model_weights" in handle else handle
        if "layer_names" not in root.attrs:
            raise ValueError(
                f"{path}: no 'layer_names' attribute; not a Keras 2 weights file."
            )
        weights = {}
        for raw_name in root.attrs["layer_names"]:
            layer_name = raw_name.decode() if isinstance(raw_name, bytes) else raw_name
            group = root[layer_name]
            names = [
                n.decode() if isinstance(n, bytes) else n
                for n in group.attrs.get("weight_names", [])
            ]
            if names:
                weights[layer_name] = {
                    _weight_key(n): np.asarray(group[n]) for n in names
                }
    return weights


def load_keras2_weights(model, h5_path: PathLike, layer_map: Dict[str, str]):
    """Loads a Keras 2 weights file into ``model`` through a name map.

    Args:
        model: The target ``keras.Model``.
        h5_path: The Keras 2 weights file.
        layer_map: ``{keras2_layer_name: model_layer_name}``; must cover
            every layer with weights in both the file and the model.

    Returns:
        ``model``, with its weights set.

    Raises:
        ValueError: Naming the file and the layer or weight that does not
            match (missing, unexpected, or of the wrong shape).
    """
    file_weights = read_keras2_weights(h5_path)
    unexpected = sorted(set(file_weights) - set(layer_map))
    if unexpected:
        raise ValueError(
            f"{h5_path}: layers {unexpected} have no counterpart in "
            f"'{model.name}'; is this an SSR-Net(3,3,3) weights file?"
        )
    missing = sorted(set(layer_map) - set(file_weights))
    if missing:
        raise ValueError(f"{h5_path}: layers {missing} are missing from the file.")
    for source_name, target_name in layer_map.items():
        layer = model.get_layer(target_name)
        source = file_weights[source_name]
        values = []
        for variable in layer.weights:
            key = _weight_key(variable.path)
            if key not in source:
                raise ValueError(
                    f"{h5_path}: layer '{source_name}' has no '{key}' weight "
                    f"(has {sorted(source)})."
                )
            if tuple(source[key].shape) != tuple(variable.shape):
                raise ValueError(
                    f"{h5_path}: '{source_name}/{key}' has shape "
                    f"{source[key].shape}, '{target_name}' expects "
                    f"{tuple(variable.shape)}."
                )
            values.append(source[key])
        layer.set_weights(values)
    return model


def load_reference_ssrnet(h5_path: PathLike, **config_overrides):
    """Builds the reference SSR-Net(3,3,3) and loads published weights.

    Args:
        h5_path: One of the published ``ssrnet_3_3_3_64_1.0_1.0*.h5`` files.
        **config_overrides: :class:`SSRNetConfig` fields that do not change
            the weights, e.g. ``min_scale`` or ``dropout``.

    Returns:
        A ``keras.Model`` taking float32 ``(N, 64, 64, 3)`` raw 0-255 **BGR**
        pixels and returning ages ``(N, 1)``.
    """
    config = SSRNetConfig(**config_overrides)
    model = build_ssrnet(config)
    return load_keras2_weights(
        model, h5_path, reference_layer_map(config.num_stages)
    )


def default_cache_dir() -> pathlib.Path:
    """``$SSRNET_TF_CACHE``, else ``~/.cache/ssrnet_tf``."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return pathlib.Path(env)
    return pathlib.Path.home() / ".cache" / "ssrnet_tf"


def sha256_of(path: PathLike) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_sha256(path: pathlib.Path, entry: PretrainedWeights) -> None:
    actual = sha256_of(path)
    if actual != entry.sha256:
        raise ValueError(
            f"{path}: SHA-256 {actual} does not match the published "
            f"'{entry.name}' weights ({entry.sha256}). Delete the file and "
            "try again, or pass the path of a file you trust directly."
        )


def download(url: str, destination: PathLike, expected_sha256: str) -> pathlib.Path:
    """Downloads ``url`` to ``destination`` atomically, checking its hash.

    The file is written to a temporary name beside ``destination`` and only
    renamed into place once complete and verified, so an interrupted or
    corrupt download never leaves a file that looks valid.

    Args:
        url: Any URL ``urllib`` opens (``https://``, ``file://``).
        destination: Final path.
        expected_sha256: Hex digest the content must have.

    Returns:
        ``destination`` as a path.

    Raises:
        OSError: If the download fails (with the URL in the message).
        ValueError: If the content's hash differs.
    """
    from tqdm.auto import tqdm  # pylint: disable=import-outside-toplevel

    destination = pathlib.Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        dir=destination.parent, prefix=destination.name + ".", suffix=".part"
    )
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), atomic.file_mode())  # not mkstemp's 0600
            try:
                response = urllib.request.urlopen(url, timeout=60)
            except (urllib.error.URLError, OSError) as error:
                raise OSError(
                    f"could not download {url} ({error}); when offline, pass "
                    "a local weights path or weights_dir instead."
                ) from None
            with response:
                total = int(response.headers.get("Content-Length") or 0) or None
                with tqdm(
                    total=total, unit="B", unit_scale=True, desc=destination.name
                ) as bar:
                    for chunk in iter(lambda: response.read(1 << 16), b""):
                        out.write(chunk)
                        digest.update(chunk)
                        bar.update(len(chunk))
        if digest.hexdigest() != expected_sha256:
            raise ValueError(
                f"{url}: downloaded SHA-256 {digest.hexdigest()} does not match "
                f"the expected {expected_sha256}; nothing was saved."
            )
        os.replace(tmp_name, destination)
    finally:
        if os.path.exists(tmp_name):
            os.remove(tmp_name)
    return destination


def get_weights_path(
    name: str,
    *,
    weights_dir: Optional[PathLike] = None,
    cache_dir: Optional[PathLike] = None,
    download_if_missing: bool = True,
) -> pathlib.Path:
    """Finds, or downloads, a published weights file by registry name.

    Looks in ``weights_dir`` (a folder of already downloaded files, named
    as :attr:`PretrainedWeights.filename`), then in the cache, then
    downloads into the cache. Every file found or fetched is SHA-256
    checked.

    Args:
        name: A key of :data:`REGISTRY`.
        weights_dir: Optional local folder to look in first (offline use).
        cache_dir: Cache folder; default :func:`default_cache_dir`.
        download_if_missing: If false, raise instead of downloading.

    Returns:
        Path of the verified file.

    Raises:
        KeyError: For an unknown name (the message lists the valid ones).
        FileNotFoundError: If not found and ``download_if_missing`` is false.
    """
    if name not in REGISTRY:
        raise KeyError(
            f"unknown pretrained weights {name!r}; valid names: {sorted(REGISTRY)}."
        )
    entry = REGISTRY[name]
    candidates = []
    if weights_dir is not None:
        candidates.append(pathlib.Path(weights_dir) / entry.filename)
    cache = pathlib.Path(cache_dir) if cache_dir else default_cache_dir()
    candidates.append(cache / entry.filename)
    for candidate in candidates:
        if candidate.is_file():
            _check_sha256(candidate, entry)
            return candidate
    if not download_if_missing:
        raise FileNotFoundError(
            f"weights {name!r} not found at {[str(c) for c in candidates]} "
            "and download_if_missing is false."
        )
    return download(entry.url, cache / entry.filename, entry.sha256)


def load_pretrained(
    name_or_path: PathLike,
    *,
    weights_dir: Optional[PathLike] = None,
    cache_dir: Optional[PathLike] = None,
    **config_overrides,
):
    """Loads a published SSR-Net by registry name or from a local file.

    Args:
        name_or_path: A :data:`REGISTRY` name (``"imdb"``, ``"wiki"``,
            ``"morph2"``, ``"megaface_asian"``) or a path to an ``.h5`` file.
        weights_dir: Local folder searched before the cache and network.
        cache_dir: Download cache; default :func:`default_cache_dir`.
        **config_overrides: Passed to :func:`load_reference_ssrnet`.

    Returns:
        The reference SSR-Net with the weights loaded.
    """
    path = resolve_weights(name_or_path, weights_dir=weights_dir, cache_dir=cache_dir)
    return load_reference_ssrnet(path, **config_overrides)


def resolve_weights(
    name_or_path: PathLike,
    *,
    weights_dir: Optional[PathLike] = None,
    cache_dir: Optional[PathLike] = None,
) -> pathlib.Path:
    """The file of a :data:`REGISTRY` name (found or downloaded, verified) or an existing path.

    Raises:
        FileNotFoundError: If ``name_or_path`` is neither a registry name nor a file.
    """
    if str(name_or_path) in REGISTRY:
        return get_weights_path(str(name_or_path), weights_dir=weights_dir, cache_dir=cache_dir)
    path = pathlib.Path(name_or_path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such weights file, and not a registry name ({sorted(REGISTRY)}).")
    return path


# === Models trained by this project, shipped in the package ===

#: Package folder of the shipped models: ``NAME.keras``, ``NAME_int8.tflite``,
#: the model card ``NAME.md`` and ``models.json`` (hashes and card figures).
SHIPPED_DIR = pathlib.Path(__file__).resolve().parent / "pretrained_models"
_SHIPPED_INDEX = "models.json"
#: Registry-name suffix of a shipped model's int8 ``.tflite`` file.
INT8_SUFFIX = "-int8"


@dataclasses.dataclass(frozen=True)
class ShippedModel:
    """A model trained by this project and shipped inside the package.

    Attributes:
        name: Registry name (``ssrnet-utkface``); ``name + "-int8"`` names
            its int8 ``.tflite`` file.
        description: One line for listings.
        files: ``{"keras": file name, "int8": file name, "card": file name}``
            in :data:`SHIPPED_DIR`.
        sha256: SHA-256 of each file, by the same keys.
        figures: The model card's test-split figures (MAE, CA(5), size,
            latency, ...), as written by :mod:`ssrnet_tf.export.shipping`.
        licence: The terms that come with the weights (from the training data).
    """

    name: str
    description: str
    files: Dict[str, str]
    sha256: Dict[str, str]
    figures: Dict[str, object]
    licence: str


def _shipped_index() -> Dict:
    path = SHIPPED_DIR / _SHIPPED_INDEX
    if not path.is_file():
        return {"default": None, "models": {}}
    import json  # pylint: disable=import-outside-toplevel

    return json.loads(path.read_text())


def shipped_models() -> Dict[str, ShippedModel]:
    """The models shipped in the package, by registry name (empty if none)."""
    return {name: ShippedModel(name=name, **entry) for name, entry in _shipped_index()["models"].items()}


def shipped_files(models: Optional[Dict[str, ShippedModel]] = None) -> Dict[str, tuple]:
    """``{registry name: (model name, file kind)}``: ``NAME`` is the ``.keras``, ``NAME-int8`` the int8 ``.tflite``.

    Args:
        models: :func:`shipped_models` if already read (default: read it).
    """
    names = {}
    for name in shipped_models() if models is None else models:
        names[name] = (name, "keras")
        names[name + INT8_SUFFIX] = (name, "int8")
    return names


def shipped_path(name: str) -> pathlib.Path:
    """The verified file of a shipped model (``NAME`` or ``NAME-int8``).

    Raises:
        KeyError: For an unknown name (listing the valid ones).
        ValueError: If the file's SHA-256 is not the registered one (a damaged install).
    """
    models = shipped_models()  # models.json read once
    files = shipped_files(models)
    if name not in files:
        raise KeyError(f"unknown shipped model {name!r}; shipped: {sorted(files)}.")
    model_name, kind = files[name]
    entry = models[model_name]
    path = SHIPPED_DIR / entry.files[kind]
    if not path.is_file():
        raise FileNotFoundError(f"{path}: shipped model file missing from the installed package; reinstall ssrnet-tf.")
    if sha256_of(path) != entry.sha256[kind]:
        raise ValueError(f"{path}: SHA-256 does not match the registered one; the installed package is damaged.")
    return path


def default_model_name() -> str:
    """The registry name ``predict`` uses without ``--model``: the best shipped model.

    Raises:
        FileNotFoundError: If the package ships no model (a development checkout before training).
    """
    default = _shipped_index().get("default")
    if not default:
        raise FileNotFoundError(
            f"no model is shipped in {SHIPPED_DIR}; pass --model (a .keras/.tflite file or a published name "
            f"such as {sorted(REGISTRY)[0]})."
        )
    return default
