"""The SHREC-2021-like simulator, one concern a module.

* ``templates``: the proteins' density templates (the real SHREC 2021 structures, vendored in ``structures/``);
* ``scene``: packing proteins, vesicles and gold fiducials into an ice slab (the *grand model* and its labels),
  with the ``dense`` and ``shrec`` presets;
* ``tomography``: tilt angles, projection and back-projection (real-space WBP, Fourier inversion), the wedge;
* ``imaging``: the microscope (ice, structural noise, damage, CTF and envelopes, inelastic loss, detector,
  shot noise);
* ``measure``: per-class contrast of a tomogram;
* ``pipeline``: ``simulate_tomogram``, the whole chain once;
* ``dataset``: ``simulate_dataset``, a folder of tomograms in the SHREC 2021 layout with its manifest.
"""

from mvgtutor.simulate.dataset import MANIFEST, simulate_dataset, tomogram_seed
from mvgtutor.simulate.pipeline import (SIMULATOR_VERSION, SimulatedTomogram, SimulationConfig, image_scene,
                                        make_scene, simulate_tomogram)
from mvgtutor.simulate.scene import SCENE_PRESETS, scene_preset

__all__ = ["MANIFEST", "SCENE_PRESETS", "SIMULATOR_VERSION", "SimulatedTomogram", "SimulationConfig", "image_scene",
           "make_scene", "scene_preset", "simulate_dataset", "simulate_tomogram", "tomogram_seed"]
