"""Data: the simulator, the real file formats, patches and views."""
