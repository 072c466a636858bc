"""The errors of `mlops-lab backup` and `restore`, each with a message that says what to do."""

from __future__ import annotations


class BackupError(RuntimeError):
    """A backup or restore could not be done; the message says why and what to do."""


class OutOfScopeError(BackupError):
    """Part of the state lives in a server database or store: back it up with that system's tools."""


class CorruptBackupError(BackupError):
    """The archive is unreadable, incomplete, not signed with our key or does not match its manifest."""


class StateExistsError(BackupError):
    """The target already holds state and ``force`` was not given."""


class ServicesRunningError(BackupError):
    """A service holds the state folder's lease (`core.state_lease`): stop it before restoring."""
