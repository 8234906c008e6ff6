"""Book tooling: which notebooks the table of contents lists, and derived build configurations.

``_config.yml`` is the single source of the book's settings. The check build (no execution) and the
instructor edition (solutions shown) are written from it, never copied by hand::

    python -m mvgtutor.book chapters                          # the .ipynb chapters of _toc.yml, in order
    python -m mvgtutor.book config --execute off --out F.yml  # _config.yml with execution switched off
    python -m mvgtutor.book config --solutions show --out F.yml
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from mvgtutor.paths import atomic_write

ROOT = Path(__file__).resolve().parent.parent


def toc_files(root: Path = ROOT) -> list[str]:
    """Every ``file:`` entry of ``_toc.yml`` (root first), as written there (no extension)."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc.get("parts", toc.get("chapters", [])))
    return files


def chapter_notebooks(root: Path = ROOT) -> list[Path]:
    """The notebooks (``.ipynb``) that ``_toc.yml`` lists, in book order, relative to ``root``."""
    return [Path(f + ".ipynb") for f in toc_files(root) if (root / (f + ".ipynb")).is_file()]


def derived_config(execute: str = "cache", solutions: str = "hide", root: Path = ROOT) -> dict:
    """``_config.yml`` with the execution mode (``cache`` | ``off`` | ``force``) and solutions (``hide`` | ``show``)."""
    config = yaml.safe_load((root / "_config.yml").read_text())
    config["execute"]["execute_notebooks"] = execute
    config["sphinx"]["config"]["hide_solutions"] = solutions == "hide"
    # Paths in the derived file are resolved from the book's root, as in the original.
    config["bibtex_bibfiles"] = [str(root / b) for b in config.get("bibtex_bibfiles", [])]
    return config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mvgtutor.book", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("chapters", help="print the .ipynb chapters of _toc.yml, one per line")
    cfg = sub.add_parser("config", help="write a derived _config.yml")
    cfg.add_argument("--execute", choices=["cache", "off", "force"], default="cache")
    cfg.add_argument("--solutions", choices=["hide", "show"], default="hide")
    cfg.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "chapters":
        print("\n".join(str(p) for p in chapter_notebooks()))
    else:
        with atomic_write(args.out, "w") as handle:
            yaml.safe_dump(derived_config(args.execute, args.solutions), handle, sort_keys=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
