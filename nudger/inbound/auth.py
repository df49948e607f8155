"""Authentication-Results (RFC 8601), read safely (pure).

Only a header whose authserv-id is the one configured as *ours* (the receiving boundary: e.g.
"mx.google.com" for Google Workspace, or your own MTA's name) is trusted; anything else in the header
block may have been written by the sender. The topmost trusted header wins (it was added last, by our
boundary). Without a configured authserv-id the result is always "unknown" (never trusted).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

_DMARC_RE = re.compile(r"(?:^|[;\s])dmarc\s*=\s*([a-z]+)", re.IGNORECASE)
_COMMENT_RE = re.compile(r"\([^()]*\)")


def _authserv_id(value: str) -> str:
    head = _COMMENT_RE.sub(" ", value).split(";", 1)[0].strip()
    return head.split()[0].lower() if head else ""


def dmarc_result(headers: Mapping[str, Sequence[str]], authserv_id: str) -> str:
    """'pass', 'fail', 'none', … from our own boundary's header; 'unknown' when there is none."""
    wanted = authserv_id.strip().lower()
    if not wanted:
        return "unknown"
    for value in headers.get("authentication-results", ()):
        if _authserv_id(value) != wanted:
            continue
        match = _DMARC_RE.search(_COMMENT_RE.sub(" ", value))
        return match.group(1).lower() if match else "none"
    return "unknown"
