"""Every error the partner client raises on purpose.

Three families, which the command line maps to its exit codes: ``ConfigError`` (bad
arguments or local state), ``ServerError`` (the server could not be reached or answered an
HTTP error) and ``SyncRefused`` (something served does not verify; nothing local changed).
"""

from __future__ import annotations


class SyncError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(SyncError):
    """Bad arguments, missing or inconsistent local state."""


class ServerError(SyncError):
    """The server could not be reached or answered with an HTTP error."""

    def __init__(self, message: str, *, status: int | None = None, url: str | None = None):
        super().__init__(message)
        self.status = status
        self.url = url


class AuthError(ServerError):
    """HTTP 401/403: the token is wrong or lacks the permission."""


class NotFound(ServerError):
    """HTTP 404: the list is unknown or not granted to this token."""


class SyncRefused(SyncError):
    """Something the server served does not verify; the local state was left unchanged.

    ``index`` is the log index of the offending entry when there is one.
    """

    def __init__(self, message: str, *, index: int | None = None):
        super().__init__(message)
        self.index = index


class TamperedEntry(SyncRefused):
    """An entry whose leaf bytes are not canonical or disagree with its JSON fields."""


class BadRemove(TamperedEntry):
    """A ``remove`` that names no earlier, still published ``add``."""

    @classmethod
    def not_a_live_add(cls, index: int, removes: int) -> BadRemove:
        """The refusal of entry ``index`` whose ``removes`` is not a live add of the log.

        Only the store knows which adds are still live (a partner's SQLite file, a peer bank's
        database); each store raises this one error.
        """
        return cls(
            f"entry {index} removes entry {removes}, which is not a published add (it is a "
            "remove, or an add that was already removed)",
            index=index,
        )


class MissingOrReorderedEntries(SyncRefused):
    """Entries out of index order: missing, duplicated or reordered."""


class UnknownKey(SyncRefused):
    """A checkpoint with no signature by any pinned verifier key."""


class BadSignature(SyncRefused):
    """A checkpoint whose signature by a pinned key fails, or a malformed signed note."""


class OriginMismatch(SyncRefused):
    """A checkpoint for another log than the one this state directory follows."""


class Rollback(SyncRefused):
    """A checkpoint smaller than the one verified before."""


class Fork(SyncRefused):
    """A checkpoint that is not an extension of the one verified before."""


class RootMismatch(SyncRefused):
    """The root recomputed from the entries differs from the checkpoint's root."""


class MalformedResponse(SyncRefused):
    """A response that is not in the wire format (bad JSON, bad base64, bad ``next``...)."""
