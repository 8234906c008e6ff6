"""Figures and 3D scenes, all in the course's one colour map (``CLASSES[i].color`` for label ``i``).

The small public API that chapters call:

* ``orthoslices(volume, labels)``: three orthogonal slices with label overlays (matplotlib Figure);
* ``view_slices(patch, labels)``: the paper's XY / YZ / XZ views of one patch side by side;
* ``projections(volume, labels, particles)``: projections along z, y, x (the static stand-in of a scene);
* ``slice_explorer(volume, labels)``: an ipywidgets explorer (axis, slice, label opacity);
* ``tomogram_scene(volume, labels, particles)`` and ``show_scene(scene)``: a k3d 3D scene that renders in
  Jupyter, Colab and the built book (snapshot iframe + static figure);
* ``add_class_legend``, ``label_colormap``, ``label_norm``, ``label_rgba``: the shared colours.

Volumes are ``(Z, Y, X)`` numpy arrays or torch tensors; particles are ``mvgtutor.data.formats.Particle``.
"""

from mvgtutor.viz.colors import add_class_legend, label_colormap, label_norm, label_rgba, legend_handles
from mvgtutor.viz.explorer import slice_explorer
from mvgtutor.viz.scene3d import Scene, offline_widgets, show_scene, snapshot_html, tomogram_scene
from mvgtutor.viz.slices import orthoslices, projections, view_slices

__all__ = [
    "add_class_legend", "label_colormap", "label_norm", "label_rgba", "legend_handles", "slice_explorer",
    "Scene", "offline_widgets", "show_scene", "snapshot_html", "tomogram_scene", "orthoslices", "projections", "view_slices",
]
