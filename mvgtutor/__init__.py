"""mvgtutor: the library that the course book builds, chapter by chapter, to rebuild MVGFormer.

Chapters import from the sub-packages (``mvgtutor.data``, ``mvgtutor.model``, ...); this top level only holds
what every chapter's first cell needs.
"""

from mvgtutor.config import get_profile
from mvgtutor.notebook import setup_notebook

__version__ = "0.1.0"
__all__ = ["get_profile", "setup_notebook", "__version__"]
