"""nudger's exception tree. Foreign exceptions are translated at the edges and chained.

    NudgerError
    ├── ConfigError            (nudger.config) invalid settings; lists every problem
    ├── TransientError         retry later with backoff
    │   ├── TransientSendError     SMTP 4xx, connection refused/dropped, timeouts
    │   ├── ImapError              IMAP connection/protocol trouble
    │   └── StoreUnavailable       the database could not be reached
    └── PermanentError         retrying cannot help
        └── PermanentSendError     SMTP 5xx; `recipient_specific` tells 5.1.x from policy (5.7.x)

"Not sent on purpose" (suppressed person, expired question) is an outcome with a reason, not an
exception.
"""

from __future__ import annotations


class NudgerError(Exception):
    """Base of every error nudger raises on purpose."""


class TransientError(NudgerError):
    """Worth retrying later."""


class PermanentError(NudgerError):
    """Retrying will not help."""


class TransientSendError(TransientError):
    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class PermanentSendError(PermanentError):
    def __init__(self, message: str, code: int, enhanced: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.enhanced = enhanced

    @property
    def recipient_specific(self) -> bool:
        """5.1.x (bad mailbox / address) means this recipient is unreachable; 5.7.x is policy."""
        if self.enhanced:
            return self.enhanced.startswith("5.1.")
        return self.code in (550, 551, 553) and not self.enhanced


class ImapError(TransientError):
    """IMAP connection dropped, refused, timed out, or the server said NO/BAD."""


class StoreUnavailable(TransientError):
    """The database could not be reached or was locked for too long."""
