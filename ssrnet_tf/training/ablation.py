"""Ablation studies: train every variant of one study alike and tabulate them.

A study (``ssrnet_tf/configs/ablations/NAME.yaml``) names one experiment config, the
overrides every variant shares (backbone, input size, split, epochs: the
budget) and, per variant, the overrides that make it that variant. The
runner trains each variant for each seed with :func:`trainer.train` in
``OUTPUT/RUN/seed_S`` (resumable: a finished run is read back, an
interrupted one resumed), reads the held-out test report and writes the
table of MAE, CA(5), σ and AAR (mean and spread over the seeds) as
``ablation.json``, ``ablation.md`` and ``ablation.png``.

Study file::

    title: Age-Granularity-Net losses
    claim: every added loss improves the accuracy
    reference: Zhou et al., Using Multiple Losses ..., Table 1
    config: agn_compact             # a training/configs name or a YAML path
    overrides: [model.input_size=64, data.limit=4000, run.epochs=8]
    seeds: [0, 1]
    variants:
      - {name: 1-year loss, overrides: [model.head_kwargs.granularities=[1]]}
      - {name: + 5-year, overrides: [...]}
    metrics: {age_group_accuracy: {boundaries: 5_groups}}   # optional

Variants that give the same ``run`` name share one training per seed and
read different reports of it (``report: stage1`` reads a two-stage run's
stage-1 evaluation; the default ``final`` the final one), so LAE's "stage 1"
and "stage 1 + 2" come from the very same stage 1.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import platform
import re
import time
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import yaml

from ssrnet_tf.training import config as config_lib
from ssrnet_tf.utils.atomic import atomic_write_bytes


#: Folder of the named study configs (shipped with the package, beside the experiment configs).
STUDY_DIR = pathlib.Path(__file__).resolve().parents[1] / "configs" / "ablations"

#: Metrics of the table: report key, column title, True if higher is better.
METRICS = (("mae", "MAE", False), ("ca_5", "CA(5)", True), ("group_mae_std", "σ", False), ("aar", "AAR", True))

#: Reports a variant can read from its run.
REPORTS = {"final": "evaluation", "stage1": "stage1_evaluation"}

#: Extra metrics a study can ask for (computed from the saved model).
EXTRA_METRICS = ("age_group_accuracy",)


@dataclasses.dataclass
class Variant:
    """One row of a study.

    Attributes:
        name: Row label.
        overrides: ``section.key=value`` overrides that make the variant.
        run: Name of the training it reads (variants with the same ``run``
            must have the same overrides and share one training per seed).
        report: ``"final"`` or ``"stage1"`` (a two-stage run's stage 1).
        expect: The paper's claim for this variant against the study's
            baseline (its first variant), as ``"lower mae"`` or ``"higher
            age_group_accuracy"``: what the verdict tests
            (:func:`ssrnet_tf.evaluation.paired_comparison.verdict`);
            empty: no claim, differences only.
    """

    name: str
    overrides: List[str] = dataclasses.field(default_factory=list)
    run: str = ""
    report: str = "final"
    expect: str = ""

    def __post_init__(self):
        if not self.name:
            raise ValueError("every variant needs a name.")
        if self.expect:
            words = self.expect.split()
            if len(words) != 2 or words[0] not in ("lower", "higher"):
                raise ValueError(f"variant {self.name!r}: expect must be 'lower METRIC' or 'higher METRIC', "
                                 f"got {self.expect!r}.")
        if self.report not in REPORTS:
            raise ValueError(f"variant {self.name!r}: report must be one of {sorted(REPORTS)}, got {self.report!r}.")
        self.overrides = [str(override) for override in self.overrides]
        self.run = self.run or _slug(self.name)


@dataclasses.dataclass
class Study:
    """A named ablation study (see the module docstring)."""

    name: str
    title: str
    claim: str
    reference: str
    config: str
    overrides: List[str]
    seeds: List[int]
    variants: List[Variant]
    metrics: Dict[str, Dict[str, Any]] = dataclasses.field(default_factory=dict)
    accuracy_floor: float = 7.0

    def __post_init__(self):
        if not self.variants:
            raise ValueError(f"study {self.name!r} has no variants.")
        if not self.seeds:
            raise ValueError(f"study {self.name!r} has no seeds.")
        names = [variant.name for variant in self.variants]
        if len(set(names)) != len(names):
            raise ValueError(f"study {self.name!r}: variant names must be unique, got {names}.")
        runs: Dict[str, List[str]] = {}
        for variant in self.variants:
            if runs.setdefault(variant.run, variant.overrides) != variant.overrides:
                raise ValueError(f"study {self.name!r}: variants sharing run {variant.run!r} must share their overrides.")
        unknown = sorted(set(self.metrics) - set(EXTRA_METRICS))
        if unknown:
            raise ValueError(f"study {self.name!r}: unknown metrics {unknown}; known: {list(EXTRA_METRICS)}.")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "variant"


def study_names() -> List[str]:
    """The names of the studies in :data:`STUDY_DIR`."""
    return sorted(path.stem for path in STUDY_DIR.glob("*.yaml"))


def load_study(name_or_path) -> Study:
    """Reads a study by name (``ssrnet_tf/configs/ablations/NAME.yaml``) or path.

    Raises:
        FileNotFoundError: Naming the missing file and the known studies.
        ValueError: For a malformed study, naming the file and the problem.
    """
    path = pathlib.Path(name_or_path)
    if not path.suffix:
        path = STUDY_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such ablation study; known studies: {', '.join(study_names())}.")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: not valid YAML ({error}).") from None
    known = {field.name for field in dataclasses.fields(Study)} - {"name"}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{path}: unknown keys {unknown}; known: {sorted(known)}.")
    try:
        variants = [Variant(**dict(entry)) for entry in values.get("variants") or []]
        return Study(
            name=path.stem, title=str(values.get("title", path.stem)), claim=str(values.get("claim", "")),
            reference=str(values.get("reference", "")), config=str(values["config"]),
            overrides=[str(o) for o in values.get("overrides") or []],
            seeds=[int(seed) for seed in values.get("seeds") or [0]], variants=variants,
            metrics=dict(values.get("metrics") or {}), accuracy_floor=float(values.get("accuracy_floor", 7.0)),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{path}: {error}") from None


def variant_config(study: Study, variant: Variant, seed: int, output_dir, overrides: Sequence[str] = ()):
    """The experiment config of one variant and seed.

    Overrides apply in this order: the study's, the variant's, ``overrides``
    (e.g. a smaller budget from the command line), then the seed and the
    run folder.
    """
    run_dir = pathlib.Path(output_dir) / variant.run / f"seed_{seed}"
    return config_lib.load_config(study.config, [
        *study.overrides, *variant.overrides, *overrides,
        f"name={study.name}-{variant.run}-seed{seed}", f"run.seed={seed}", f"run.output_dir={run_dir}",
    ])


def _finished(run_dir: pathlib.Path, two_stage: bool) -> bool:
    path = run_dir / "summary.json"
    if not path.is_file():
        return False
    summary = json.loads(path.read_text())
    return "stage2" in summary if two_stage else "test_mae" in summary


def _train_once(config, verbose: int) -> float:
    """Trains (or resumes) a run unless it is finished; returns the wall seconds spent."""
    import keras  # pylint: disable=import-outside-toplevel

    from ssrnet_tf.training import trainer  # pylint: disable=import-outside-toplevel

    run_dir = pathlib.Path(config.run.output_dir)
    if _finished(run_dir, config.stage_two.enabled):
        return 0.0
    started = time.time()
    keras.backend.clear_session()
    trainer.train(config, resume=run_dir.is_dir() and any(run_dir.iterdir()), verbose=verbose)
    return time.time() - started


def age_group_accuracy(run_dir: pathlib.Path, config, model_file: str, boundaries) -> float:
    """Share of held-out test faces whose age group the model's ``"age_group"`` output gets right.

    Args:
        run_dir: The run folder (its ``split.json`` gives the test faces).
        config: The run's experiment config.
        model_file: The model in ``run_dir`` to use.
        boundaries: Age-group preset or boundaries (:func:`encodings.age_group_index`).
    """
    import keras  # pylint: disable=import-outside-toplevel

    from ssrnet_tf.data import pipeline, sources, splits  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.heads import encodings  # pylint: disable=import-outside-toplevel

    table = sources.read_dataset(config.data.dataset, config.data.path)
    table = table.take(splits.Split.load(run_dir / "split.json").indices(table)["test"])
    model = keras.saving.load_model(run_dir / model_file, compile=False)
    options = pipeline.PipelineConfig(input_size=config.model.input_size, batch_size=config.data.batch_size,
                                      shuffle=False, cache=None)
    dataset, _ = pipeline.make_dataset(table, options, name="ablation_test")
    hits, total = 0, 0
    for images, ages in dataset:
        groups = np.argmax(np.asarray(model.predict_on_batch(images)["age_group"]), axis=1)
        truth = encodings.age_group_index(ages.numpy(), boundaries)
        hits, total = hits + int(np.sum(groups == truth)), total + len(truth)
    return hits / total


def median_baseline(run_dir: pathlib.Path, config) -> Dict[str, float]:
    """The metrics of a constant guess, the training faces' median age, on the run's test faces.

    The floor every variant must beat before its differences mean anything.
    """
    from ssrnet_tf import metrics  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.data import sources, splits  # pylint: disable=import-outside-toplevel

    table = sources.read_dataset(config.data.dataset, config.data.path)
    parts = splits.Split.load(run_dir / "split.json").indices(table)
    median = float(np.median(table.age[parts["train"]]))
    truth = table.age[parts["test"]]
    report = metrics.age_report(truth, np.full(truth.shape, median))
    return {"median_age": median, **{key: float(report[key]) for key, _, _ in METRICS}}


def majority_group_floor(run_dir: pathlib.Path, config, boundaries) -> Dict[str, Any]:
    """The age-group accuracy of always answering the training faces' most common group, on the test faces."""
    from ssrnet_tf.data import sources, splits  # pylint: disable=import-outside-toplevel
    from ssrnet_tf.heads import encodings  # pylint: disable=import-outside-toplevel

    table = sources.read_dataset(config.data.dataset, config.data.path)
    parts = splits.Split.load(run_dir / "split.json").indices(table)
    train = encodings.age_group_index(table.age[parts["train"]], boundaries)
    test = encodings.age_group_index(table.age[parts["test"]], boundaries)
    majority = int(np.bincount(train).argmax())
    return {"group": majority, "label": f"group {majority}", "age_group_accuracy": float(np.mean(test == majority))}


def _variant_metrics(study: Study, variant: Variant, config) -> Dict[str, float]:
    run_dir = pathlib.Path(config.run.output_dir)
    report = json.loads((run_dir / REPORTS[variant.report] / "report.json").read_text())
    values = {key: float(report[key]) for key, _, _ in METRICS}
    values["test_faces"] = int(report["count"])
    values["convergence"] = _convergence(run_dir / ("stage2" if variant.report == "final" and config.stage_two.enabled
                                                    else "") / "log.csv")
    errors = run_dir / REPORTS[variant.report] / "test_errors.csv"
    # Relative to the study's folder (its runs are RUN/seed_S inside it), so the tables can move with the files.
    values["errors_file"] = str(pathlib.Path(*errors.parts[-4:])) if errors.is_file() else None
    if "age_group_accuracy" in study.metrics:
        model_file = "stage1_model.keras" if variant.report == "stage1" else "model.keras"
        boundaries = study.metrics["age_group_accuracy"].get("boundaries", "5_groups")
        values["age_group_accuracy"] = age_group_accuracy(run_dir, config, model_file, boundaries)
    return values


def _summarise(values: Sequence[float]) -> Dict[str, float]:
    array = np.asarray(values, dtype=np.float64)
    spread = float(np.std(array, ddof=1)) if array.size > 1 else 0.0
    return {"mean": float(np.mean(array)), "std": spread, "min": float(np.min(array)), "max": float(np.max(array))}


def _metric_columns(study: Study):
    columns = list(METRICS)
    if "age_group_accuracy" in study.metrics:
        columns.append(("age_group_accuracy", "age-group acc.", True))
    return columns


def _machine() -> str:
    from ssrnet_tf.export.benchmark import cpu_name  # pylint: disable=import-outside-toplevel

    return f"{cpu_name()} ({os.cpu_count()} logical cores), {platform.system()} {platform.machine()}, no GPU used"


def run_study(study: Study, output_dir, overrides: Sequence[str] = (), seeds: Optional[Sequence[int]] = None,
              command: str = "", verbose: int = 0, train: bool = True) -> Dict[str, Any]:
    """Trains every variant of ``study`` for every seed and writes the table.

    Args:
        study: The study.
        output_dir: Folder of the study's runs and tables.
        overrides: Extra ``section.key=value`` overrides for every variant
            (applied after the variant's).
        seeds: Seeds to use instead of the study's.
        command: The command line, recorded in the outputs.
        verbose: Keras progress verbosity of the trainings.
        train: ``False`` only tabulates the runs already finished (none
            is started or resumed).

    Returns:
        The results written to ``ablation.json``.
    """
    output_dir = pathlib.Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    seeds = list(seeds) if seeds else list(study.seeds)
    per_variant: Dict[str, List[Dict[str, Any]]] = {variant.name: [] for variant in study.variants}
    budget = baseline = None
    results: Dict[str, Any] = {}
    # Seed-major: every variant once before any is repeated, so that an
    # interrupted study has a complete table for its first seed.
    for seed in seeds:
        for variant in study.variants:
            config = variant_config(study, variant, seed, output_dir, overrides)
            if not train and not _finished(pathlib.Path(config.run.output_dir), config.stage_two.enabled):
                continue
            seconds = _train_once(config, verbose) if train else 0.0
            values = _variant_metrics(study, variant, config)
            values.update(seed=seed, train_seconds=round(seconds, 1))
            per_variant[variant.name].append(values)
            print(f"{study.name}: {variant.name} (seed {seed}): MAE {values['mae']:.3f}, CA(5) {values['ca_5']:.3f}, "
                  f"σ {values['group_mae_std']:.3f}, AAR {values['aar']:.3f}", flush=True)
            budget = budget or _budget(config)
            baseline = baseline or median_baseline(pathlib.Path(config.run.output_dir), config)
            results = _collect(study, seeds, per_variant, budget, command, overrides, output_dir)
            results["median_baseline"] = baseline
            if "age_group_accuracy" in study.metrics:
                results["majority_group"] = majority_group_floor(
                    pathlib.Path(config.run.output_dir), config,
                    study.metrics["age_group_accuracy"].get("boundaries", "5_groups"))
            # Written after every run, so that an interrupted study still shows what ran.
            atomic_write_bytes(output_dir / "ablation.json", json.dumps(results, indent=2).encode())
            atomic_write_bytes(output_dir / "ablation.md", markdown_table(results, _metric_columns(study)).encode())
            plot_results(results, _metric_columns(study), output_dir / "ablation.png")
    return results


def _convergence(log_path: pathlib.Path) -> Dict[str, Any]:
    """Whether a run's validation MAE had flattened (:func:`paired_comparison.flattened`)."""
    import csv  # pylint: disable=import-outside-toplevel

    from ssrnet_tf.evaluation import paired_comparison  # pylint: disable=import-outside-toplevel

    if not log_path.is_file():
        return {"flat": False, "epochs": 0}
    with open(log_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    key = next((k for k in ("val_age_mae", "val_mae") if rows and k in rows[0]), None)
    if key is None:
        return {"flat": False, "epochs": len(rows)}
    return {"epochs": len(rows), **paired_comparison.flattened([float(row[key]) for row in rows if row[key] != ""])}


def _errors(entry: Dict[str, Any], base_dir=None):
    import csv  # pylint: disable=import-outside-toplevel

    if not entry.get("errors_file"):
        return None
    path = pathlib.Path(base_dir or ".") / entry["errors_file"]
    if not path.is_file():
        return None
    with open(path, newline="") as handle:
        return np.asarray([float(row["abs_error"]) for row in csv.DictReader(handle)])


def compare_to_baseline(study: Study, rows: List[Dict[str, Any]], base_dir=None) -> None:
    """Adds to each row but the first its paired differences from the first and, if it has a claim, the verdict.

    Per metric: the mean per-seed difference with a 95 % t interval over the
    seeds both rows have. For the MAE also the difference over the test
    faces (each face's error averaged over those seeds) with a 95 %
    bootstrap interval (the rows' ``errors_file`` are relative to
    ``base_dir``, the study's folder). The verdict follows the rule of
    :mod:`ssrnet_tf.evaluation.paired_comparison`; a study whose best row
    misses ``accuracy_floor`` is under-trained.
    """
    from ssrnet_tf.evaluation import paired_comparison  # pylint: disable=import-outside-toplevel

    if not rows:
        return
    best = min(row["summary"]["mae"]["mean"] for row in rows)
    trained_enough = best <= study.accuracy_floor
    baseline = rows[0]
    by_seed = {entry["seed"]: entry for entry in baseline["seeds"]}
    expectations = {variant.name: variant.expect for variant in study.variants}
    for row in rows[1:]:
        pairs = [(by_seed[entry["seed"]], entry) for entry in row["seeds"] if entry["seed"] in by_seed]
        differences = {}
        for key, _, _ in _metric_columns(study):
            interval = paired_comparison.seed_interval([a[key] for a, _ in pairs], [b[key] for _, b in pairs])
            differences[key] = {"seeds": interval.to_dict() if interval else None, "paired_seeds": len(pairs)}
        base_errors = [_errors(a, base_dir) for a, _ in pairs]
        errors = [_errors(b, base_dir) for _, b in pairs]
        if pairs and all(e is not None for e in base_errors + errors):
            faces = paired_comparison.bootstrap_interval(np.stack(base_errors), np.stack(errors))
            differences["mae"]["faces"] = faces.to_dict()
        row["vs_baseline"] = differences
        row.pop("claim", None)
        row.pop("verdict", None)
        claim = expectations.get(row["name"])
        if claim:
            direction, key = claim.split()
            found = differences.get(key, {})
            intervals = [_interval(found.get("seeds"))] + ([_interval(found["faces"])] if "faces" in found else [])
            row["claim"] = claim
            row["verdict"] = paired_comparison.verdict(-1 if direction == "lower" else 1, intervals, trained_enough)


def _interval(values):
    from ssrnet_tf.evaluation import paired_comparison  # pylint: disable=import-outside-toplevel

    return None if not values else paired_comparison.Interval(values["difference"], values["low"], values["high"])


def _collect(study: Study, seeds, per_variant, budget, command: str, overrides, base_dir=None) -> Dict[str, Any]:
    """The results of the runs done so far (variants without a run yet are left out)."""
    rows = []
    for variant in study.variants:
        done = per_variant[variant.name]
        if not done:
            continue
        summary = {key: _summarise([entry[key] for entry in done]) for key, _, _ in _metric_columns(study)}
        rows.append({"name": variant.name, "run": variant.run, "report": variant.report,
                     "overrides": variant.overrides, "seeds": done, "summary": summary,
                     "flat": all(entry.get("convergence", {}).get("flat") for entry in done)})
    compare_to_baseline(study, rows, base_dir)
    return {
        "study": study.name, "title": study.title, "claim": study.claim, "reference": study.reference,
        "command": command, "config": study.config, "overrides": [*study.overrides, *overrides], "seeds": seeds,
        "budget": budget, "machine": _machine(), "variants": rows,
        "complete": all(len(per_variant[v.name]) == len(seeds) for v in study.variants),
        "spread": "std over the seeds (ddof 1; 0 with one seed)",
        "accuracy_floor": study.accuracy_floor,
        "trained_enough": bool(rows) and min(row["summary"]["mae"]["mean"] for row in rows) <= study.accuracy_floor,
    }


def _budget(config) -> Dict[str, Any]:
    run_dir = pathlib.Path(config.run.output_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    budget = {
        "backbone": "ssrnet" if config.model.architecture == "ssrnet" else config.model.backbone,
        "alpha": config.model.alpha, "input_size": config.model.input_size,
        "weights": "from scratch" if config.model.architecture == "ssrnet" or not config.model.weights
        else config.model.weights,
        "epochs": config.run.epochs, "batch_size": config.data.batch_size, "split_seed": config.data.split_seed,
        "faces": {"train": summary.get("train_faces"), "val": summary.get("val_faces"), "test": summary.get("test_faces")},
        "dataset": f"{config.data.dataset}: {config.data.path}",
    }
    if config.stage_two.enabled:
        budget["stage_two_epochs"] = config.stage_two.epochs
    return budget


def markdown_table(results: Dict[str, Any], columns) -> str:
    """The study as a Markdown section: claim, command, budget and the table."""
    budget = results.get("budget") or {}
    faces = budget.get("faces") or {}
    lines = [f"### {results['title']}", ""]
    if results.get("claim"):
        lines += [f"Claim: {results['claim']}" + (f" ({results['reference']})" if results.get("reference") else ""), ""]
    if results.get("command"):
        lines += [f"Command: `{results['command']}`", ""]
    stage_two = f" + {budget['stage_two_epochs']} stage-2 epochs" if "stage_two_epochs" in budget else ""
    lines += [
        f"Budget: {budget.get('backbone')}" + (f" (alpha {budget['alpha']})" if budget.get("alpha") else "")
        + f" at {budget.get('input_size')} px, weights {budget.get('weights')}, {budget.get('epochs')} epochs{stage_two}, "
        f"batch {budget.get('batch_size')}, {faces.get('train')} train / {faces.get('val')} val / "
        f"{faces.get('test')} test faces (split seed {budget.get('split_seed')}), seeds {results['seeds']}; "
        f"{results['machine']}.", "",
    ]
    header = ("| variant | " + " | ".join(title for _, title, _ in columns)
              + " | ΔMAE vs first: seeds (95 %) | faces (95 %) | flat | claim: verdict |")
    lines += [header, "|" + "---|" * (len(columns) + 5)]
    first = results["variants"][0]["summary"]["mae"]["mean"]
    for row in results["variants"]:
        cells = [f"{row['summary'][key]['mean']:.3f} ± {row['summary'][key]['std']:.3f}" for key, _, _ in columns]
        count = len(row["seeds"])
        label = row["name"] if count == len(results["seeds"]) else f"{row['name']} ({count} seed{'s' if count > 1 else ''})"
        mae = (row.get("vs_baseline") or {}).get("mae") or {}
        seeds_cell = _interval_cell(mae.get("seeds")) if row is not results["variants"][0] else "baseline"
        faces_cell = _interval_cell(mae.get("faces")) if row is not results["variants"][0] else ""
        verdict = f"{row['claim']}: **{row['verdict']}**" if row.get("verdict") else ""
        flat = "yes" if row.get("flat") else "no"
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {seeds_cell} | {faces_cell} | {flat} | {verdict} |")
    baseline = results.get("median_baseline")
    if baseline:
        cells = [f"{baseline[key]:.3f}" if key in baseline else "" for key, _, _ in columns]
        lines.append(f"| *constant guess: training median ({baseline['median_age']:g})* | " + " | ".join(cells)
                     + f" | {baseline['mae'] - first:+.3f} | | | |")
    floor = results.get("majority_group")
    if floor:
        cells = [f"{floor['age_group_accuracy']:.3f}" if key == "age_group_accuracy" else "" for key, _, _ in columns]
        lines.append(f"| *majority group: always {floor['label']}* | " + " | ".join(cells) + " | | | | |")
    if not results.get("complete", True):
        lines += ["", "Incomplete (still running or interrupted): a row marked with a seed count has fewer seeds "
                      "than the study's, a missing variant has not run yet."]
    if "trained_enough" in results and not results["trained_enough"]:
        lines += ["", f"**Under-trained**: no variant reaches test MAE {results['accuracy_floor']:g}, so no verdict is "
                      "drawn from this study."]
    lines += ["", f"On the held-out test faces; mean ± {results['spread']}. "
              "CA(5): share of faces with |error| < 5 years; σ: LAE eq. 7 over its groups 1-10 … 71-81; "
              "AAR = max(0, 7 − MAE) + max(0, 3 − σ). ΔMAE: the paired difference from the first row, over the "
              "seeds (t interval) and over the test faces (bootstrap); flat: the last 20 % of epochs improved the "
              "validation MAE by less than 2 % in every seed; verdict: the rule in README \"Ablation studies\".", ""]
    return "\n".join(lines)


def _interval_cell(values) -> str:
    if not values:
        return "n/a"
    return f"{values['difference']:+.3f} [{values['low']:+.3f}, {values['high']:+.3f}]"


def plot_results(results: Dict[str, Any], columns, path) -> None:
    """One PNG: a panel per metric, a bar (mean) per variant with each seed as a dot."""
    import matplotlib  # pylint: disable=import-outside-toplevel

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

    names = [row["name"] for row in results["variants"]]
    figure, axes = plt.subplots(1, len(columns), figsize=(3.0 * len(columns), 3.0 + 0.08 * max(map(len, names))))
    positions = np.arange(len(names))
    for axis, (key, title, higher) in zip(np.atleast_1d(axes), columns):
        means = [row["summary"][key]["mean"] for row in results["variants"]]
        spreads = [row["summary"][key]["std"] for row in results["variants"]]
        axis.bar(positions, means, yerr=spreads, color="#7aa6c2", capsize=3)
        for position, row in zip(positions, results["variants"]):
            seeds = [entry[key] for entry in row["seeds"]]
            axis.plot([position] * len(seeds), seeds, "k.", markersize=5)
        baseline = (results.get("median_baseline") or {}).get(key)
        if baseline is not None:
            axis.axhline(baseline, color="#b04040", linestyle="--", linewidth=1, label="constant guess")
            axis.legend(fontsize=7, loc="lower right")
        top = max([value for row in results["variants"] for value in [entry[key] for entry in row["seeds"]]]
                  + [baseline or 0.0, 0.0])
        axis.set_ylim(0.0, 1.1 * top if top > 0 else 1.0)  # every metric is >= 0
        axis.set_title(f"{title} ({'higher' if higher else 'lower'} is better)", fontsize=9)
        axis.set_xticks(positions)
        axis.set_xticklabels(names, rotation=35, ha="right", fontsize=8)
        axis.grid(axis="y", alpha=0.3)
    seeds = sorted({entry["seed"] for row in results["variants"] for entry in row["seeds"]})
    figure.suptitle(f"{results['title']}: mean over seeds {seeds} (dots: seeds; dashed: training-median guess)",
                    fontsize=10)
    figure.tight_layout()
    path = pathlib.Path(path)
    temporary = path.with_name(f".{path.name}.tmp.png")
    figure.savefig(temporary, dpi=110)
    plt.close(figure)
    os.replace(temporary, path)
