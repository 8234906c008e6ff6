"""``python -m mvgtutor ...``: see ``mvgtutor.cli``."""

from mvgtutor.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
