"""Command line: ``python -m deconv3d demo | apply | inspect`` (also ``deconv3d ...``)."""

from __future__ import annotations

import argparse
import sys

from . import cli_models


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m deconv3d",
                                     description="Keras-exact Conv3DTranspose for NumPy arrays.")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run the seed example on random data, timed and "
                                            "checked against a NumPy reference")
    demo.add_argument("--threads", type=int, default=None,
                      help="OpenMP threads (default: OpenMP's, i.e. OMP_NUM_THREADS or all cores)")
    demo.add_argument("--repeats", type=int, default=5, help="timed calls (default 5)")
    cli_models.add_commands(commands)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        from . import demo
        return demo.main(args.threads, max(1, args.repeats))
    if args.command in cli_models.COMMANDS:
        return cli_models.run(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
