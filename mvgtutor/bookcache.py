"""Fill the book's execution cache with several notebooks at a time, before ``jupyter-book build`` reads it.

Jupyter Book executes the chapters one after the other. On CI's two cores, and once ``make test``'s nbval run
has left every chapter's training in the run cache, the chapters are independent, so two kernels halve that wall
time. This module does exactly what MyST-NB's ``cache`` mode does for one notebook (``myst_nb.core.execute.cache``:
execute it with jupyter-cache's ``single_nb_execution`` in the notebook's folder, then store the executed notebook
in the cache), for ``jobs`` notebooks at once; the build then finds every chapter in the cache (the match is on the
code cells and the kernel, as in MyST-NB) and executes none. A notebook that fails is left out of the cache, so
the build executes it again and reports the error in its own words::

    python -m mvgtutor.book fill-cache --cache _build/.jupyter_cache --jobs 2
"""

from __future__ import annotations

import concurrent.futures
import os
import time
from pathlib import Path


def _execute(path: str, timeout: int) -> tuple[str, object, str | None, float]:
    """Execute one notebook in its own folder (a worker process): ``(path, executed notebook, error, seconds)``."""
    import nbformat
    from jupyter_cache.executors.utils import single_nb_execution

    notebook = nbformat.read(path, as_version=4)
    started = time.perf_counter()
    result = single_nb_execution(notebook, cwd=str(Path(path).parent), timeout=timeout, allow_errors=False,
                                 meta_override=True)
    error = None if result.err is None else f"{type(result.err).__name__}: {result.err}"
    return path, notebook, error, time.perf_counter() - started


def fill_execution_cache(notebooks: list[Path], cache_dir: str | os.PathLike, jobs: int = 2,
                         timeout: int = 1800, report=print) -> dict[str, str | None]:
    """Execute every notebook of ``notebooks`` that the jupyter-cache at ``cache_dir`` does not hold yet, ``jobs`` at
    a time, and store each success there. Returns ``{path: None (cached now or before) | error message}``."""
    import nbformat
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    if jobs < 1:
        raise ValueError(f"jobs={jobs}: run at least one notebook at a time")
    cache = get_cache(str(cache_dir))
    outcome: dict[str, str | None] = {}
    pending = []
    for path in notebooks:
        try:
            cache.match_cache_notebook(nbformat.read(path, as_version=4))
            outcome[str(path)] = None  # already executed with these code cells
        except KeyError:
            pending.append(str(path))
    report(f"execution cache {cache_dir}: {len(notebooks) - len(pending)} of {len(notebooks)} notebooks cached; "
           f"executing {len(pending)}, {jobs} at a time")
    with concurrent.futures.ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(_execute, path, timeout) for path in pending]
        for future in concurrent.futures.as_completed(futures):
            path, notebook, error, seconds = future.result()
            outcome[path] = error
            if error is not None:
                report(f"  {path}: failed after {seconds:.0f} s ({error}); left to the book build")
                continue
            record = cache.add_nb_to_project(path)
            cache.cache_notebook_bundle(CacheBundleIn(notebook, record.uri, data={"execution_seconds": seconds}),
                                        check_validity=False, overwrite=True)
            report(f"  {path}: executed in {seconds:.0f} s, cached")
    return outcome
