"""Typed experiment configuration, loadable from YAML with overrides.

An experiment is an :class:`ExperimentConfig` of five parts (model, data,
optimizer, schedule, run) plus an optional second stage for long-tailed
training. Named experiments ship in the package, ``ssrnet_tf/configs/NAME.yaml``; any
field can be overridden on the command line as ``section.field=value``
(the value is parsed as YAML: ``run.epochs=3``, ``data.augment=[]``).
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
import typing
from typing import Any, Dict, List, Optional, Sequence, Union

import yaml

from ssrnet_tf.errors import ConfigError


@dataclasses.dataclass
class ModelConfig:
    """What to build.

    Attributes:
        architecture: ``"ssrnet"`` or ``"backbone"`` (Keras Applications
            backbone with heads).
        ssrnet: :class:`ssrnet_tf.models.SSRNetConfig` fields.
        backbone: Registry name (:data:`ssrnet_tf.models.backbones.BACKBONES`).
        input_size: Square input side in pixels.
        alpha: Width multiplier of the MobileNet families.
        weights: Backbone weights: ``"imagenet"`` or ``None``.
        head: Age head registry name (``ssrnet_tf.heads``).
        head_kwargs: Arguments of the age head.
        extra_heads: Further heads as ``{"head": registry_name, **kwargs}``
            dicts, e.g. ``{"head": "multi_task"}``.
        dropout: Dropout on the pooled backbone features.
        loss: Loss of an SSR-Net (``"mae"``, the paper's L1).
        batch_norm_momentum: Backbone batch-norm momentum; ``None`` keeps the
            Keras Applications value (0.999 for the MobileNets, meant for
            fine-tuning; 0.99 suits short from-scratch training).
        initial_weights: Weights to start from (fine-tuning): a published
            SSR-Net registry name (``"imdb"``, looked up in
            ``$SSRNET_TF_WEIGHTS_DIR``, the cache, then downloaded) or
            ``.h5`` file for an SSR-Net(3,3,3); or a ``.keras`` /
            ``.weights.h5`` file of the same architecture, matched by layer
            name. ``None`` trains from the ``weights`` initialisation.
    """

    architecture: str = "ssrnet"
    ssrnet: Dict[str, Any] = dataclasses.field(default_factory=dict)
    backbone: str = "mobilenet_v2"
    input_size: int = 64
    alpha: Optional[float] = None
    weights: Optional[str] = "imagenet"
    head: str = "multi_granularity"
    head_kwargs: Dict[str, Any] = dataclasses.field(default_factory=dict)
    extra_heads: List[Dict[str, Any]] = dataclasses.field(default_factory=list)
    dropout: float = 0.0
    loss: str = "mae"
    batch_norm_momentum: Optional[float] = None
    initial_weights: Optional[str] = None

    def __post_init__(self):
        if self.architecture not in ("ssrnet", "backbone"):
            raise ValueError(f"model.architecture must be 'ssrnet' or 'backbone', got {self.architecture!r}.")


@dataclasses.dataclass
class DataConfig:
    """Where the faces come from and how they are fed.

    Attributes:
        dataset: Reader name (:data:`ssrnet_tf.data.sources.DATASETS`).
        path: Folder or file the reader takes.
        split_seed: Seed of the random split.
        test_fraction: Held-out fraction (20 % in the SSR-Net and LDL papers).
        val_fraction: Fraction of the *training* part held out for
            validation (best checkpoint, plateau schedule), so that the test
            part is never used for a training decision.
        limit: Use at most this many faces (a seeded sample; smoke runs).
        batch_size: Images per batch.
        cache: ``"faces"`` (decode each face once into the persistent
            decoded-face cache, shared by every epoch, seed and variant
            that reads the same files at the same size and crop:
            :mod:`ssrnet_tf.data.face_cache`), ``"memory"`` (decode once
            per run, in memory), ``None`` (decode every epoch) or a
            ``tf.data`` cache file prefix.
        cache_dir: Folder of the decoded-face caches; ``None``:
            ``$SSRNET_TF_CACHE_DIR``, else ``~/.cache/ssrnet_tf/faces``.
        augment: Names of the augmentations (see
            :data:`ssrnet_tf.data.augment.NAMES`).
        augment_params: Their parameters.
    """

    dataset: str = "utkface"
    path: str = "../shared/data/utkface/UTKFace"
    split_seed: int = 0
    test_fraction: float = 0.2
    val_fraction: float = 0.1
    limit: Optional[int] = None
    batch_size: int = 50
    cache: Optional[str] = "faces"
    cache_dir: Optional[str] = None
    augment: List[str] = dataclasses.field(default_factory=list)
    augment_params: Dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if not 0.0 < self.test_fraction < 1.0:
            raise ValueError(f"data.test_fraction must be in (0, 1), got {self.test_fraction}.")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"data.val_fraction must be in [0, 1), got {self.val_fraction}.")


@dataclasses.dataclass
class OptimizerConfig:
    """Optimizer.

    Attributes:
        name: ``"adam"``, ``"adamw"`` or ``"sgd"``.
        learning_rate: Initial (or peak, for one-cycle) learning rate.
        weight_decay: Weight decay (adamw, sgd).
        momentum: SGD momentum.
        weight_decay_style: SGD's decay: ``"decoupled"`` (Keras: the
            weights shrink by ``lr * weight_decay`` outside the momentum) or
            ``"coupled"`` (PyTorch: ``weight_decay * w`` is added to the
            gradient and carried through the momentum; LAE's recipe).
            :mod:`ssrnet_tf.training.optimizers`.
    """

    name: str = "adam"
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    weight_decay_style: str = "decoupled"

    def __post_init__(self):
        if self.name not in ("adam", "adamw", "sgd"):
            raise ValueError(f"optimizer.name must be adam, adamw or sgd, got {self.name!r}.")


@dataclasses.dataclass
class ScheduleConfig:
    """Learning-rate schedule.

    Attributes:
        kind: ``"constant"``; ``"step"`` (multiply by ``factor`` at each
            epoch in ``milestones``); ``"plateau"`` (multiply by ``factor``
            when the validation loss has not improved for ``patience``
            epochs); ``"one_cycle"`` (linear warm-up over ``warmup_fraction``
            of the steps to the peak, cosine down to ``peak / final_div``).
        milestones: Epochs of the step schedule.
        factor: Decay factor.
        patience: Epochs of the plateau schedule.
        warmup_fraction: One-cycle warm-up share.
        final_div: One-cycle final learning-rate divisor.
    """

    kind: str = "constant"
    milestones: List[int] = dataclasses.field(default_factory=list)
    factor: float = 0.1
    patience: int = 8
    warmup_fraction: float = 0.3
    final_div: float = 1e3

    def __post_init__(self):
        if self.kind not in ("constant", "step", "plateau", "one_cycle"):
            raise ValueError(f"schedule.kind must be constant, step, plateau or one_cycle, got {self.kind!r}.")


@dataclasses.dataclass
class RunConfig:
    """How the run is executed.

    Attributes:
        epochs: Training epochs.
        output_dir: Run folder (config, split, checkpoints, logs, model).
        seed: Global seed.
        strategy: ``"auto"`` (from the hardware), ``"default"``,
            ``"mirrored"``, ``"tpu"`` or ``"multi_worker"``
            (``MultiWorkerMirroredStrategy``, the cluster from
            ``TF_CONFIG``: :mod:`ssrnet_tf.training.strategy`).
        mixed_precision: ``"auto"``, ``"off"`` (float32),
            ``"mixed_float16"``, ``"mixed_bfloat16"`` (``"on"``: the older
            spelling of ``mixed_float16``). The speed switches' ``auto``
            is in :mod:`ssrnet_tf.training.execution`.
        jit_compile: XLA-compile the training step: ``"auto"``, ``"on"``,
            ``"off"``. An op XLA cannot compile turns it off with one
            warning naming the op.
        steps_per_execution: Training steps per call of the compiled step
            (``"auto"`` or an integer >= 1).
        steps_per_epoch: Cap on steps per epoch (smoke runs); ``None``: all.
        precise_bn_batches: Before each validation (and each saved model),
            recompute the batch-norm statistics as the mean over this many
            un-augmented training batches with the current weights ("precise
            BN", :mod:`ssrnet_tf.training.precise_batch_norm`); 0 keeps
            Keras' moving averages, which lag fast-moving weights.
    """

    epochs: int = 10
    output_dir: str = "runs/experiment"
    seed: int = 0
    strategy: str = "auto"
    mixed_precision: str = "auto"
    jit_compile: str = "auto"
    steps_per_execution: Union[int, str] = "auto"
    steps_per_epoch: Optional[int] = None
    precise_bn_batches: int = 20

    def __post_init__(self):
        if self.precise_bn_batches < 0:
            raise ValueError(f"run.precise_bn_batches must be >= 0, got {self.precise_bn_batches}.")
        # YAML reads a bare on/off (``run.mixed_precision=on``) as a boolean.
        for name in ("mixed_precision", "jit_compile"):
            if isinstance(getattr(self, name), bool):
                setattr(self, name, "on" if getattr(self, name) else "off")


@dataclasses.dataclass
class StageTwoConfig:
    """Second stage of long-tailed (LAE) training: class-balanced re-training.

    After stage 1 (the whole network, e.g. the LDL recipe with a one-cycle
    schedule), stage 2 starts from stage 1's final model, freezes everything
    but the age head's classifier (its ``classifier_layer_names``) and
    trains it on class-balanced batches with ``L_ld + (L_er - mae)^2``, where
    ``mae`` is stage 1's validation MAE (Bao et al., "LAE: Long-tailed Age
    Estimation", 2021). Stage 2 keeps stage 1's augmentations and batch
    size, and needs a validation split and a backbone model whose age head
    has a classifier (``label_distribution`` or ``dex``).

    Attributes:
        enabled: Run stage 2 after stage 1.
        epochs: Its epochs.
        learning_rate: Its learning rate (the peak, for one-cycle).
        schedule: ``"one_cycle"`` (LAE: "a OneCycle schedule over ... 8
            epochs in the ... classification stage"; warm-up share and final
            divisor from the ``schedule`` section) or ``"constant"``.
        optimizer: ``"adam"``, ``"adamw"`` or ``"sgd"`` (weight decay and
            momentum from the ``optimizer`` section).
        class_bin_width: Years per age class of the balanced sampler (each
            class is drawn equally often).
        steps_per_epoch: Batches per epoch (balanced batches are drawn
            endlessly); ``None``: as many as one pass over the training
            faces. ``run.steps_per_epoch`` caps it too.
    """

    enabled: bool = False
    epochs: int = 5
    learning_rate: float = 1e-4
    schedule: str = "one_cycle"
    optimizer: str = "adam"
    class_bin_width: float = 1.0
    steps_per_epoch: Optional[int] = None

    def __post_init__(self):
        if self.optimizer not in ("adam", "adamw", "sgd"):
            raise ValueError(f"stage_two.optimizer must be adam, adamw or sgd, got {self.optimizer!r}.")
        if self.epochs < 1 or not self.learning_rate > 0 or not self.class_bin_width > 0:
            raise ValueError(
                "stage_two.epochs must be >= 1 and stage_two.learning_rate and stage_two.class_bin_width > 0, "
                f"got {self.epochs}, {self.learning_rate}, {self.class_bin_width}."
            )
        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            raise ValueError(f"stage_two.steps_per_epoch must be >= 1 or null, got {self.steps_per_epoch}.")


@dataclasses.dataclass
class ExperimentConfig:
    """A whole experiment."""

    name: str = "experiment"
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    optimizer: OptimizerConfig = dataclasses.field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = dataclasses.field(default_factory=ScheduleConfig)
    run: RunConfig = dataclasses.field(default_factory=RunConfig)
    stage_two: StageTwoConfig = dataclasses.field(default_factory=StageTwoConfig)

    def __post_init__(self):
        for key, cls in _SECTIONS.items():
            section = getattr(self, key)
            for field in dataclasses.fields(cls):
                setattr(section, field.name, check_value(f"{key}.{field.name}", getattr(section, field.name),
                                                         _hints(cls)[field.name]))
        self.name = check_value("name", self.name, str)
        if self.stage_two.enabled:
            if self.model.architecture != "backbone":
                raise ValueError("stage_two needs model.architecture 'backbone' (an age head with a classifier).")
            if not self.data.val_fraction > 0:
                raise ValueError("stage_two needs a validation split (data.val_fraction > 0) for stage 1's MAE.")

    def to_dict(self) -> Dict[str, Any]:
        """Plain Python values (for YAML)."""
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        """The resolved config as YAML text."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


# Allowed values beyond the type: (test, description of what is allowed).
def _choices(*allowed):
    return (lambda v: v in allowed), "one of " + ", ".join(repr(a) for a in allowed)


def _at_least(low):
    return (lambda v: v >= low), f">= {low}"


def _between(low, high):
    return (lambda v: low <= v < high), f"in [{low}, {high})"


def _positive():
    return (lambda v: v > 0), "> 0"


def _each(rule):
    test, text = rule
    return (lambda values: all(test(v) for v in values)), f"each {text}"


_RULES = {
    "model.architecture": _choices("ssrnet", "backbone"),
    "model.input_size": _at_least(8),
    "model.alpha": _positive(),
    "model.dropout": _between(0.0, 1.0),
    "model.batch_norm_momentum": _between(0.0, 1.0),
    "data.split_seed": _at_least(0),
    "data.test_fraction": ((lambda v: 0.0 < v < 1.0), "in (0, 1)"),
    "data.val_fraction": _between(0.0, 1.0),
    "data.limit": _at_least(1),
    "data.batch_size": _at_least(1),
    "optimizer.name": _choices("adam", "adamw", "sgd"),
    "optimizer.learning_rate": _positive(),
    "optimizer.weight_decay": _at_least(0.0),
    "optimizer.momentum": _between(0.0, 1.0),
    "optimizer.weight_decay_style": _choices("decoupled", "coupled"),
    "schedule.kind": _choices("constant", "step", "plateau", "one_cycle"),
    "schedule.milestones": _each(_at_least(1)),
    "schedule.factor": ((lambda v: 0.0 < v <= 1.0), "in (0, 1]"),
    "schedule.patience": _at_least(1),
    "schedule.warmup_fraction": _between(0.0, 1.0),
    "schedule.final_div": _at_least(1.0),
    "run.epochs": _at_least(1),
    "run.seed": _at_least(0),
    "run.strategy": _choices("auto", "default", "mirrored", "tpu", "multi_worker"),
    "run.mixed_precision": _choices("auto", "off", "float32", "mixed_float16", "mixed_bfloat16", "on"),
    "run.jit_compile": _choices("auto", "on", "off"),
    "run.steps_per_execution": ((lambda v: v == "auto" or (isinstance(v, int) and v >= 1)), "'auto' or an integer >= 1"),
    "run.steps_per_epoch": _at_least(1),
    "run.precise_bn_batches": _at_least(0),
    "stage_two.epochs": _at_least(1),
    "stage_two.learning_rate": _positive(),
    "stage_two.optimizer": _choices("adam", "adamw", "sgd"),
    "stage_two.schedule": _choices("one_cycle", "constant"),
    "stage_two.class_bin_width": _positive(),
    "stage_two.steps_per_epoch": _at_least(1),
}


def _hints(cls) -> Dict[str, Any]:
    return typing.get_type_hints(cls)


def _type_name(hint) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union:
        names = [_type_name(a) for a in args if a is not type(None)]
        return ("null or " if type(None) in args else "") + " or ".join(names)
    if origin in (list, List):
        inner = {int: "integers", float: "numbers", str: "strings"}.get(args[0] if args else None, "entries")
        return f"a list of {inner}"
    if origin in (dict, Dict):
        return "a mapping"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(hint, str(hint))


def _coerce(value, hint):
    """``value`` as type ``hint``, or raises ``TypeError``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin is typing.Union:
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg)
            except TypeError:
                continue
        raise TypeError
    if origin in (list, List):
        if not isinstance(value, (list, tuple)):
            raise TypeError
        return [_coerce(v, args[0]) if args else v for v in value]
    if origin in (dict, Dict):
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise TypeError
        return dict(value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise TypeError
    if hint is int:
        if isinstance(value, bool):
            raise TypeError
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise TypeError
    if hint is float:
        if isinstance(value, bool):
            raise TypeError
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                raise TypeError from None
        if isinstance(value, (int, float)) and math.isfinite(value):
            return float(value)
        raise TypeError
    if hint is str:
        if isinstance(value, str):
            return value
        raise TypeError
    return value


def check_value(key: str, value, hint):
    """``value`` of config key ``key`` checked against its type and allowed range.

    Args:
        key: ``section.field``.
        value: The value read (YAML or override).
        hint: The field's type annotation.

    Returns:
        The value, converted where that loses nothing (``3.0`` -> ``3`` for
        an integer, ``"1e-3"`` -> ``0.001`` for a number).

    Raises:
        ConfigError: Naming the key, the value and what is allowed.
    """
    rule = _RULES.get(key)
    if rule is not None and rule[1].startswith("one of"):
        allowed = ("null or " if typing.get_origin(hint) is typing.Union else "") + rule[1]
    else:
        allowed = _type_name(hint) + (f" {rule[1]}" if rule else "")
    if key in ("run.mixed_precision", "run.jit_compile") and isinstance(value, bool):  # YAML: a bare on/off is a boolean
        value = "on" if value else "off"
    given = value
    try:
        value = _coerce(value, hint)
    except TypeError:
        raise ConfigError(f"{key} = {given!r} is not allowed: must be {allowed}.") from None
    if rule is not None and value is not None and not rule[0](value):
        raise ConfigError(f"{key} = {given!r} is not allowed: must be {allowed}.")
    return value


_SECTIONS = {
    "model": ModelConfig, "data": DataConfig, "optimizer": OptimizerConfig,
    "schedule": ScheduleConfig, "run": RunConfig, "stage_two": StageTwoConfig,
}


def from_dict(values: Dict[str, Any], source: str = "config") -> ExperimentConfig:
    """Builds an :class:`ExperimentConfig`, rejecting unknown keys and bad values.

    Every value is checked against its field's type annotation and allowed
    range (:func:`check_value`).

    Raises:
        ConfigError: (a ``ValueError``) naming the source, the key, the
            value and what is allowed.
    """
    values = dict(values or {})
    unknown = sorted(set(values) - set(_SECTIONS) - {"name"})
    if unknown:
        raise ConfigError(f"{source}: unknown sections {unknown}; known: {['name', *_SECTIONS]}.")
    sections = {}
    for key, cls in _SECTIONS.items():
        section = values.get(key) or {}
        if not isinstance(section, dict):
            raise ConfigError(f"{source}: section '{key}' must be a mapping, got {section!r}.")
        fields = {f.name for f in dataclasses.fields(cls)}
        bad = sorted(set(section) - fields)
        if bad:
            raise ConfigError(f"{source}: unknown keys {[f'{key}.{b}' for b in bad]}; known: {sorted(fields)}.")
        try:
            hints = _hints(cls)
            checked = {name: check_value(f"{key}.{name}", value, hints[name]) for name, value in section.items()}
            sections[key] = cls(**checked)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"{source}: {error}") from None
    try:
        return ExperimentConfig(name=values.get("name", "experiment"), **sections)
    except ValueError as error:
        raise ConfigError(f"{source}: {error}") from None


def apply_overrides(values: Dict[str, Any], overrides: Sequence[str]) -> Dict[str, Any]:
    """Applies ``section.key=value`` overrides (values parsed as YAML).

    Raises:
        ValueError: For an override without ``=`` or without a section.
    """
    values = {k: (dict(v) if isinstance(v, dict) else v) for k, v in (values or {}).items()}
    for override in overrides:
        if "=" not in override:
            raise ConfigError(f"override {override!r} is not of the form section.key=value.")
        key, raw = override.split("=", 1)
        parts = key.strip().split(".")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise ConfigError(f"override {override!r}: the value is not valid YAML.") from None
        if parts == ["name"]:
            values["name"] = value
            continue
        if len(parts) < 2:
            raise ConfigError(f"override {override!r} must name a section, e.g. run.epochs=3.")
        node = values
        for part in parts[:-1]:
            if not isinstance(node.get(part, {}), dict):
                raise ConfigError(f"override {override!r}: {part!r} is not a section.")
            node[part] = dict(node.get(part) or {})
            node = node[part]
        node[parts[-1]] = value
    return values


def _read_yaml(path: pathlib.Path) -> Dict[str, Any]:
    """The mapping in a YAML config file (``{}`` when empty)."""
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({error}).") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: must be a mapping of sections, got {type(values).__name__}.")
    return values
#: The named experiment configs, shipped inside the package (and its wheel).
CONFIG_DIR = pathlib.Path(__file__).resolve().parents[1] / "configs"


def config_names() -> List[str]:
    """Names of the shipped experiment configs (``ssrnet``, ``agn_compact``, ...)."""
    return sorted(path.stem for path in CONFIG_DIR.glob("*.yaml"))


def load_config(path, overrides: Sequence[str] = ()) -> ExperimentConfig:
    """Loads a named config (``ssrnet_tf/configs/NAME.yaml``) or any YAML file, with overrides.

    Args:
        path: YAML file path, or a bare name of :func:`config_names`.
        overrides: ``section.key=value`` strings.

    Raises:
        FileNotFoundError: If the file does not exist (listing the names).
        ValueError: For unknown keys or invalid values (naming them).
    """
    path = pathlib.Path(path)
    if not path.suffix and not path.exists():
        named = CONFIG_DIR / f"{path}.yaml"
        if not named.is_file():
            raise FileNotFoundError(f"{path}: no such experiment config; the named ones are "
                                    f"{', '.join(config_names())} (or give a YAML file).")
        path = named
    if not path.is_file():
        raise FileNotFoundError(f"{path}: experiment config not found.")
    values = _read_yaml(path)
    values.setdefault("name", path.stem)
    return from_dict(apply_overrides(values, overrides), source=str(path))


def load_run_config(path, overrides: Sequence[str] = ()) -> ExperimentConfig:
    """The config stored in a run folder (``config.yaml``), re-validated, with overrides.

    ``--resume`` uses it: a stored value that is no longer allowed (or was
    edited by hand) is reported like any config error, and the overrides
    given now are applied before validation, so ``run.epochs=3`` repairs a
    stored ``run.epochs: three``.

    Raises:
        ConfigError: Naming the file, the key, the value and what is
            allowed, and how to correct it.
    """
    path = pathlib.Path(path)
    values = _read_yaml(path)
    try:
        return from_dict(apply_overrides(values, overrides), source=str(path))
    except ConfigError as error:
        raise ConfigError(f"{error} Correct it on the command line (section.key=value) together with --resume, "
                          "or edit that file.") from None
