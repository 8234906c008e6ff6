"""Looking inside a trained MVGFormer (chapter 12): what the encoder activates, how the views differ, what the
graph gathers and where a token attends.

* ``heatmaps``: the paper's Figs. 10-11, the channel-wise L2 norm of the encoder's output per voxel, in [0, 1];
* ``graph``: the learned visual graph (which voxels each of the K nodes gathers) and attention maps, on the
  canonical voxel grid of a patch;
* ``diversity``: Table 14 (CosSim, FDS between the views' features) for several models, beside the paper's;
* ``patch``: one patch of a tomogram with everything the model makes of it (the explorer's data);
* ``runs``: chapter 7's run and its graph ablations, from the run cache (trained on first use).

Every function takes a model and a batch ``x (B, 1, S, S, S)`` on the model's device, runs in eval mode without
gradients, and leaves the model in the mode it was in.
"""

from mvgtutor.interpret.diversity import PAPER_TABLE_14, diversity_table, format_diversity_table
from mvgtutor.interpret.graph import attention_volume, cluster_volume, token_index
from mvgtutor.interpret.heatmaps import (activation_by_region, activation_heatmap, boundary_mask, normalize_unit,
                                         token_norms)
from mvgtutor.interpret.patch import PatchInsight, inspect_patch, nearest_foreground, patch_corner
from mvgtutor.interpret.runs import GRAPH_NAMES, graph_ablation_runs

__all__ = [
    "PAPER_TABLE_14", "diversity_table", "format_diversity_table", "attention_volume", "cluster_volume",
    "token_index", "activation_by_region", "activation_heatmap", "boundary_mask", "normalize_unit", "token_norms",
    "PatchInsight", "inspect_patch", "nearest_foreground", "patch_corner", "GRAPH_NAMES", "graph_ablation_runs",
]
