"""Table 14 for the course's models, beside the paper's numbers.

The paper's Table 14 ("Feature diversity across different views", Sec. 5.3.2) reports, for its trained model:

    view-pair   Cosine Similarity (lower is better)   Feature Diversity (higher is better)
    XY & YZ     0.61                                   0.81
    XY & XZ     0.67                                   0.75
    XZ & YZ     0.74                                   0.73

The measures are eqs. 10-11, computed by ``mvgtutor.model.diversity`` (read its docstring for our reading of
which features are compared and what "normalized" means; the paper does not say).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from mvgtutor.model.diversity import view_diversity

# Table 14 of the paper: {frozenset of two views: (CosSim, FDS)}.
PAPER_TABLE_14: dict[frozenset, tuple[float, float]] = {
    frozenset(("xy", "yz")): (0.61, 0.81),
    frozenset(("xy", "xz")): (0.67, 0.75),
    frozenset(("xz", "yz")): (0.74, 0.73),
}


def diversity_table(models: Mapping[str, nn.Module], x: torch.Tensor, layer: int = -1) -> list[dict]:
    """Eqs. 10-11 for every pair of views of every model on the batch ``x (B, 1, S, S, S)``: one row per pair,
    ``{"pair": (v1, v2), "paper": (CosSim, FDS) or None, <model name>: {"cos_sim", "fds"}, ...}``."""
    measured = {name: view_diversity(model, x, layer) for name, model in models.items()}
    pairs = list(next(iter(measured.values())))
    return [{"pair": pair, "paper": PAPER_TABLE_14.get(frozenset(pair)),
             **{name: values[pair] for name, values in measured.items()}} for pair in pairs]


def format_diversity_table(rows: list[dict]) -> str:
    """The rows of ``diversity_table`` as text: the paper's CosSim / FDS, then each model's."""
    names = [key for key in rows[0] if key not in ("pair", "paper")]
    header = f"{'view pair':<10} {'paper (Table 14)':>17}" + "".join(f" {name:>22}" for name in names)
    lines = [header, f"{'':<10} {'CosSim   FDS':>17}" + "".join(f" {'CosSim   FDS':>22}" for _ in names)]
    for row in rows:
        paper = row["paper"]
        line = f"{' & '.join(v.upper() for v in row['pair']):<10} "
        line += f"{paper[0]:>8.2f} {paper[1]:>8.2f}" if paper else f"{'-':>8} {'-':>8}"
        line += "".join(f" {row[name]['cos_sim']:>13.2f} {row[name]['fds']:>8.2f}" for name in names)
        lines.append(line)
    return "\n".join(lines)
