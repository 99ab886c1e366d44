"""Errors a user can act on: each names the file or config key, what is wrong, and the fix."""

import errno

#: errno values of a write the file system refused for want of room (disk full, quota, file size limit)
NO_ROOM = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def printable(text: str) -> str:
    """``text`` safe for a terminal and a log: each control character (escape sequences, carriage returns, ...)
    shown as its escape (``\\x1b``), lines kept. Text from a file a stranger made reaches the screen only so."""
    return "\n".join("".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in line)
                     for line in text.split("\n"))


class MrisrError(Exception):
    """Base class; the CLI prints these without a traceback and exits non-zero."""


class InputError(MrisrError):
    """An input file is missing, unreadable or not what the stage needs."""

    def __init__(self, path, problem: str, fix: str):
        self.path = str(path)
        super().__init__(f"{self.path}: {problem}. Fix: {fix}")


class OutputError(InputError):
    """An output file could not be written (a full disk, a quota)."""


class ConfigError(MrisrError):
    """A config key is unknown, mistyped or out of range."""

    def __init__(self, key: str, problem: str, fix: str):
        self.key = key
        super().__init__(f"config key '{key}': {problem}. Fix: {fix}")
