"""The error hierarchy, named for what the caller should do about each error.

    LedgerError                   anything runai-ledger raises on purpose
    ├── ConfigError               bad settings or arguments: fix the invocation
    ├── AuthError                 credentials rejected: fix the client id/secret (never retried blindly)
    ├── ApiError                  the control plane answered something we cannot use
    │   ├── RetriableApiError     429, 5xx, transport trouble: retried with backoff
    │   │   └── RetriesExhaustedError   still failing after the bounded attempts: try later
    │   └── FatalApiError         a 4xx we did not expect: the request is wrong, retrying won't help
    │       └── ApiContractError  the answer breaks the API's contract (loop, non-JSON, lying total)
    ├── StateError                the stored state cannot be used as it is
    │   ├── LockHeldError         another writer holds the stream: wait for it or stop it
    │   └── ConcurrentCommitError another writer committed first: re-read and retry (or rerun)
    └── StorageError              the lake cannot be written (disk full, read-only): fix storage

Every message is safe to print: no secret or bearer token is ever put into one. Callers that wrap
third-party exceptions do so at the boundary with ``raise OurError(...) from exc`` after making
sure the third-party text carries no credentials.
"""

from __future__ import annotations


class LedgerError(Exception):
    """Base of every error runai-ledger raises on purpose."""


class ConfigError(LedgerError):
    """Settings or arguments are missing or invalid; the message names which."""


class AuthError(LedgerError):
    """The token endpoint rejected our credentials, or a fresh token was rejected too."""


class ApiError(LedgerError):
    """The control plane answered something we cannot use."""

    def __init__(self, message: str, *, status: int | None = None, url: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.url = url


class RetriableApiError(ApiError):
    """A transient failure (429, 5xx, timeout, reset): worth another attempt after a pause."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        url: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, url=url)
        self.retry_after = retry_after


class RetriesExhaustedError(RetriableApiError):
    """The bounded number of attempts ran out; the last failure is chained as the cause."""


class FatalApiError(ApiError):
    """A response that retrying cannot fix (400, 403, 404, ...)."""


class ApiContractError(FatalApiError):
    """The server broke the API's contract: non-JSON body, a paging loop, a total that lies."""


class StateError(LedgerError):
    """Stored state (watermark, lock, run records) is unreadable or inconsistent."""


class LockHeldError(StateError):
    """Another sync of the same stream holds the writer lock."""


class ConcurrentCommitError(StateError):
    """Another writer committed to the same table first; what this one decided may be stale."""


class StorageError(LedgerError):
    """The lake could not be written or read (disk full, read-only, missing permissions)."""
