"""HTML replies as each client shapes them → the person's text (html_to_text, then trim).

Also: which body the parser picks (text/plain only when it is a faithful alternative to the HTML).
"""

from __future__ import annotations

import time
from email.message import EmailMessage

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nudger.inbound.html2text import html_to_text, is_faithful_alternative
from nudger.inbound.parse import parse_message
from nudger.inbound.trim import trim

ADDR = "reply+k3v5w7ab2cde@nudger.example"
QUESTION = "What did you learn from a mistake this week?"

GMAIL = (
    '<div dir="ltr">I skipped the load test.<div><br></div><div>Never again.</div></div><br>'
    '<div class="gmail_quote gmail_quote_container"><div dir="ltr" class="gmail_attr">'
    f"On Mon, 10 Mar 2025 at 08:00, Nudger &lt;{ADDR}&gt; wrote:<br></div>"
    f'<blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex">{QUESTION}</blockquote></div>'
)
GMAIL_SIGNATURE = (
    '<div dir="ltr">I skipped the load test.<br clear="all"><br><span class="gmail_signature_prefix">-- '
    '</span><br><div dir="ltr" class="gmail_signature" data-smartmail="gmail_signature">Maria Lopez<br>'
    "Payments</div></div><br>"
    f'<div class="gmail_quote"><blockquote class="gmail_quote">{QUESTION}</blockquote></div>'
)
GMAIL_OLD_EXTRA = (
    '<div dir="ltr">I skipped the load test.</div><div class="gmail_extra"><br>'
    f'<div class="gmail_quote">2025-03-10 8:00 GMT+00:00 Nudger <span dir="ltr">&lt;{ADDR}&gt;</span>:<br>'
    f'<blockquote class="gmail_quote">{QUESTION}</blockquote></div><br></div>'
)
GMAIL_INLINE = (
    '<div dir="ltr"><div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Mon, 10 Mar 2025 at '
    f"08:00, Nudger &lt;{ADDR}&gt; wrote:<br></div>"
    f'<blockquote class="gmail_quote">{QUESTION}</blockquote><div>That estimates are ranges.</div>'
    '<blockquote class="gmail_quote">What will you do differently?</blockquote><div>Give ranges.</div>'
    "</div></div>"
)
GMAIL_INLINE_TEXT_HEADER = (
    '<div dir="ltr"><div class="gmail_quote">On Mon, 10 Mar 2025 at 08:00, Nudger &lt;'
    f'{ADDR}&gt; wrote:<br><blockquote class="gmail_quote">{QUESTION}</blockquote>'
    "<div>That estimates are ranges.</div></div></div>"
)
OUTLOOK_WEB = (
    '<html><head><style>P {margin-top:0;margin-bottom:0;}</style></head><body dir="ltr">'
    '<div class="elementToProof">I skipped the load test.</div><div class="elementToProof"><br></div>'
    '<div class="elementToProof">Priya</div>'
    '<div id="Signature"><div>Priya Raman | Platform | ACME</div></div>'
    '<div id="appendonsend"></div><hr style="display:inline-block;width:98%" tabindex="-1">'
    f'<div id="divRplyFwdMsg" dir="ltr"><b>From:</b> Nudger &lt;{ADDR}&gt;<br><b>Sent:</b> Monday, '
    f"March 10, 2025 8:00 AM<br><b>Subject:</b> {QUESTION}</div><div>{QUESTION}</div></body></html>"
)
OUTLOOK_DESKTOP = (
    '<html xmlns:o="urn:schemas-microsoft-com:office:office"><body lang="EN-GB"><div class="WordSection1">'
    '<p class="MsoNormal">Hi all,<o:p></o:p></p><p class="MsoNormal"><o:p>&nbsp;</o:p></p>'
    '<p class="MsoNormal">I skipped the load test.<o:p></o:p></p>'
    '<p class="MsoNormal">Never again.<o:p></o:p></p><p class="MsoNormal"><o:p>&nbsp;</o:p></p>'
    '<div><div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm">'
    f'<p class="MsoNormal"><b>From:</b> Nudger &lt;{ADDR}&gt;<br><b>Sent:</b> 10 March 2025 08:00</p>'
    f'</div></div><p class="MsoNormal">{QUESTION}</p></div></body></html>'
)
OUTLOOK_MOBILE = (
    '<div dir="auto">I skipped the load test.</div><div dir="auto"><br></div>'
    '<div id="ms-outlook-mobile-signature" dir="auto">Get <a href="https://aka.ms/o0ukef">Outlook for iOS</a>'
    '</div><div id="mail-editor-reference-message-container"><hr><b>From:</b> Nudger<br>'
    f"{QUESTION}</div>"
)
OWA_PREFIXED = (
    '<div class="x_elementToProof">I skipped the load test.</div>'
    f'<div id="x_divRplyFwdMsg"><b>From:</b> Nudger</div><div class="x_gmail_quote">{QUESTION}</div>'
)
APPLE_IOS = (
    '<html><body dir="auto"><div dir="ltr">I skipped the load test.</div><div dir="ltr"><br>'
    '<div id="AppleMailSignature" dir="ltr">Sent from my iPhone</div><div dir="ltr"><br>'
    f'<blockquote type="cite">On 10 Mar 2025, at 08:00, Nudger &lt;{ADDR}&gt; wrote:<br><br></blockquote>'
    f'</div><blockquote type="cite"><div dir="ltr">{QUESTION}</div></blockquote></div></body></html>'
)
APPLE_TYPED_IN_SIGNATURE = (
    '<div dir="ltr"><div id="AppleMailSignature" dir="ltr">I skipped the load test.<br><br>'
    "Sent from my iPhone</div>"
    f'<blockquote type="cite"><div dir="ltr">{QUESTION}</div></blockquote></div>'
)
THUNDERBIRD = (
    "<html><body><p>I skipped the load test.</p>"
    '<pre class="moz-signature" cols="72">-- \nJan Novák</pre>'
    '<div class="moz-cite-prefix">On 10/03/2025 08:00, Nudger wrote:<br></div>'
    f'<blockquote type="cite" cite="mid:nudge.41.7@nudger.example">{QUESTION}</blockquote></body></html>'
)
YAHOO = (
    '<div class="ydp3ab1c2yahoo-style-wrap"><div dir="ltr">I skipped the load test.</div><div><br></div>'
    '<div id="ymail_android_signature"><a href="https://go.onelink.me/107872968">Sent from Yahoo Mail '
    'on Android</a></div></div><div id="yahoo_quoted_1234" class="yahoo_quoted">'
    f"<div>On Mon, 10 Mar 2025 at 8:00, Nudger</div><div>{QUESTION}</div></div>"
)
PROTON = (
    '<div style="font-family: Arial">I skipped the load test.</div><div><br></div>'
    '<div class="protonmail_signature_block"><div class="protonmail_signature_block-proton">Sent with '
    '<a href="https://proton.me/">Proton Mail</a> secure email.</div></div><div><br></div>'
    '<div class="protonmail_quote">------- Original Message -------<br>On Monday, March 10th, 2025 at '
    f'08:00, Nudger &lt;{ADDR}&gt; wrote:<br><blockquote class="protonmail_quote" type="cite">{QUESTION}'
    "</blockquote></div>"
)
ZIMBRA = (
    '<html><body><div style="font-family: arial">I skipped the load test.</div><div><br></div>'
    '<div data-marker="__QUOTED_TEXT__"><hr id="zwchr" data-marker="__DIVIDER__">'
    f'<div data-marker="__HEADERS__"><b>From: </b>"Nudger" &lt;{ADDR}&gt;</div><br>{QUESTION}</div>'
    "</body></html>"
)
GMX = (
    '<html><body><div style="font-family: Verdana"><div>Ich habe den Lasttest ausgelassen.</div>'
    '<div name="quote" style="margin:10px 5px 5px 10px"><div style="margin:0 0 10px 0;"><b>Gesendet:</b>'
    f" Montag, 10. März 2025 um 08:00 Uhr<br><b>Von:</b> Nudger &lt;{ADDR}&gt;</div>"
    f'<div name="quoted-content">{QUESTION}</div></div></div></body></html>'
)
SPARK = (
    '<div dir="auto">I skipped the load test.</div><div name="messageSignatureSection"><br>'
    '<div class="matchFont">Sent with Spark</div></div><div name="messageReplySection">On 10 Mar 2025, '
    f'08:00 +0000, Nudger &lt;{ADDR}&gt;, wrote:<br><blockquote type="cite">{QUESTION}</blockquote></div>'
)
SAMSUNG = (
    '<div dir="auto">I skipped the load test.</div><div dir="auto"><br></div>'
    '<div id="composer_signature" dir="auto"><div style="font-size:85%" dir="auto">Sent from my Galaxy</div>'
    '</div><div dir="auto"><br></div><div align="left" dir="auto"><div>-------- Original message --------'
    f"</div><div>From: Nudger &lt;{ADDR}&gt; </div><div>Date: 10/03/2025 08:00 (GMT+00:00) </div>"
    f"<div>Subject: {QUESTION} </div><div><br></div>{QUESTION}</div>"
)
YAHOO_NESTED = (
    '<div class="ydp7c1yahoo-style-wrap">I skipped the load test.</div>'
    '<div id="ydp9f0yahoo_quoted_55" class="ydp9f0yahoo_quoted"><div>On Monday, Nudger wrote:</div>'
    f"{QUESTION}</div>"
)
ZOHO = (
    "<div>I skipped the load test.</div><br>"
    f'<div class="zmail_extra_hr"></div><div class="zmail_extra"><br>{QUESTION}</div>'
)


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        pytest.param(GMAIL, "I skipped the load test.\n\nNever again.", id="gmail"),
        pytest.param(GMAIL_SIGNATURE, "I skipped the load test.", id="gmail-signature"),
        pytest.param(GMAIL_OLD_EXTRA, "I skipped the load test.", id="gmail-old-extra"),
        pytest.param(GMAIL_INLINE, "That estimates are ranges.\nGive ranges.", id="gmail-inline"),
        pytest.param(GMAIL_INLINE_TEXT_HEADER, "That estimates are ranges.", id="gmail-inline-text-header"),
        pytest.param(OUTLOOK_WEB, "I skipped the load test.\n\nPriya", id="outlook-web"),
        pytest.param(
            OUTLOOK_DESKTOP, "Hi all,\n\nI skipped the load test.\nNever again.", id="outlook-desktop"
        ),
        pytest.param(OUTLOOK_MOBILE, "I skipped the load test.", id="outlook-mobile"),
        pytest.param(OWA_PREFIXED, "I skipped the load test.", id="owa-x-prefixed"),
        pytest.param(APPLE_IOS, "I skipped the load test.", id="apple-ios"),
        pytest.param(APPLE_TYPED_IN_SIGNATURE, "I skipped the load test.", id="apple-typed-in-signature"),
        pytest.param(THUNDERBIRD, "I skipped the load test.", id="thunderbird"),
        pytest.param(YAHOO, "I skipped the load test.", id="yahoo"),
        pytest.param(PROTON, "I skipped the load test.", id="proton"),
        pytest.param(ZIMBRA, "I skipped the load test.", id="zimbra"),
        pytest.param(ZOHO, "I skipped the load test.", id="zoho"),
        pytest.param(GMX, "Ich habe den Lasttest ausgelassen.", id="gmx"),
        pytest.param(SPARK, "I skipped the load test.", id="spark"),
        pytest.param(SAMSUNG, "I skipped the load test.", id="samsung"),
        pytest.param(YAHOO_NESTED, "I skipped the load test.", id="yahoo-nested"),
    ],
)
def test_client_html_becomes_the_new_text(html: str, expected: str) -> None:
    assert trim(html_to_text(html)).visible == expected


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        pytest.param(GMAIL, "I skipped the load test.\n\nNever again.", id="gmail-structural"),
        pytest.param(APPLE_IOS, "I skipped the load test.", id="apple-footer-region-taken-back"),
        pytest.param(
            APPLE_TYPED_IN_SIGNATURE,
            "I skipped the load test.\n\nSent from my iPhone",
            id="apple-typed-text-region-kept",
        ),
        pytest.param(
            GMAIL_INLINE_TEXT_HEADER,
            f"On Mon, 10 Mar 2025 at 08:00, Nudger <{ADDR}> wrote:\n>\nThat estimates are ranges.",
            id="removed-quote-leaves-a-marker-before-more-text",
        ),
        pytest.param(THUNDERBIRD, "I skipped the load test.", id="thunderbird-structural"),
    ],
)
def test_structural_removal_before_trimming(html: str, expected: str) -> None:
    assert html_to_text(html) == expected


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        pytest.param(
            "<p>Steps:</p><ol><li>read the logs</li><li>ask</li></ol><p>Done.</p>",
            "Steps:\n\n1. read the logs\n2. ask\n\nDone.",
            id="ordered-list",
        ),
        pytest.param(
            '<p>See <a href="https://wiki.acme.example/rollback">the rollback page</a>.</p>',
            "See the rollback page (https://wiki.acme.example/rollback).",
            id="link-target-kept",
        ),
        pytest.param(
            '<div>Thanks <img data-emoji="🙂" class="an1" alt="🙂" src="https://fonts.example/1f642.png"></div>',
            "Thanks 🙂",
            id="gmail-emoji-image",
        ),
        pytest.param("<div>a</div><hr class='zmail_extra_hr'><div>b</div>", "a\n\nb", id="void-skip-ignored"),
        pytest.param(
            "<blockquote>someone said</blockquote><p>Mine</p>", "> someone said\n\nMine", id="plain-quote"
        ),
    ],
)
def test_readable_structure(html: str, expected: str) -> None:
    assert html_to_text(html) == expected


# --------------------------------------------------------------------------------------- body selection


def multipart(plain: str, html: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Anna Schmidt <anna@acme.example>"
    msg["To"] = ADDR
    msg["Subject"] = f"Re: {QUESTION}"
    msg.set_content(plain)
    msg.add_alternative(html, subtype="html")
    return msg.as_bytes()


def test_faithful_plain_alternative_is_chosen() -> None:
    header = f"On Mon, 10 Mar 2025 at 08:00, Nudger <{ADDR}> wrote:"
    plain = f"I skipped the load test.\n\nNever again.\n\n{header}\n> {QUESTION}\n"
    msg = parse_message(multipart(plain, GMAIL))
    assert msg.text.startswith("I skipped the load test.\n\nNever again.\n\nOn Mon")
    assert trim(msg.text).visible == "I skipped the load test.\n\nNever again."


@pytest.mark.parametrize(
    "plain",
    [
        "This message is in HTML. Please use an HTML-capable mail program to read it.",
        "[image: logo]",
        "Hello,\n\nYour client does not show this email properly. View it online.",
    ],
    ids=["html-only-notice", "image-placeholder", "view-online"],
)
def test_unfaithful_plain_part_loses_to_the_html(plain: str) -> None:
    msg = parse_message(multipart(plain, OUTLOOK_WEB))
    assert trim(msg.text).visible == "I skipped the load test.\n\nPriya"


def test_blank_plain_part_loses_to_the_html() -> None:
    msg = parse_message(multipart("\n", APPLE_IOS))
    assert trim(msg.text).visible == "I skipped the load test."


@pytest.mark.parametrize(
    ("plain", "html_text", "faithful"),
    [
        ("Same words here, nothing else.", "Same words here, nothing else.", True),
        ("Same words here.\n\n> and a quote", "Same words here.", True),
        ("", "Words", False),
        ("Anything at all", "", True),
        ("Totally different text from another mail", "I skipped the load test and regret it.", False),
    ],
)
def test_is_faithful_alternative(plain: str, html_text: str, faithful: bool) -> None:
    assert is_faithful_alternative(plain, html_text) is faithful


# --------------------------------------------------------------------------------------- robustness


@pytest.mark.parametrize(
    "html",
    [
        '<div id="AppleMailSignature">' * 20_000,
        '<div class="gmail_quote"><blockquote type="cite">' * 10_000,
        "<p class=MsoNormal>" * 50_000,
        '<img data-emoji="x">' * 50_000,
    ],
    ids=["footer-regions", "nested-quotes", "mso-paragraphs", "emoji"],
)
def test_hostile_markup_stays_linear(html: str) -> None:
    started = time.perf_counter()
    html_to_text(html)
    assert time.perf_counter() - started < 10.0  # a linear-time guard (catastrophic cases take minutes)


@settings(max_examples=150, deadline=None, database=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "<div>",
                "</div>",
                '<div id="AppleMailSignature">',
                '<blockquote type="cite">',
                "</blockquote>",
                '<div class="gmail_quote">',
                '<p class="MsoNormal">',
                "</p>",
                "<br>",
                '<hr id="zwchr">',
                "Sent from my iPhone",
                "text",
                "On Mon, 10 Mar 2025 at 08:00, X wrote:",
                '<a href="https://x.example">',
                "</a>",
                "<ul><li>",
            ]
        ),
        max_size=60,
    )
)
def test_html_to_text_then_trim_never_raises(pieces: list[str]) -> None:
    text = html_to_text("".join(pieces))
    assert isinstance(trim(text).visible, str)
