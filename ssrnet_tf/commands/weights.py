"""``ssrnet-tf weights``: list the published weights, or fetch one."""

from __future__ import annotations

import argparse

from ssrnet_tf.commands.common import WEIGHTS_DIR_ENV, add_weights_dir_argument, weights_dir_from

EXAMPLES = (
    "ssrnet-tf weights                                   # list the shipped models and published weights",
    "ssrnet-tf weights imdb                              # fetch one into the cache, print its path",
    "ssrnet-tf weights imdb --weights-dir ssrnet_h5/     # use a local copy (offline)",
)


def _list_shipped(pretrained) -> None:
    """Shipped models with their model-card figures (test split of UTKFace)."""
    shipped = pretrained.shipped_models()
    if not shipped:
        print("shipped models: none in this checkout")
        return
    default = pretrained.default_model_name()
    print("shipped models (trained by this project; NON-COMMERCIAL RESEARCH USE ONLY, as their UTKFace training data):")
    for name, entry in shipped.items():
        card = entry.figures
        f, i = card["figures"]["float"], card["figures"]["int8"]
        mark = "  [default of predict/evaluate]" if name == default else ""
        print(f"  {name:16s} {entry.description}{mark}")
        print(f"  {'':16s} test MAE {f['mae']:.2f} (flip-averaged {f['mae_flip_average']:.2f}), CA(5) {f['ca_5']:.3f}, "
              f"ages 0-12 MAE {f['children_0_12']['mae']:.2f} on {f['test_faces']} held-out UTKFace faces")
        print(f"  {'':16s} {name}-int8: test MAE {i['mae']:.2f}, {card['sizes_kib']['int8']:.0f} KiB, "
              f"{card['latency']['p50_ms']:.2f} ms per face (1 thread); card: {pretrained.SHIPPED_DIR / entry.files['card']}")


def run(args: argparse.Namespace) -> int:
    """Lists the published weights, or fetches one into the cache."""
    from ssrnet_tf import pretrained  # pylint: disable=import-outside-toplevel

    if args.name is None:
        _list_shipped(pretrained)
        print("published SSR-Net weights (the authors'; downloaded on first use):")
        for entry in pretrained.REGISTRY.values():
            print(f"  {entry.name:16s} {entry.description}\n  {'':16s} {entry.url}")
        print(f"cache: {pretrained.default_cache_dir()}")
        return 0
    if args.name in pretrained.shipped_files():
        print(pretrained.shipped_path(args.name))
        return 0
    path = pretrained.get_weights_path(
        args.name, weights_dir=weights_dir_from(args, "weights")
    )
    print(path)
    return 0


def add_parser(commands) -> None:
    """Adds ``weights`` to the ``ssrnet-tf`` sub-command parsers."""
    weights = commands.add_parser(
        "weights",
        help="list the shipped models and the published weights, or fetch one",
        description="Lists the models shipped in the package (trained by this project, with their test figures) "
        "and the published SSR-Net weights (Yang et al., 2018; Apache-2.0), or finds one by name and prints its "
        f"path: a shipped file, else --weights-dir (or ${WEIGHTS_DIR_ENV}), the cache, then a download from the "
        "authors' repository (SHA-256 checked).",
    )
    weights.add_argument("name", nargs="?", help="registry name to fetch into the cache")
    add_weights_dir_argument(weights)
    weights.set_defaults(handler=run)
