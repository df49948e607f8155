"""trim_reply: the new text exactly, per client and language; inline answers; speed on 1 MB."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nudger.inbound.parse import parse_message
from nudger.inbound.trim import trim_reply

EMAILS = Path(__file__).resolve().parent.parent / "emails"
QUESTION = "What did you learn from a mistake this week?"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "Ask earlier.\n\nOn Mon, 10 Mar 2025 at 08:00, Nudger <reply+abc@example.com> wrote:\n\n"
            "> What did you learn?\n>\n> -- \n> nudger\n",
            "Ask earlier.",
            id="gmail",
        ),
        pytest.param(
            "Ask earlier.\n\nOn Mon, 10 Mar 2025 at 08:00, Nudger Team from the Learning and\n"
            "Development Department <reply+abc@example.com> wrote:\n> What did you learn?\n",
            "Ask earlier.",
            id="gmail-header-wrapped-over-two-lines",
        ),
        pytest.param(
            "Ask earlier.\n\nOn Monday, March 10, 2025 at 08:00:00 AM UTC,\nNudger Team\n"
            "<reply+abc@example.com> wrote:\n> What did you learn?\n",
            "Ask earlier.",
            id="header-wrapped-over-three-lines",
        ),
        pytest.param(
            "Ask earlier.\n\n> On 10 Mar 2025, at 08:00, Nudger <reply+abc@example.com> wrote:\n>\n> q?\n",
            "Ask earlier.",
            id="apple-quoted-header",
        ),
        pytest.param(
            "Ask earlier.\n\nOn 10/03/2025 08:00, Nudger wrote:\n> q?\n",
            "Ask earlier.",
            id="thunderbird",
        ),
        pytest.param(
            "Früher fragen.\n\nAm Mo., 10. März 2025 um 08:00 Uhr schrieb Nudger <reply+abc@example.com>:\n"
            "> q?\n",
            "Früher fragen.",
            id="german",
        ),
        pytest.param(
            "Demander plus tôt.\n\nLe lun. 10 mars 2025 à 08:00, Nudger <reply+abc@example.com> a écrit :\n"
            "> q?\n",
            "Demander plus tôt.",
            id="french",
        ),
        pytest.param(
            "Preguntar antes.\n\nEl lun, 10 mar 2025 a las 8:00, Nudger (<reply+abc@example.com>) escribió:\n"
            "> q?\n",
            "Preguntar antes.",
            id="spanish",
        ),
        pytest.param(
            "Eerder vragen.\n\nOp ma 10 mrt. 2025 om 08:00 schreef Nudger <reply+abc@example.com>:\n> q?\n",
            "Eerder vragen.",
            id="dutch",
        ),
        pytest.param(
            "Ask earlier.\n\n-----Original Message-----\nFrom: Nudger\nSent: Monday\nq?\n",
            "Ask earlier.",
            id="original-message",
        ),
        pytest.param(
            "Ask earlier.\n\n________________________________\nFrom: Nudger <reply+abc@example.com>\n"
            "Sent: Monday, March 10, 2025 8:00 AM\nTo: Anna\nSubject: q\n\nq?\n",
            "Ask earlier.",
            id="outlook-underscores",
        ),
        pytest.param(
            "Ask earlier.\n\nFrom: Nudger <reply+abc@example.com>\nSent: Monday, March 10, 2025 8:00 AM\n"
            "To: Anna Schmidt <anna@acme.example>\nSubject: q\n\nq?\n",
            "Ask earlier.",
            id="outlook-header-block",
        ),
        pytest.param(
            "Ask earlier.\n\n*From:* Nudger <reply+abc@example.com>\n*Sent:* Monday\n*To:* Anna\n\nq?\n",
            "Ask earlier.",
            id="outlook-bold-header-block",
        ),
        pytest.param(
            "Früher fragen.\n\nVon: Nudger <reply+abc@example.com>\nGesendet: Montag, 10. März 2025 08:00\n"
            "An: Anna\nBetreff: q\n\nq?\n",
            "Früher fragen.",
            id="outlook-german",
        ),
        pytest.param(
            "Demander plus tôt.\n\nDe : Nudger <reply+abc@example.com>\nEnvoyé : lundi 10 mars 2025 08:00\n"
            "À : Anna\nObjet : q\n\nq?\n",
            "Demander plus tôt.",
            id="outlook-french",
        ),
        pytest.param(
            "Preguntar antes.\n\nDe: Nudger <reply+abc@example.com>\n"
            "Enviado: lunes, 10 de marzo de 2025 8:00\nPara: Anna\nAsunto: q\n\nq?\n",
            "Preguntar antes.",
            id="outlook-spanish",
        ),
        pytest.param(
            "Ask earlier.\n\n-- \nAnna Schmidt\nHead of Platform\n+49 30 1234567\n",
            "Ask earlier.",
            id="signature",
        ),
        pytest.param("Ask earlier.\n> q?\n> more quote\n", "Ask earlier.", id="bare-quote"),
        pytest.param("> q?\n", "", id="only-quote"),
        pytest.param("-- \nAnna Schmidt\n", "", id="only-signature"),
        pytest.param("", "", id="empty"),
    ],
)
def test_trims_to_exactly_the_new_text(text: str, expected: str) -> None:
    assert trim_reply(text).visible == expected


@pytest.mark.parametrize(
    "footer",
    [
        "Sent from my iPhone",
        "Sent from my Android",
        "Sent from my Galaxy",
        "Get Outlook for iOS",
        "Get Outlook for Android<https://aka.ms/AAb9ysg>",
        "Sent from Mail for Windows",
        "Envoyé de mon iPhone",
        "Von meinem iPhone gesendet",
        "Enviado desde mi iPhone",
    ],
)
def test_mobile_footers_are_removed(footer: str) -> None:
    trimmed = trim_reply(f"Ask earlier.\n\n{footer}\n")
    assert trimmed.visible == "Ask earlier."
    assert trimmed.elided == footer


APP_FOOTERS = """\
Gesendet von Mail für Windows 10
Envoyé à partir de Courrier pour Windows 10
Enviado desde Correo para Windows 10
Inviato da Posta per Windows 10
Enviado do Email para Windows 10
Verzonden vanuit Mail voor Windows 10
Skickades från E-post för Windows 10
Sendt fra Mail til Windows 10
Lähetetty Windows 10:n Sähköpostista
Wysłane z aplikacji Poczta dla systemu Windows 10
Odesláno z Pošty pro Windows 10
Отправлено из приложения Почта для Windows 10
Надіслано з пошти для Windows 10
Windows 10 için Posta'dan gönderildi
Windows 10 版のメールから送信
从 Windows 10 版邮件发送
Windows 10용 메일에서 보냄
Envoyé de Yahoo Mail pour Android
Gesendet von Yahoo Mail auf Android
Galaxy スマートフォンから送信されました
发自我的华为手机
Sent from my Samsung Galaxy S23 Ultra
Sent from my T-Mobile 4G LTE Device
Sent from my Sony Xperia™ smartphone
Envoyé de mon appareil Galaxy
Inviato dal mio dispositivo Huawei
Verstuurd vanaf mijn Samsung Galaxy smartphone.
Lähetetty Samsung Galaxy -älypuhelimesta.
Samsung Galaxy akıllı telefonumdan gönderildi.
Отправлено из мобильной Почты Mail.ru
Sent from Proton Mail Android
Sent from myMail for iOS
Sent from the all new AOL app for iOS
Get BlueMail for Android
Sent via Superhuman
Sent from my Apple Watch"""

PROSE_LIKE_FOOTERS = """\
Sent from my desk, is much easier than my phone.
Sent with love and a lot of coffee
Get well soon
Download the report from the wiki
I use Outlook for iOS every day
Envoyé depuis mon bureau, c'est plus simple.
Please excuse my late reply.
Sent from home today because of the strike"""


@pytest.mark.parametrize("footer", APP_FOOTERS.split("\n"))
def test_app_footers_in_many_languages_are_removed(footer: str) -> None:
    assert trim_reply(f"Ask earlier.\n{footer}").visible == "Ask earlier."


@pytest.mark.parametrize("line", PROSE_LIKE_FOOTERS.split("\n"))
def test_prose_that_looks_like_a_footer_stays(line: str) -> None:
    assert trim_reply(f"Ask earlier.\n{line}").visible == f"Ask earlier.\n{line}"


def test_inline_answers_between_quoted_lines_are_kept() -> None:
    text = (
        "On Mon, 10 Mar 2025 at 08:00, Nudger <reply+abc@example.com> wrote:\n"
        "> What did you learn?\n"
        "That estimates are ranges.\n"
        "\n"
        "> What will you do differently?\n"
        "Give ranges.\n"
        "Explain them.\n"
        "\n"
        "-- \n"
        "Anna\n"
    )
    trimmed = trim_reply(text)
    assert trimmed.visible == "That estimates are ranges.\n\nGive ranges.\nExplain them."
    assert "> What did you learn?" in trimmed.elided
    assert trimmed.elided.startswith("On Mon, 10 Mar 2025 at 08:00, Nudger")
    assert trimmed.elided.endswith("Anna")


def test_bottom_posting_is_kept() -> None:
    text = "Bob Smith <bob@acme.example> wrote:\n> What did you learn?\n\nThat I should bottom-post less.\n"
    assert trim_reply(text).visible == "That I should bottom-post less."


def test_header_followed_by_unquoted_history_cuts_it() -> None:
    text = (
        "Yes.\n\nOn Mon, 10 Mar 2025 at 08:00, Nudger wrote:\n\nWhat did you learn?\nReply to this email.\n"
    )
    trimmed = trim_reply(text)
    assert trimmed.visible == "Yes."
    assert trimmed.elided.endswith("Reply to this email.")


@pytest.mark.parametrize(
    "text",
    [
        "On reflection, I learned a lot.\nThe thing I wrote:\nkeep it simple.",
        "On Monday I shipped it.\nOn Tuesday I fixed it.",
        "From: my own perspective, ranges work.\nTo: be honest, it took a while.",
        "Le point clé : demander tôt.",
        "Learned:\n- one\n- two",
    ],
)
def test_look_alikes_are_not_trimmed(text: str) -> None:
    assert trim_reply(text).visible == text


def test_structure_is_kept_and_whitespace_tidied() -> None:
    text = "Steps:\n\n1. read the logs   \n2. ask\n\n    def f():\n        return 1\n\n\n\n\nDone.  \n\n\n"
    assert (
        trim_reply(text).visible
        == "Steps:\n\n1. read the logs\n2. ask\n\n    def f():\n        return 1\n\nDone."
    )


def test_crlf_and_cr_line_endings() -> None:
    assert (
        trim_reply("Ask earlier.\r\n\r\nOn Mon, 10 Mar 2025, X wrote:\r\n> q\r\n").visible == "Ask earlier."
    )
    assert trim_reply("a\rb").visible == "a\nb"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"{QUESTION}\n\nI pushed on a Friday. Never again.", "I pushed on a Friday. Never again."),
        (
            "What did you learn\nfrom a   mistake this week?\n\nI pushed on a Friday.",
            "I pushed on a Friday.",
        ),
        ("WHAT DID YOU LEARN FROM A MISTAKE THIS WEEK?\nTesting in prod.", "Testing in prod."),
        ("I pushed on a Friday.", "I pushed on a Friday."),
        (QUESTION, ""),
    ],
)
def test_our_question_is_removed_if_left_in(text: str, expected: str) -> None:
    trimmed = trim_reply(text, question=QUESTION)
    assert trimmed.visible == expected
    if expected != text:
        assert " ".join(trimmed.elided.lower().split()) == QUESTION.lower()


def test_short_questions_are_not_removed_from_answers() -> None:
    assert trim_reply("Why? Because it was late.", question="Why?").visible == "Why? Because it was late."


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "reply_gmail_quoted.eml",
            "I shipped a migration without a dry run and it locked a table for 4 minutes.\n\n"
            "Next time I will:\n- run it against a copy first\n- announce it in the channel",
        ),
        (
            "human_outlook_with_xars.eml",
            "I assumed the customer had read the release notes. They had not.\n"
            "Now I send a two-line summary with every release.\n\nPriya",
        ),
        ("reply_apple_mail_iphone.eml", "That a quick “not sure yet” beats a confident guess 🙂"),
        ("reply_outlook_plain_de.eml", "Dass man Änderungen am Freitag besser lässt.\n\nGrüße\nJürgen"),
        ("reply_iso2022jp.eml", "ミスから学んだこと：確認は二回。"),
    ],
)
def test_fixture_replies_trim_to_the_new_text(name: str, expected: str) -> None:
    msg = parse_message((EMAILS / name).read_bytes())
    assert trim_reply(msg.text, question=QUESTION).visible == expected


@pytest.mark.parametrize(
    "text",
    [
        "See below.\n\nBegin forwarded message:\n\nFrom: Nudger\nSubject: q\n\nq?",
        "See below.\n\n---------- Forwarded message ---------\nFrom: Nudger\n\nq?",
        "Siehe unten.\n\n-------- Weitergeleitete Nachricht --------\nBetreff: q\n\n> q?",
        "Voir ci-dessous.\n\nDébut du message réexpédié :\n\nDe: Nudger\n\nq?",
    ],
    ids=["apple", "gmail", "thunderbird-de", "apple-fr"],
)
def test_forwarded_messages_are_kept_whole(text: str) -> None:
    trimmed = trim_reply(text, question="q? q? q? q? q?")
    assert trimmed.visible == text
    assert trimmed.elided == ""


def test_forwarded_nudge_is_kept_whole_question_included() -> None:
    msg = parse_message((EMAILS / "forwarded_nudge.eml").read_bytes())
    trimmed = trim_reply(msg.text, question=QUESTION)
    assert trimmed.visible.startswith("Have a look at this, I think you'd like it.\n\n---------- Forwarded")
    assert trimmed.visible.endswith(QUESTION)


def test_history_before_a_forward_caption_is_cut_as_history() -> None:
    text = "Blah\n\n-----Original Message-----\n\nFYI\n\n---------- Forwarded message ----------\nFrom: x"
    assert trim_reply(text).visible == "Blah"


def test_one_megabyte_reply_trims_in_well_under_a_second() -> None:
    paragraph = "I learned that a checklist beats memory when the pressure is on. " * 3 + "\n"
    quoted = "".join(f"> {line}" for line in [paragraph] * 4)
    text = (paragraph * 4 + "\n" + quoted + "\n") * 900
    assert len(text) > 1_000_000
    started = time.perf_counter()
    trimmed = trim_reply(text, question=QUESTION)
    assert time.perf_counter() - started < 10.0  # linear-time guard; speed is in bench/trim.py
    assert trimmed.visible.startswith("I learned that a checklist")
    assert ">" not in trimmed.visible


@pytest.mark.parametrize(
    "text",
    [
        "On 1\n" * 8_000,
        "Bob wrote:\n\n\n" * 5_000,
        "From: x\n" * 8_000,
        "On 1 Jan 2025 X wrote:\n> q\n" * 5_000,
        ":\n" * 15_000,
        "x" * 1_000_000,
        "-" * 500_000,
        "w " * 300_000,
        ("on " * 150 + "wrote:\n> q\nanswer\n") * 1_000,
        "On 10 Mar 2025 at 08:00, Anna wrote:\n> q\nanswer\n" * 5_000,
        "Sent from my iPhone\n> q\n" * 8_000,
        ("-" * 40 + "\n") * 10_000,
    ],
    ids=[
        "on-lines",
        "wrote-lines",
        "from-lines",
        "headers",
        "colons",
        "long-line",
        "dashes",
        "words",
        "inner-openers",
        "inline-answers",
        "footers-and-quotes",
        "rules",
    ],
)
def test_hostile_shapes_stay_linear(text: str) -> None:
    started = time.perf_counter()
    trim_reply(text, question="w w w w w w w w x")
    # generous: a benchmark measures speed; quadratic behaviour would take minutes at these sizes
    assert time.perf_counter() - started < 10.0  # linear-time guard; speed is in bench/trim.py


def test_a_long_question_on_repetitive_text_stays_linear() -> None:
    started = time.perf_counter()
    trim_reply("w " * 300_000, question="w " * 299 + "x")
    assert time.perf_counter() - started < 10.0  # linear-time guard; speed is in bench/trim.py


@settings(max_examples=200, deadline=None, database=None)
@given(
    st.text(alphabet=st.sampled_from(list("> -_:\n\r\tOnAmwrote:Fom1@<>xé*")), max_size=400),
    st.one_of(st.none(), st.text(max_size=40)),
)
def test_trim_never_raises_and_only_removes_lines(text: str, question: str | None) -> None:
    trimmed = trim_reply(text, question=question)
    original_lines = {line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")}
    if question is None:
        assert set(trimmed.visible.split("\n")) <= original_lines | {""}
    assert not any(line.lstrip().startswith(">") for line in trimmed.visible.split("\n"))


@settings(max_examples=100, deadline=None, database=None)
@given(st.text(max_size=300))
def test_trim_never_raises_on_arbitrary_text(text: str) -> None:
    assert isinstance(trim_reply(text, question=text[:50]).visible, str)


HEADER_FORMS = """\
At 10/03/2025 08:00 AM, you wrote:
In message <20250310.abc@acme.example>, Anna Schmidt writes:
2025-03-10 08:00 GMT+01:00 Anna Schmidt
2025/3/10 Anna Schmidt <anna@acme.example>
2025-03-10 8:00 GMT+00:00 Anna Schmidt <anna@acme.example>:
суббота, 8 марта 2025 г. пользователь Анна написал:
вт, 11 мар. 2025 г. в 09:15, Анна Иванова <anna@acme.example>:
ср, 12 бер. 2025 р. о 10:20 Ганна <anna@acme.example> пише:
10 бер. 2025 р. 08:00 "Ганна" anna@acme.example пише:
Anna Schmidt <anna@acme.example> schrieb am Mo., 10. März 2025, 08:00:
Anna Schmidt <anna@acme.example> schrieb am Mo., 10. März 2025 um 08:00 Uhr:
Anna Schmidt (anna@acme.example) wrote:
---- On Mon, 10 Mar 2025 08:00:00 +0100 Anna Schmidt<anna@acme.example> wrote ----
-----Anna Schmidt <anna@acme.example> wrote: -----
søn. 9. mar. 2025 kl. 20.15 skrev Anna Schmidt <anna@acme.example>:
On Monday, March 10, 2025, Anna via Platform Team wrote:
Anna via Platform Team <platform@acme.example> wrote:
On Mon, 2025-03-10 at 08:00 +0000, Anna Schmidt wrote:
Le 10 mars 2025 08:00, "Anna Schmidt" <anna@acme.example> a écrit :
Dnia 10 mar 2025 o godz. 08:00 Anna Schmidt <anna@acme.example> napisał(a):
Em seg, 10 de mar de 2025 08:00, Anna Schmidt <anna@acme.example> escreveu:
El lunes, 10 de marzo de 2025, Anna Schmidt escribió:
On Mar 10, 2025, at 8:00 AM, "Schmidt, Anna" <anna@acme.example> wrote:
On Mon, Mar 10, 2025 at 8:00\u202fAM Anna Schmidt <anna@acme.example> wrote:
Am 10.03.2025 um 08:00 schrieb "Schmidt, Anna" <anna@acme.example>:
Op 10 mrt. 2025 08:00 schreef "Anna Schmidt" <anna@acme.example>:
Den 10. mar. 2025 kl. 08.00 skrev Anna Schmidt <anna@acme.example>:
2025. márc. 10., h 8:00 időpontban Anna Schmidt <anna@acme.example> ezt írta:
Anna Schmidt <anna@acme.example> 在 2025年3月10日 周一 08:00 写道：
2025年3月10日 周一 08:00 Anna Schmidt <anna@acme.example> 写道："""


@pytest.mark.parametrize("header", HEADER_FORMS.split("\n"))
def test_header_forms_from_many_clients_cut_before_quotes(header: str) -> None:
    trimmed = trim_reply(f"Ask earlier.\n\n{header}\n\n> What did you learn?\n> Reply to this email.\n")
    assert trimmed.visible == "Ask earlier."
    assert trimmed.elided.startswith(header.strip().split()[0])
