"""Properties of `trim` on random and adversarial text: it never raises, only removes, stays linear.

Speed is measured by `bench/trim.py`; the time bounds here are deliberately generous (1 s per call on
inputs of up to a few hundred kilobytes) and only catch super-linear behaviour, which at these sizes
takes minutes.
"""

from __future__ import annotations

import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nudger.inbound.trim import trim, trim_reply
from tests.inbound.test_trim_languages import LANGS, QUOTED, Lang

# Generous on purpose: catastrophic backtracking takes minutes, a loaded CI machine a second or two.
# (Speed itself is measured by bench/trim.py, not asserted here.)
TIME_BOUND = 10.0

# Pieces of reply furniture, in several scripts, that the rules look for (no forward captions: a forward
# is kept whole, which would make the "quoted lines are gone" property moot).
FRAGMENTS = [
    "On Mon, 10 Mar 2025 at 08:00, Anna <anna@acme.example> wrote:",
    "On 10/03/2025 08:00,",
    "Anna Schmidt",
    "<anna@acme.example> wrote:",
    "Am 10.03.2025 um 08:00 schrieb Anna:",
    "пн, 10 мар. 2025 г. в 08:00, Анна <a@x.example>:",
    "2025年3月10日(月) 8:00 Anna <a@x.example>:",
    "Nudger <a@x.example> 于2025年3月10日周一 08:00写道：",
    "> quoted line",
    ">> deeper",
    ">",
    "-- ",
    "--",
    "---",
    "-Anna",
    "- item",
    "________________________________",
    "-----Original Message-----",
    "From: Anna <anna@acme.example>",
    "Sent: Monday, March 10, 2025 8:00 AM",
    "To: Team",
    "Subject: q",
    "Von: Anna",
    "Gesendet: Montag, 10. März 2025",
    "差出人: Anna",
    "Sent from my iPhone",
    "Get Outlook for Android<https://aka.ms/x>",
    "Von meinem iPhone gesendet",
    "iPhoneから送信",
    "(http://example.com/a",
    "b) >",
    ">>> banner <<<",
    "",
    "   ",
    "I learned to ask earlier.",
    "On Monday I shipped it.",
    "Date: Friday",
    ":",
    "：",
    "@",
    "wrote:",
    "\t",
]


def only_removes(text: str, visible: str) -> bool:
    """Every visible line is a line of the input, or the start of one (a reply sharing a header's line)."""
    originals = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    original_set = set(originals)
    return all(
        line in original_set or any(original.startswith(line) for original in originals)
        for line in visible.split("\n")
        if line
    )


def nothing_lost(text: str, visible: str, elided: str) -> bool:
    """Every non-blank input line is visible, elided, or was split between the two."""
    kept = {line.strip() for line in visible.split("\n")} | {line.strip() for line in elided.split("\n")}
    return all(
        line.strip() in kept or any(line.startswith(piece) for piece in visible.split("\n") if piece)
        for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        if line.strip()
    )


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=80), st.sampled_from(["\n", "\r\n", "\r"]))
def test_mail_shaped_text_only_loses_furniture(pieces: list[str], newline: str) -> None:
    text = newline.join(pieces)
    started = time.perf_counter()
    trimmed = trim(text)
    assert time.perf_counter() - started < TIME_BOUND
    assert only_removes(text, trimmed.visible)
    assert nothing_lost(text, trimmed.visible, trimmed.elided)
    for line in trimmed.visible.split("\n"):
        stripped = line.strip()
        assert not stripped.startswith(">") or (stripped.startswith(">>") and stripped.endswith("<<"))


@settings(max_examples=200, deadline=None, database=None)
@given(st.text(max_size=2000), st.one_of(st.none(), st.text(max_size=60)))
def test_never_raises_on_any_text(text: str, question: str | None) -> None:
    trimmed = trim_reply(text, question=question)
    assert isinstance(trimmed.visible, str)
    assert isinstance(trimmed.elided, str)


@settings(max_examples=100, deadline=None, database=None)
@given(st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=500))
def test_never_raises_on_surrogates_and_controls(text: str) -> None:
    assert isinstance(trim(text + "\ud800\x00\u2028\x85").visible, str)


@settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(FRAGMENTS), st.sampled_from(FRAGMENTS), st.integers(min_value=1_000, max_value=8_000))
def test_repeated_fragments_stay_linear(first: str, second: str, repeats: int) -> None:
    text = f"{first}\n{second}\n" * repeats
    started = time.perf_counter()
    trim_reply(text, question="w " * 40)
    assert time.perf_counter() - started < TIME_BOUND


@settings(max_examples=20, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(["x", " ", ":", "-", ">", "@", "0", "<", "a wrote:", "On 1 "]), st.integers(1, 300_000)
)
def test_one_long_line_stays_linear(unit: str, repeats: int) -> None:
    text = unit * repeats
    started = time.perf_counter()
    trim(text)
    trim(f"Reply\n{text}\n> q")
    assert time.perf_counter() - started < TIME_BOUND


PROSE = """\
I learned that estimates are ranges, not promises.
On Monday we shipped the migration; on Tuesday we rolled it back.
The plan for 10 March 2025 at 14:00:
- rehearse the rollback
- ask for a second review
1. Read the logs.
2. Ask early.
Date: whenever suits the team.
Note: the dashboard was wrong.
From now on I will write the runbook first.
To be honest, it took a while.
Subject to approval, we move on Friday.
Sent the report to anna@acme.example yesterday.
Anna <anna@acme.example> helped a lot.
My lead wrote: "ship it".
Meeting at 10:30 with Priya, then at 14:00 with Jan:
2025 was the year of the big outage.
The cost was about 3 days.
P.S. The retro moved to Friday.
Am Montag war das Deployment.
Le lundi 10 mars, on a tout relu.
El lunes revisamos todo: nada.
W dniu wdrożenia wszystko działało.
10:00 standup, 11:00 retro:
See https://wiki.acme.example/runbooks/rollback for details.
Q: what went wrong? A: the config.
-> next time: pair on it.
=> lesson learned.
* one
* two
Re: the alerting, we fixed it.
FW: nothing to forward here.
Yes.
At first I didn't see the problem.
Den 10. mars var det ingen som visste det.
In message queues, order matters.
Quoting the postmortem: "we were wrong".
From: the retro notes, two actions.
To: everyone who asked, thanks.
On 10 March at 09:00 we met, and Priya said:
"Ask earlier," she wrote.
Von Anfang an war klar: zu spät.
Am 10.03. um 9 Uhr: Retro.
I wrote this on my phone while waiting for the bus.
Sent from the office.
Get the logs first, then guess.
Wysłałem raport wczoraj.
Отправил отчёт вчера в 10:00.
发件人的问题我们已经解决了。
2025年3月10日に振り返りをしました。
Le 10/03 à 10h : rétro."""


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(st.sampled_from(PROSE.split("\n")), min_size=1, max_size=10, unique=True))
def test_prose_that_resembles_reply_furniture_is_never_trimmed(lines: list[str]) -> None:
    """Colons, dates, "On Monday…", "From: now on", addresses, lists: all the person's own text."""
    text = "\n".join(lines)
    trimmed = trim(text)
    assert trimmed.visible == text
    assert trimmed.elided == ""


ANSWERS = [
    "I skipped the load test.",
    "Zu spät nachgefragt.\nNächstes Mal frage ich früher.",
    "J'ai oublié de relire.",
    "レビューを待つべきでした。",
    "Needed a second pair of eyes.\n\n- check the diff\n- ask early",
]


@settings(max_examples=200, deadline=None, database=None)
@given(
    st.sampled_from(ANSWERS),
    st.sampled_from(LANGS),
    st.sampled_from(["gmail", "apple", "thunderbird", "block", "original"]),
    st.booleans(),
    st.sampled_from(["\n", "\n\n", "\n\n\n"]),
)
def test_any_answer_under_any_localised_header_is_recovered(
    answer: str, lang: Lang, shape: str, footer: bool, gap: str
) -> None:
    header = getattr(lang, shape)
    footer_line = f"{lang.iphone}{gap}" if footer else ""
    text = f"{answer}{gap}{footer_line}{header}\n{QUOTED}"
    assert trim(text).visible == answer
