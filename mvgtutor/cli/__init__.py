"""The command line: ``python -m mvgtutor COMMAND --help``.

A thin layer over the library. Each command lives in its own module ``mvgtutor.cli.<command>`` that defines
``add_arguments(parser)`` and ``run(args) -> int``; modules are imported only when their command runs, so
``--help`` is instant. Errors the library raises on purpose (``MvgtutorError``) print as one line.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys

from mvgtutor.errors import MvgtutorError

# command -> one-line description (the module is mvgtutor.cli.<command>)
COMMANDS: dict[str, str] = {
    "simulate": "simulate a SHREC-2021-like dataset of tomograms",
    "info": "summarise a dataset folder (tomograms, shapes, voxel size, particles per class)",
    "train": "train a model (MVGFormer or a baseline) and save the run",
    "evaluate": "segment a whole tomogram with a trained run (overlap-tile inference)",
    "score": "compare a predicted label volume with the truth (per-class IoU / Dice)",
    "bench": "measure training and inference speed, memory and FLOPs",
    "pick": "particle centres from a predicted label volume (connected components per class)",
    "score-picks": "score particle picks against the truth (paper P/R/F1, SHREC 2021, CZII F-beta)",
    "export-reference": "turn a finished run into a reference folder (fp16 safetensors weights and a run card)",
    "ablate": "run one of the paper's ablations over seeds, --list them, or --report the results",
}


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line that points to ``--help`` (exit status 2)."""

    def error(self, message: str):
        self.exit(2, f"error: {message}; see `{self.prog} --help`\n")


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one sub-parser per command."""
    parser = _Parser(prog="python -m mvgtutor", description=__doc__.split("\n")[0])
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, help_text in COMMANDS.items():
        subparsers.add_parser(name, help=help_text, description=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: dispatch to ``mvgtutor.cli.<command>.run``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        parser.parse_args(argv)  # prints help / usage error and exits
        return 2
    name = argv[0]
    module = importlib.import_module(f"mvgtutor.cli.{name.replace('-', '_')}")
    sub = _Parser(prog=f"python -m mvgtutor {name}", description=COMMANDS[name])
    module.add_arguments(sub)
    args = sub.parse_args(argv[1:])
    try:
        return int(module.run(args) or 0)
    except MvgtutorError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # the reader of our output went away (`... | head`): nothing left to say
        with contextlib.suppress(OSError, ValueError):  # no second error when Python flushes stdout at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as error:  # the file system said no (permissions, a full disk, a file where a folder goes)
        print(f"error: {os_error_text(error)}", file=sys.stderr)
        return 1
    except MemoryError:
        print(f"error: out of memory in `{name}`; use smaller sizes or a machine with more memory",
              file=sys.stderr)
        return 1


def os_error_text(error: OSError) -> str:
    """One line for an ``OSError``: the file, what the system said, and what to do."""
    reason = error.strerror or str(error)
    where = f"{error.filename}: " if error.filename is not None else ""
    return f"{where}{reason}; check the path, its permissions and the free disk space"
