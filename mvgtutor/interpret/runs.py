"""The models chapter 12 looks into: chapter 7's run and its graph ablations, each from the run cache.

Every entry is ``mvgtutor.train.runs.trained_run`` with the profile's settings and one field changed,
``ModelConfig.graph_method``: the run is loaded when it was trained before (by chapter 7, by a reference run in
``runs_root()``, or by an earlier reading of chapter 12) and trained now otherwise, so a fresh machine pays for the
training once. The k-means entry is chapter 7's run itself (the same settings, hence the same cache entry).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import torch

from mvgtutor.config import Profile
from mvgtutor.errors import ConfigError
from mvgtutor.model.graph import GRAPH_METHODS
from mvgtutor.train.runs import Run, trained_run

# What each graph_method is called in the figures; the paper's names (Fig. 10 "w/o graph", Fig. 11 "spectral
# clustering" and "MinCutPool").
GRAPH_NAMES: dict[str, str] = {"kmeans": "k-means (ours, full)", "none": "no graph", "spectral": "spectral",
                               "mincut": "MinCutPool"}


def graph_ablation_runs(profile: Profile, data_dir: str | os.PathLike,
                        methods: Sequence[str] = ("kmeans", "none", "spectral", "mincut"), *,
                        device: torch.device | str | None = None, progress: bool = False) -> dict[str, Run]:
    """``{figure name: Run}``, one trained model per ``graph_method`` in ``methods``, in that order, each with
    the profile's settings otherwise (loaded from the run cache, else trained now)."""
    unknown = [m for m in methods if m not in GRAPH_METHODS]
    if unknown or not methods:
        raise ConfigError(f"methods={tuple(methods)}: choose among {', '.join(GRAPH_METHODS)}")
    return {GRAPH_NAMES[method]: trained_run(profile, data_dir, device=device, progress=progress,
                                             model_config=dataclasses.replace(profile.model, graph_method=method))
            for method in methods}
