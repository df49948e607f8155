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
    def __init__(self, message: str, code: int, enhanced: str = "", *, at_recipient: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.enhanced = enhanced
        self.at_recipient = at_recipient

    @property
    def recipient_specific(self) -> bool:
        """Whether this recipient is unreachable (suppress them) rather than our mail or setup refused.

        5.1.x (bad mailbox / address) blames the recipient wherever it is said; 5.7.x is policy. Without
        an enhanced code, only a refusal *of the recipient* (at RCPT) blames them: a 550 to MAIL FROM or
        after DATA ("rejected as spam") is about our mail, not their address.
        """
        if self.enhanced:
            return self.enhanced.startswith("5.1.")
        return self.at_recipient and self.code in (550, 551, 553)


class ImapError(TransientError):
    """IMAP connection dropped, refused, timed out, or the server said NO/BAD."""


class StoreUnavailable(TransientError):
    """The database could not be reached or was locked for too long."""
