"""Particle picking: from a segmentation to particle centres, matching, the field's three scores, file formats.

* ``picks``: ``Picks``, a table of centres with class, tomogram and score, in a stated unit (voxel / angstrom);
* ``centres``: ``picks_from_labels`` (connected components, the default) and ``picks_from_probabilities``
  (local maxima, the alternative);
* ``matching``: ``match_points``, one KD-tree matching routine with the rule as a parameter;
* ``scores``: ``paper_scores`` (P / R / F1), ``czii_score`` (F-beta, beta 4), ``shrec_scores`` (SHREC 2021);
* ``io``, ``copick_project``: SHREC lists, text, CSV, the CZII submission CSV, STAR, copick projects;
* ``rescale``: MRC tomograms at any voxel size, Fourier-resampled to the model's 1 nm;
* ``evaluate``: the three scores of one simulated tomogram at once.
"""

from mvgtutor.picking.centres import min_sizes_from_diameters, picks_from_labels, picks_from_probabilities
from mvgtutor.picking.evaluate import score_three_ways, summary_rows
from mvgtutor.picking.io import read_picks, write_picks
from mvgtutor.picking.matching import Match, match_points
from mvgtutor.picking.picks import Picks, concat
from mvgtutor.picking.rescale import read_mrc_at, rescale_volume
from mvgtutor.picking.scores import (CZII_RADII_ANGSTROM, CZII_WEIGHTS, Counts, PickingScores, czii_score,
                                     paper_scores, shrec_scores)

__all__ = ["CZII_RADII_ANGSTROM", "CZII_WEIGHTS", "Counts", "Match", "PickingScores", "Picks", "concat",
           "czii_score", "match_points", "min_sizes_from_diameters", "paper_scores", "picks_from_labels",
           "picks_from_probabilities", "read_mrc_at", "read_picks", "rescale_volume", "score_three_ways",
           "shrec_scores", "summary_rows", "write_picks"]
