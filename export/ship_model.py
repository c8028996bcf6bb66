"""Ship a finished training run inside the package (files, model card, registry entry).

Example:
    python export/ship_model.py runs/ssrnet_utkface --name ssrnet-utkface \
        --description "SSR-Net(3,3,3) fine-tuned on UTKFace" \
        --command "ssrnet-tf train --config ssrnet_utkface"
"""

import argparse

from ssrnet_tf.export import shipping


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="a finished `ssrnet-tf train` run folder")
    parser.add_argument("--name", required=True, help="registry name, e.g. ssrnet-utkface")
    parser.add_argument("--description", required=True, help="one line for `ssrnet-tf weights`")
    parser.add_argument("--command", required=True, help="the exact command that trained the run (model card)")
    parser.add_argument("--data", help="face folder of the run's split [the run's data.path]")
    parser.add_argument("--calibration-count", type=int, default=1000, help="training faces for int8 calibration [1000]")
    args = parser.parse_args()
    entry = shipping.ship_run(args.run_dir, args.name, args.description, args.command, data_path=args.data,
                               calibration_count=args.calibration_count)
    figures = entry["figures"]
    print(f"{args.name}: test MAE float {figures['float']['mae']:.3f} | int8 {figures['int8']['mae']:.3f} | "
          f"int8 {entry['sizes_kib']['int8']:.0f} KiB, {entry['latency']['p50_ms']:.3f} ms (1 thread)")


if __name__ == "__main__":
    main()
