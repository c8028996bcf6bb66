"""Photo -> ages on one thread: LiteRT MTCNN vs the mtcnn package (see ``ssrnet_tf.faces.backend_benchmark``).

Same faces? (box IoU, landmark and age gaps), detect + align + int8 age
latency per 640x480 frame, and frames per second on a video.

Example:
    python export/benchmark_faces.py --data-dir ../shared/data/utkface/UTKFace
    python export/benchmark_faces.py --weights imdb --weights-dir ../shared/reference/ssrnet
"""

import argparse
import pathlib
import shlex
import sys

from ssrnet_tf.faces import backend_benchmark

SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=pathlib.Path, default=SHARED / "data" / "utkface" / "UTKFace")
    parser.add_argument("--weights-dir", type=pathlib.Path, default=SHARED / "reference" / "ssrnet")
    parser.add_argument("--model", default="ssrnet-utkface",
                        help="shipped model: its int8 file is timed, its .keras gives float ages [ssrnet-utkface]")
    parser.add_argument("--weights", help="instead of --model: published SSR-Net weights (imdb, ...), run as int8")
    parser.add_argument("--singles", type=int, default=60, help="one-face frames [60]")
    parser.add_argument("--groups", type=int, default=15, help="four-face group photos [15]")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per frame / video passes [5]")
    parser.add_argument("--video-frames", type=int, default=150, help="[150]")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=pathlib.Path, default=pathlib.Path("runs/bench/faces.json"))
    parser.add_argument("--skip-comparison", action="store_true", help="only the timings")
    parser.add_argument("--write-frames", type=pathlib.Path, metavar="DIR",
                        help="only write the one-face frames as JPEG files into DIR (e.g. for ssrnet-tf bench --pipeline)")
    args = parser.parse_args(argv)
    if args.write_frames:
        backend_benchmark.write_frames(args.data_dir, args.write_frames, args.singles, args.seed)
        return 0
    command = shlex.join([sys.executable, *sys.argv])
    print(f"# command: {command}")
    backend_benchmark.run_backend_benchmark(
        args.data_dir, args.output, model=args.model, weights=args.weights, weights_dir=args.weights_dir, singles=args.singles,
        groups=args.groups, repeats=args.repeats, video_frames=args.video_frames, seed=args.seed,
        compare=not args.skip_comparison, command=command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
