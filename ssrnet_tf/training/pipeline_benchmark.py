"""Benchmarks the tf.data input pipeline on real faces: images per second.

The library behind ``training/benchmark_pipeline.py``.

For each input size, measures the pipeline of :func:`ssrnet_tf.data.make_dataset`
with and without a memory cache and with and without augmentation, over
full passes of the faces. A cached pipeline is first filled by one pass
(reported as "fill"), then timed on the next. The header records the
command line, versions and the CPU, so figures from different machines can
be told apart.

With ``--configs``, each named training config's augmentation set
(``data.augment`` and ``data.augment_params`` of ``ssrnet_tf/configs/NAME.yaml``)
is timed too, on the memory-cached pipeline.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import platform
import shlex
import sys
import time

import numpy as np

from ssrnet_tf.data import augment, file_check, image_ops, pipeline, utkface
from ssrnet_tf.export.benchmark import cpu_name

DEFAULT_AUGMENT = "horizontal_flip,random_crop,affine,hsv_shift,gamma,brightness,contrast"
TARGET_IMAGES_PER_SECOND = 2000.0


def cpu_description() -> str:
    """CPU model, logical cores and the cores this process may use."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cpu_name()}; {os.cpu_count()} logical cores, {usable} usable by this process"


def print_header(args) -> None:
    """The command line, date, CPU, versions and settings, as ``#`` lines."""
    import cv2  # pylint: disable=import-outside-toplevel
    import keras  # pylint: disable=import-outside-toplevel
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    print("# ssrnet_tf input pipeline benchmark")
    print(f"# command: {shlex.join([sys.executable, *sys.argv])}")
    print(f"# date:    {datetime.datetime.now().isoformat(timespec='seconds')}")
    print(f"# cpu:     {cpu_description()}")
    print(f"# python {platform.python_version()}, tensorflow {tf.__version__}, keras {keras.__version__}, "
          f"numpy {np.__version__}, opencv {cv2.__version__}; {platform.platform()}")
    print(f"# data:    {args.data_dir}")
    print(f"# batch {args.batch_size}; augmentation = {args.augment}")
    sys.stdout.flush()


def images_per_second(dataset) -> tuple:
    """One full pass: (images, seconds)."""
    count = 0
    start = time.perf_counter()
    for images, _ in dataset:
        count += int(images.shape[0])
    return count, time.perf_counter() - start


def config_augmentations(names) -> dict:
    """``{config name: AugmentConfig}`` of named training configs (``["all"]``: every one)."""
    from ssrnet_tf.training import config as config_lib  # pylint: disable=import-outside-toplevel  # heavy: only for --configs

    if list(names) == ["all"]:
        names = config_lib.config_names()
    result = {}
    for name in names:
        data = config_lib.load_config(name).data
        result[name] = augment.AugmentConfig.from_names(data.augment, **data.augment_params)
    return result


@contextlib.contextmanager
def projective_op_only():
    """Inside: every geometric augmentation resamples with ImageProjectiveTransformV3
    (the path before the compiled row-preserving one), for comparison."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    general = image_ops.transform

    def op_only(images, matrices, *, interpolation="bilinear", fill_mode="reflect", fill_value=0.0, compiled=True):  # noqa: ARG001
        return tf.raw_ops.ImageProjectiveTransformV3(
            images=images, transforms=tf.cast(matrices, tf.float32), output_shape=tf.shape(images)[1:3],
            fill_value=tf.constant(fill_value, tf.float32), interpolation=interpolation.upper(),
            fill_mode=fill_mode.upper())

    image_ops.transform = op_only
    try:
        yield
    finally:
        image_ops.transform = general


def time_configs(table, sizes, batch_size, seed, names, passes: int, compare_op: bool) -> None:
    """Faces/s of the memory-cached pipeline with each config's augmentations.

    Each dataset is filled once, then timed over ``passes`` full passes
    (alternating with its projective-op twin under ``compare_op``); the
    best pass is reported, the one least slowed by other processes.
    """
    print()
    print(f"{'size':>5} {'config':<24} {'resampling':<14} {'best faces/s':>12} {'all passes':<24} augmentations")
    for size in sizes:
        for name, augment_config in config_augmentations(names).items():
            config = pipeline.PipelineConfig(input_size=size, batch_size=batch_size, cache="memory", seed=seed,
                                             augment=augment_config if augment_config.enabled() else None)
            variants = {"default": pipeline.make_dataset(table, config, name=f"benchmark_{name}")[0]}
            if compare_op and augment_config.enabled():
                with projective_op_only():
                    variants["projective op"] = pipeline.make_dataset(table, config, name=f"benchmark_{name}_op")[0]
            rates = {variant: [] for variant in variants}
            for dataset in variants.values():
                images_per_second(dataset)  # fills the cache
            for _ in range(passes):
                for variant, dataset in variants.items():
                    count, seconds = images_per_second(dataset)
                    rates[variant].append(count / seconds)
            for variant, values in rates.items():
                print(f"{size:>5} {name:<24} {variant:<14} {max(values):12.0f} "
                      f"{' '.join(f'{v:.0f}' for v in values):<24} {','.join(augment_config.enabled()) or '-'}")
            sys.stdout.flush()
            del variants


def time_table(table, sizes, batch_size: int, seed: int, augment_config, caches: str = "both") -> dict:
    """Images/s of every size x cache x augmentation setting; prints one row each.

    Args:
        table: The faces (:class:`ssrnet_tf.data.SampleTable`).
        sizes: Input sizes.
        batch_size: Images per batch.
        seed: Pipeline seed.
        augment_config: The augmentations of the ``on`` rows.
        caches: Cache settings timed: ``"both"``, ``"memory"`` or ``"none"``.

    Returns:
        ``{(size, cache, augmented): images per second}``.
    """
    print()
    print(f"{'size':>5} {'cache':>7} {'augment':>8} {'fill img/s':>11} {'img/s':>9} {'images':>7}")
    caches = {"both": (None, "memory"), "memory": ("memory",), "none": (None,)}[caches]
    results = {}
    for size in sizes:
        for cache in caches:
            for augmented in (False, True):
                config = pipeline.PipelineConfig(
                    input_size=size, batch_size=batch_size, cache=cache, seed=seed,
                    augment=augment_config if augmented else None)
                dataset, report = pipeline.make_dataset(table, config, name=f"benchmark_{size}")
                fill = ""
                if cache is not None:
                    count, seconds = images_per_second(dataset)
                    fill = f"{count / seconds:11.0f}"
                count, seconds = images_per_second(dataset)
                rate = count / seconds
                results[(size, cache, augmented)] = rate
                print(f"{size:>5} {cache or 'none':>7} {'on' if augmented else 'off':>8} {fill:>11} "
                      f"{rate:9.0f} {count:7d}")
                sys.stdout.flush()
                del dataset, report
    return results


def run_pipeline_benchmark(args) -> int:
    """The benchmark of ``training/benchmark_pipeline.py`` for its parsed arguments."""
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    augment_config = augment.AugmentConfig.from_names([n for n in args.augment.split(",") if n])
    print_header(args)
    table = utkface.read_utkface(args.data_dir)
    if args.limit is not None and args.limit < len(table):
        table = table.take(np.sort(np.random.default_rng(args.seed).choice(len(table), args.limit, replace=False)))
    start = time.perf_counter()
    verdicts = file_check.check_image_files(table.path.tolist(), level="decode")
    seconds = time.perf_counter() - start
    bad = sum(reason is not None for reason in verdicts.values())
    print(f"# faces:   {len(table)} read, {bad} unusable; up-front decode check {seconds:.1f} s "
          f"({len(table) / seconds:.0f} images/s)")
    if not args.skip_table:
        results = time_table(table, args.sizes, args.batch_size, args.seed, augment_config, args.cache)
        key = (64, "memory", False)
        if key in results:
            verdict = "meets" if results[key] >= TARGET_IMAGES_PER_SECOND else "MISSES"
            print(f"\ncached 64x64 without augmentation: {results[key]:.0f} images/s "
                  f"({verdict} the {TARGET_IMAGES_PER_SECOND:.0f} images/s target)")
    if args.configs:
        time_configs(table, args.sizes, args.batch_size, args.seed, args.configs, args.passes, args.compare_op)
    return 0
