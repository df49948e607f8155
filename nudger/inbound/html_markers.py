"""How mail clients mark quoted history and signatures in HTML replies (pure table + one classifier).

`role(tag, attrs)` tells the HTML-to-text converter what an element is:

- Gmail: ``blockquote.gmail_quote`` and ``.gmail_attr`` (the "On … wrote:" line) are history;
  ``div.gmail_quote`` / ``gmail_extra`` are only containers, so answers typed between quotes stay;
  signature ``.gmail_signature`` (or ``data-smartmail="gmail_signature"``).
- Outlook web/new/mobile: ``#divRplyFwdMsg``, ``#appendonsend``, ``hr#stopSpelling``,
  ``#mail-editor-reference-message-container``, ``.OutlookMessageHeader`` (stop); signatures
  ``#Signature``, ``#ms-outlook-mobile-signature``.
- Outlook desktop: the header box styled ``border-top:solid #E1E1E1`` (or ``#B5C4DF``); Outlook for Mac
  ``#OLK_SRC_BODY_SECTION`` (stop).
- Apple Mail: ``blockquote[type=cite]``; ``#AppleMailSignature`` only when all it holds is an app footer
  (iOS sometimes puts the typed reply inside it).
- Thunderbird: ``.moz-cite-prefix`` and ``blockquote[type=cite]``; signature ``.moz-signature``.
- Yahoo: ``.yahoo_quoted``; signature ``#ymail_android_signature``.
- ProtonMail: ``.protonmail_quote``; signature ``.protonmail_signature_block``.
- Zimbra: ``hr#zwchr`` and ``[data-marker=__DIVIDER__]`` (stop), ``[data-marker=__QUOTED_TEXT__]``,
  ``__HEADERS__``, ``__SIG_PRE__``.
- GMX / Web.de ``[name=quote]``; Spark ``[name=messageReplySection]`` and its signature section;
  Samsung Email ``#composer_signature`` (only if it holds just an app footer).
- Zoho ``.zmail_extra``, Tutanota ``.tutanota_quote``, Mailspring ``.gmail_quote_attribution``.

OWA prefixes copied markup with ``x_`` (``x_divRplyFwdMsg``, ``x_gmail_quote``); the prefix is ignored.
*Stop* means everything from that element to the end of the document is history; *skip* drops the
element's subtree only.
"""

from __future__ import annotations

from enum import IntEnum

Attrs = list[tuple[str, str | None]]


class Role(IntEnum):
    PLAIN = 0  # an ordinary element
    SKIP = 1  # quoted history or a signature: drop this subtree
    STOP = 2  # quoted history from here to the end of the document
    FOOTER = 3  # drop this subtree if all it says is an app footer ("Sent from my iPhone")


_SKIP_CLASSES = frozenset(
    {
        "gmail_attr",
        "gmail_quote_attribution",
        "gmail_signature",
        "gmail_signature_prefix",
        "yahoo_quoted",
        "protonmail_quote",
        "protonmail_signature_block",
        "moz-cite-prefix",
        "moz-signature",
        "zmail_extra",
        "zmail_extra_hr",
        "tutanota_quote",
    }
)
_BLOCKQUOTE_CLASSES = frozenset({"gmail_quote", "gmail_quote_container"})
_SKIP_IDS = frozenset({"signature", "ms-outlook-mobile-signature", "ymail_android_signature"})
_SKIP_MARKERS = frozenset({"__quoted_text__", "__headers__", "__sig_pre__", "__sig_post__"})
_STOP_IDS = frozenset(
    {
        "divrplyfwdmsg",
        "appendonsend",
        "olk_src_body_section",
        "mail-editor-reference-message-container",
        "zwchr",
    }
)
_STOP_CLASSES = frozenset({"outlookmessageheader"})
_STOP_MARKERS = frozenset({"__divider__"})
_FOOTER_IDS = frozenset({"applemailsignature", "composer_signature"})
_SKIP_NAMES = frozenset({"quote", "quoted-content", "messagereplysection", "messagesignaturesection"})
_OUTLOOK_BOX_STYLES = ("border-top:solid#e1e1e1", "border-top:solid#b5c4df")


def attr(attrs: Attrs, name: str) -> str:
    """The value of attribute `name` ("" if absent)."""
    for key, value in attrs:
        if key == name:
            return (value or "").strip()
    return ""


def _unprefixed(value: str) -> str:
    return value[2:] if value.startswith("x_") else value


def role(tag: str, attrs: Attrs) -> Role:
    """What an element with this tag and these attributes is, in a reply."""
    if not attrs:
        return Role.PLAIN
    ident = _unprefixed(attr(attrs, "id").lower())
    classes = {_unprefixed(name) for name in attr(attrs, "class").lower().split()}
    marker = attr(attrs, "data-marker").lower()
    if ident in _STOP_IDS or (tag == "hr" and ident == "stopspelling") or classes & _STOP_CLASSES:
        return Role.STOP
    if marker in _STOP_MARKERS or (tag == "div" and _is_outlook_header_box(attrs)):
        return Role.STOP
    if classes & _SKIP_CLASSES or ident in _SKIP_IDS or marker in _SKIP_MARKERS:
        return Role.SKIP
    if attr(attrs, "name").lower() in _SKIP_NAMES or any(name.endswith("yahoo_quoted") for name in classes):
        return Role.SKIP  # GMX / Web.de, Spark; Yahoo's nested "ydp…yahoo_quoted"
    if attr(attrs, "data-smartmail") == "gmail_signature":
        return Role.SKIP
    if tag == "blockquote" and (classes & _BLOCKQUOTE_CLASSES or attr(attrs, "type").lower() == "cite"):
        return Role.SKIP
    if ident in _FOOTER_IDS:
        return Role.FOOTER
    return Role.PLAIN


def _is_outlook_header_box(attrs: Attrs) -> bool:
    style = attr(attrs, "style").lower().replace(" ", "")
    return any(marker in style for marker in _OUTLOOK_BOX_STYLES)
