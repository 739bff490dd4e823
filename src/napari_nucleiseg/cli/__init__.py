"""The ``nucleiseg`` command line: one sub-module per sub-command, each with ``register(subparsers)``."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings

from ..errors import NucleisegError
from ..memory import OUT_OF_CORE_HINT

SUBCOMMANDS = ["segment", "zoo", "evaluate", "train", "finetune", "batch", "export"]


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(prog="nucleiseg", description="Find every nucleus in microscopy images.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMANDS:
        importlib.import_module(f".{name}_cmd", __name__).register(sub)
    return parser


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"nucleiseg: warning: {message}\n"


def main(argv=None) -> int:
    """Entry point; returns the exit status (errors are one line on stderr, status 1)."""
    args = build_parser().parse_args(argv)
    formatwarning, warnings.formatwarning = warnings.formatwarning, _one_line_warning
    try:
        return int(args.func(args) or 0)
    except (NucleisegError, FileNotFoundError, KeyError, ValueError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"nucleiseg {args.command}: error: {msg}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # the reader of our output left (`nucleiseg zoo | head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
    except OSError as exc:  # a file or folder outside the checked paths
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"nucleiseg {args.command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    except MemoryError:
        print(f"nucleiseg {args.command}: error: out of memory; {OUT_OF_CORE_HINT}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"nucleiseg {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        warnings.formatwarning = formatwarning


if __name__ == "__main__":
    sys.exit(main())
