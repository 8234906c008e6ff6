"""Is a dataset still what was written? Per-file sizes and SHA-256 hashes recorded in ``dataset.json``.

``simulate_dataset`` records, for every file of every ``model_N`` folder, its size, its SHA-256 and its
modification time (``file_records``). Readers check them (``verify_tomogram``, ``verify_dataset``): a file whose
size or content changed since it was written, a missing file, or a ``model_N`` folder the manifest does not list
(a left-over of another dataset) is a ``DataError``. Hashing is skipped for a file whose size and modification
time are still the recorded ones (the common case: a check costs a ``stat``); a copied file (new mtime) is hashed
once per process. Datasets without a manifest (real SHREC or CZII data) are not checked.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

from mvgtutor.errors import DataError

MANIFEST = "dataset.json"
FILES_KEY = "files"  # manifest key: {"model_0/reconstruction.mrc": {"bytes", "sha256", "mtime_ns"}, ...}
_CHUNK_BYTES = 1 << 20
_hash_cache: dict[tuple, str] = {}  # (path, size, mtime_ns, inode) -> sha256, for this process


def sha256_file(path: str | os.PathLike) -> str:
    """The hex SHA-256 of the file at ``path`` (read in 1 MiB chunks; cached per size, mtime and inode)."""
    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino)
    if key not in _hash_cache:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(_CHUNK_BYTES), b""):
                digest.update(block)
        _hash_cache[key] = digest.hexdigest()
    return _hash_cache[key]


def file_records(dataset_dir: str | os.PathLike) -> dict[str, dict]:
    """``{"model_N/FILE": {"bytes", "sha256", "mtime_ns"}}`` for every file of every ``model_N`` folder."""
    dataset_dir = Path(dataset_dir)
    records = {}
    for folder in sorted(_model_folders(dataset_dir)):
        for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
            stat = path.stat()
            records[f"{folder.name}/{path.name}"] = {"bytes": stat.st_size, "sha256": sha256_file(path),
                                                     "mtime_ns": stat.st_mtime_ns}
    return records


def read_manifest(dataset_dir: str | os.PathLike) -> dict | None:
    """The parsed ``dataset.json`` of ``dataset_dir``, None when there is none; unreadable is a ``DataError``."""
    path = Path(dataset_dir) / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: not valid JSON ({error}); re-simulate the dataset or delete the file") from None
    if not isinstance(manifest, dict):
        raise DataError(f"{path}: expected a JSON object; re-simulate the dataset or delete the file")
    return manifest


def verify_tomogram(folder: str | os.PathLike, hashes: bool = True) -> None:
    """Check the files of one ``model_N`` folder against its dataset's manifest (when it records files)."""
    folder = Path(folder)
    manifest = read_manifest(folder.parent)
    records = (manifest or {}).get(FILES_KEY)
    if not records:
        return
    mine = {name: record for name, record in records.items() if name.split("/", 1)[0] == folder.name}
    if not mine:
        raise DataError(f"{folder}: not listed in {folder.parent / MANIFEST} (a left-over of another dataset?); "
                        f"move it out or re-simulate the dataset")
    for name, record in mine.items():
        _verify_file(folder.parent, name, record, hashes)


def verify_dataset(dataset_dir: str | os.PathLike, hashes: bool = True) -> dict | None:
    """Check every recorded file of ``dataset_dir`` and that no unlisted ``model_N`` folder sits beside them.

    Returns the manifest (None for a folder without one, which is not checked). ``hashes=False`` checks
    sizes only (instant, for ``info``).
    """
    dataset_dir = Path(dataset_dir)
    manifest = read_manifest(dataset_dir)
    records = (manifest or {}).get(FILES_KEY)
    if not records:
        return manifest
    listed = {name.split("/", 1)[0] for name in records}
    extra = sorted(f.name for f in _model_folders(dataset_dir) if f.name not in listed)
    if extra:
        raise DataError(f"{dataset_dir}: {', '.join(extra)} not listed in {MANIFEST} (left over from another "
                        f"dataset?); move them out or re-simulate into an empty folder")
    for name, record in records.items():
        _verify_file(dataset_dir, name, record, hashes)
    return manifest


def _verify_file(dataset_dir: Path, name: str, record: dict, hashes: bool) -> None:
    path = dataset_dir / name
    advice = "re-simulate the dataset (or delete dataset.json to use the folder as plain, unchecked data)"
    if not path.is_file():
        raise DataError(f"{path}: missing, but {MANIFEST} lists it; {advice}")
    stat = path.stat()
    if stat.st_size != record.get("bytes"):
        raise DataError(f"{path}: {stat.st_size} bytes, {MANIFEST} recorded {record.get('bytes')}: the file "
                        f"changed since it was written; {advice}")
    if hashes and stat.st_mtime_ns != record.get("mtime_ns") and sha256_file(path) != record.get("sha256"):
        raise DataError(f"{path}: its content changed since it was written (SHA-256 differs from "
                        f"{MANIFEST}); {advice}")


def _model_folders(dataset_dir: Path) -> list[Path]:
    return [p for p in dataset_dir.iterdir() if p.is_dir() and re.fullmatch(r"model_\d+", p.name)]
