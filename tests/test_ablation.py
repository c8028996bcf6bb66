"""Ablation studies: study files, tables and plots, and each study end to end on a tiny budget."""

import json
import math

import numpy as np
import pytest
import yaml

from ssrnet_tf import cli
from ssrnet_tf.training import ablation

STUDIES = ("agn", "heads", "lae", "ssrnet_range", "multitask", "switches_ssrnet", "switches_compact")

# A budget that exercises every code path in seconds: a few hundred faces, a
# 32 px backbone (64 px for SSR-Net, whose stages need it), two steps per epoch.
TINY = ["data.limit=200", "data.test_fraction=0.2", "run.epochs=1", "run.steps_per_epoch=2", "data.batch_size=16", "run.precise_bn_batches=1",
        "stage_two.epochs=1", "stage_two.steps_per_epoch=2"]
TINY_BACKBONE = ["model.input_size=32"]


def _results(names=("a", "b"), maes=((3.0, 5.0), (2.0, 2.0))):
    variants = []
    for name, values in zip(names, maes):
        seeds = [{"seed": s, "mae": m, "ca_5": 0.5, "group_mae_std": 1.0, "aar": 7.0 - m, "test_faces": 10}
                 for s, m in enumerate(values)]
        summary = {key: ablation._summarise([entry[key] for entry in seeds]) for key, _, _ in ablation.METRICS}
        variants.append({"name": name, "seeds": seeds, "summary": summary})
    return {"title": "T", "claim": "c", "reference": "r", "command": "ssrnet-tf ablate t", "seeds": [0, 1],
            "budget": {"backbone": "ssrnet", "input_size": 64, "epochs": 1, "faces": {"train": 1, "val": 1, "test": 1}},
            "machine": "m", "variants": variants, "spread": "std over the seeds (ddof 1)"}


def test_every_named_study_loads_and_the_help_lists_them(capsys):
    assert set(ablation.study_names()) == set(STUDIES)
    for name in STUDIES:
        study = ablation.load_study(name)
        assert study.claim and study.reference and len(study.seeds) >= 2 and len(study.variants) >= 2
        for variant in study.variants:  # every variant makes a valid experiment config
            config = ablation.variant_config(study, variant, 0, "/tmp/unused")
            assert config.run.seed == 0 and config.run.output_dir.endswith(f"{variant.run}/seed_0")
    with pytest.raises(SystemExit):
        cli.main(["ablate", "--help"])
    out = capsys.readouterr().out
    assert all(name in out for name in STUDIES)


def test_variants_differ_only_by_their_overrides():
    agn = ablation.load_study("agn")
    configs = [ablation.variant_config(agn, variant, 0, "/tmp/unused") for variant in agn.variants]
    assert [c.model.head_kwargs["granularities"] for c in configs] == [[1], [1, 5], [1, 5, 10], [1, 5, 10, 20]] * 1 + [
        [1, 5, 10, 20]]
    assert [c.model.head_kwargs["use_regression"] for c in configs] == [False] * 4 + [True]
    assert len({(c.model.backbone, c.model.input_size, c.data.limit, c.data.split_seed, c.run.epochs)
                for c in configs}) == 1
    lae = ablation.load_study("lae")
    assert {variant.run for variant in lae.variants} == {"two_stage"}
    assert [variant.report for variant in lae.variants] == ["stage1", "final"]


def test_bad_study_files_are_rejected_with_the_file_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="known studies"):
        ablation.load_study("no_such_study")
    bad = tmp_path / "bad.yaml"
    bad.write_text("config: ssrnet\nvariants:\n  - {name: a, overrides: [x=1]}\n  - {name: b, run: a}\n")
    with pytest.raises(ValueError, match="bad.yaml.*share their overrides"):
        ablation.load_study(bad)
    bad.write_text("config: ssrnet\nvariants: [{name: a, report: stage3}]\n")
    with pytest.raises(ValueError, match="bad.yaml.*report"):
        ablation.load_study(bad)
    bad.write_text("config: ssrnet\nvariant: []\n")
    with pytest.raises(ValueError, match="bad.yaml.*unknown keys"):
        ablation.load_study(bad)


def test_table_and_plot(tmp_path):
    # Variant a: MAE 3 and 5 -> mean 4, sample std sqrt(2) ≈ 1.414; b: 2 and 2 -> 2 ± 0, ΔMAE -2.
    results = _results()
    text = ablation.markdown_table(results, ablation.METRICS)
    assert "| a | 4.000 ± 1.414 |" in text and "| b | 2.000 ± 0.000 |" in text and "| baseline |" in text
    assert results["variants"][0]["summary"]["mae"]["std"] == pytest.approx(math.sqrt(2))
    ablation.plot_results(results, ablation.METRICS, tmp_path / "ablation.png")
    assert (tmp_path / "ablation.png").stat().st_size > 10_000


def _run(name, utkface_dir, tmp_path, seeds=(0,), extra=()):
    study = ablation.load_study(name)
    overrides = [*TINY, f"data.path={utkface_dir}", *extra]
    return ablation.run_study(study, tmp_path / name, overrides=overrides, seeds=seeds)


def _check(results, tmp_path, name, variants):
    assert [row["name"] for row in results["variants"]] == variants and results["complete"]
    for row in results["variants"]:
        for entry in row["seeds"]:
            assert all(math.isfinite(entry[key]) for key, _, _ in ablation.METRICS)
            assert 0.0 <= entry["ca_5"] <= 1.0 and entry["test_faces"] == 40
    stored = json.loads((tmp_path / name / "ablation.json").read_text())
    assert stored["variants"][-1]["summary"] == results["variants"][-1]["summary"]
    floors = 2 if name == "multitask" else 1  # the constant guess; for group accuracy also the majority group
    assert (tmp_path / name / "ablation.md").read_text().count("\n| ") == len(variants) + 1 + floors  # + header
    assert (tmp_path / name / "ablation.png").is_file()


@pytest.mark.slow
def test_agn_study_end_to_end(utkface_dir, tmp_path):
    results = _run("agn", utkface_dir, tmp_path, extra=TINY_BACKBONE)
    _check(results, tmp_path, "agn", [v.name for v in ablation.load_study("agn").variants])


@pytest.mark.slow
def test_heads_study_end_to_end(utkface_dir, tmp_path):
    results = _run("heads", utkface_dir, tmp_path, extra=TINY_BACKBONE)
    _check(results, tmp_path, "heads", [v.name for v in ablation.load_study("heads").variants])
    config = yaml.safe_load((tmp_path / "heads" / "classification_arg_max" / "seed_0" / "config.yaml").read_text())
    assert config["model"]["head"] == "dex" and config["model"]["head_kwargs"] == {"prediction": "arg_max"}


@pytest.mark.slow
def test_lae_study_reads_both_stages_of_one_run(utkface_dir, tmp_path):
    results = _run("lae", utkface_dir, tmp_path, extra=TINY_BACKBONE)
    _check(results, tmp_path, "lae", ["stage 1", "stage 1 + 2"])
    runs = [path.name for path in (tmp_path / "lae").iterdir() if path.is_dir()]
    assert runs == ["two_stage"]  # one training serves both rows
    summary = json.loads((tmp_path / "lae" / "two_stage" / "seed_0" / "summary.json").read_text())
    stage1, final = (row["seeds"][0]["mae"] for row in results["variants"])
    assert stage1 == pytest.approx(summary["stage1"]["test_mae"], abs=1e-3)
    assert final == pytest.approx(summary["stage2"]["test_mae"], abs=1e-3)


@pytest.mark.slow
def test_ssrnet_range_study_two_seeds_and_rerun_reuses_runs(utkface_dir, tmp_path):
    results = _run("ssrnet_range", utkface_dir, tmp_path, seeds=(0, 1))
    _check(results, tmp_path, "ssrnet_range", ["without (lambda 0)", "with (lambda 1)"])
    assert [entry["seed"] for entry in results["variants"][0]["seeds"]] == [0, 1]
    again = _run("ssrnet_range", utkface_dir, tmp_path, seeds=(0, 1))
    assert all(entry["train_seconds"] == 0.0 for row in again["variants"] for entry in row["seeds"])
    assert again["variants"][1]["summary"] == results["variants"][1]["summary"]
    tables = ablation.run_study(ablation.load_study("ssrnet_range"), tmp_path / "ssrnet_range",
                                overrides=[*TINY, f"data.path={utkface_dir}"], seeds=(0, 1), train=False)
    assert tables["variants"] == again["variants"] and tables["complete"]
    # The floor: predicting the training median for every test face.
    assert tables["median_baseline"]["mae"] > 0 and "constant guess" in (tmp_path / "ssrnet_range" / "ablation.md").read_text()


@pytest.mark.slow
def test_multitask_study_reports_age_group_accuracy(utkface_dir, tmp_path):
    results = _run("multitask", utkface_dir, tmp_path, extra=TINY_BACKBONE)
    _check(results, tmp_path, "multitask", [v.name for v in ablation.load_study("multitask").variants])
    assert len(results["variants"]) == 3  # alone, parallel branches, the LDL report's concatenation
    assert 0.0 <= results["majority_group"]["age_group_accuracy"] <= 1.0
    for row in results["variants"]:
        assert 0.0 <= row["seeds"][0]["age_group_accuracy"] <= 1.0
    assert "age-group acc." in (tmp_path / "multitask" / "ablation.md").read_text()


def _write_errors(path, errors):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("row,predicted,abs_error\n" + "".join(f"{i},0,{e}\n" for i, e in enumerate(errors)))
    return str(path)


def test_paired_comparison_and_verdicts_from_run_files(tmp_path):
    """Seed-paired and face-paired differences from the baseline, and the one verdict rule."""
    study = ablation.Study(name="s", title="T", claim="c", reference="r", config="ssrnet", overrides=[], seeds=[0, 1, 2],
                           variants=[ablation.Variant("base"), ablation.Variant("better", expect="lower mae"),
                                     ablation.Variant("noise", expect="lower mae")])
    rng = np.random.default_rng(0)
    base_errors = rng.exponential(6.0, size=(3, 500))
    rows = []
    for name, factor, shift in (("base", 1.0, 0.0), ("better", 0.8, 0.0), ("noise", 1.0, 0.3)):
        seeds = []
        for seed in range(3):
            errors = base_errors[seed] * factor + (rng.normal(0, shift, 500) if shift else 0.0)
            errors = np.abs(errors)
            seeds.append({"seed": seed, "mae": float(errors.mean()), "ca_5": 0.5, "group_mae_std": 1.0, "aar": 1.0,
                          "errors_file": _write_errors(tmp_path / name / f"{seed}.csv", errors)})
        summary = {key: ablation._summarise([entry[key] for entry in seeds]) for key, _, _ in ablation.METRICS}
        rows.append({"name": name, "seeds": seeds, "summary": summary})
    ablation.compare_to_baseline(study, rows)
    better, noise = rows[1], rows[2]
    assert better["verdict"] == "supported" and better["vs_baseline"]["mae"]["seeds"]["high"] < 0
    assert better["vs_baseline"]["mae"]["faces"]["high"] < 0 and better["vs_baseline"]["mae"]["paired_seeds"] == 3
    assert noise["verdict"] in ("inconclusive", "contradicted") and noise["verdict"] != "supported"
    worse = ablation.Study(**{**study.__dict__, "variants": [ablation.Variant("base"),
                                                              ablation.Variant("better", expect="higher mae"),
                                                              ablation.Variant("noise")]})
    again = [dict(row) for row in rows]
    ablation.compare_to_baseline(worse, again)
    assert again[1]["verdict"] == "contradicted" and "verdict" not in again[2]
    strict = ablation.Study(**{**study.__dict__, "accuracy_floor": 1.0})  # nobody reaches MAE 1: under-trained
    ablation.compare_to_baseline(strict, rows)
    assert rows[1]["verdict"] == "under-trained"
    results = {**_results(), "variants": rows, "trained_enough": False, "accuracy_floor": 1.0}
    text = ablation.markdown_table(results, ablation.METRICS)
    assert "lower mae: **under-trained**" in text and "**Under-trained**" in text
    with pytest.raises(ValueError, match="expect must be"):
        ablation.Variant("x", expect="better mae")
