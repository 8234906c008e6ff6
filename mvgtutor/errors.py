"""The course's exceptions. Each message is one line that says what was wrong and what to do."""


class MvgtutorError(Exception):
    """Base class of every error mvgtutor raises on purpose (the CLI prints these without a traceback)."""


class ProfileError(MvgtutorError, ValueError):
    """An unknown profile name, or the paper profile (old name gpu) on a machine without a GPU."""


class DataError(MvgtutorError, ValueError):
    """A missing, truncated or inconsistent data file or folder; the message names the file."""


class ConfigError(MvgtutorError, ValueError):
    """An option value that the code does not know (the message lists the ones it does)."""


def check_choice(option: str, value, choices) -> None:
    """Raise ``ConfigError`` ("unknown OPTION VALUE: use one of ...") unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ConfigError(f"unknown {option} {value!r}: use one of {', '.join(map(str, choices))}")
