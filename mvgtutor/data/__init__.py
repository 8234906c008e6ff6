"""Data: the class table, the real file formats, patches and views (the simulator is `mvgtutor.simulate`)."""


def __getattr__(name: str):
    """``mvgtutor.data.default_dataset`` without importing the simulator until it is used."""
    if name == "default_dataset":
        from mvgtutor.data.default import default_dataset

        return default_dataset
    raise AttributeError(f"module 'mvgtutor.data' has no attribute {name!r}")
