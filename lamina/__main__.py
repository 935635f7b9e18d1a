"""``python -m lamina``: command-line tools.

    python -m lamina inspect model.lamina            # metadata, layers, parameter counts, compile
    python -m lamina inspect model.lamina --weights  # ... and every tensor: key, shape, dtype, bytes
    python -m lamina inspect weights.safetensors     # a weights file: metadata and tensors

``inspect`` reads only the file's JSON and safetensors header: nothing named in the file is
imported or run (``lamina/saving/inspection.py``). Exit status 0 on success, 2 when the file
cannot be read or is not a valid lamina file (the reason goes to stderr) or the arguments
are wrong.
"""

from __future__ import annotations

import argparse
import sys


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lamina", description="lamina command-line tools.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    inspect = commands.add_parser(
        "inspect", help="show what a saved model or weights file holds, without running its code",
        description="Print the metadata, layers, parameter counts and compile settings of a .lamina "
                    "model file (or the metadata and tensors of a .safetensors weights file), read "
                    "from its JSON and tensor header only: nothing named in the file is imported or run.",
    )
    inspect.add_argument("path", help="a .lamina model file or a .safetensors weights file")
    inspect.add_argument("--weights", action="store_true", help="also list every tensor: key, shape, dtype, bytes")
    return parser


def main(argv=None, stdout=None, stderr=None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    stdout = stdout if stdout is not None else sys.stdout
    stderr = stderr if stderr is not None else sys.stderr
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exit_:  # argparse has printed the usage error (or --help)
        return exit_.code if isinstance(exit_.code, int) else 2
    from lamina.saving.inspection import inspect

    try:
        inspect(args.path, stdout, show_weights=args.weights)
    except (OSError, ValueError) as error:  # FileFormatError is a ValueError
        print(f"python -m lamina inspect: error: {error}", file=stderr)
        return 2
    except Exception as error:  # anything else a malformed file provokes: still no traceback
        print(f"python -m lamina inspect: error: could not inspect {args.path!r} "
              f"({type(error).__name__}: {error})", file=stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
