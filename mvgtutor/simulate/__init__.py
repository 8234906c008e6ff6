"""The SHREC-2021-like simulator, one concern a module.

* ``templates``: the proteins' density templates;
* ``scene``: packing proteins, vesicles and gold fiducials into an ice slab (the *grand model* and its labels);
* ``tomography``: tilt angles, projection and back-projection, the missing wedge;
* ``imaging``: the microscope (damage, CTF, inelastic loss, detector, shot noise);
* ``pipeline``: ``simulate_tomogram``, the whole chain once;
* ``dataset``: ``simulate_dataset``, a folder of tomograms in the SHREC 2021 layout with its manifest.
"""

from mvgtutor.simulate.dataset import MANIFEST, simulate_dataset, tomogram_seed
from mvgtutor.simulate.pipeline import (SIMULATOR_VERSION, SimulatedTomogram, SimulationConfig, image_scene,
                                        make_scene, simulate_tomogram)

__all__ = ["MANIFEST", "SIMULATOR_VERSION", "SimulatedTomogram", "SimulationConfig", "image_scene", "make_scene",
           "simulate_dataset", "simulate_tomogram", "tomogram_seed"]
