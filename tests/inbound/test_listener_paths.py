"""The listener's fast path for MAIL FROM / RCPT TO paths gives exactly what aiosmtpd's own parser
gives (`SMTP._getaddr`), whatever follows the path; and real SMTP sessions still get the answers
aiosmtpd gives for paths the fast path leaves to it."""

from __future__ import annotations

import pytest
from aiosmtpd.smtp import SMTP
from hypothesis import given
from hypothesis import strategies as st

from nudger.inbound.listener import _PLAIN_PATH, ListenerSMTP


class _Handler:
    pass


OURS = ListenerSMTP(_Handler())
AIOSMTPD = SMTP(_Handler())

ATEXT = "abcXYZ019!#$%&'*+/=?^_`{|}~-"
ATOM = st.text(alphabet=ATEXT + ".", min_size=0, max_size=6)
LABEL = st.text(alphabet="abcXYZ09-_.[]", min_size=0, max_size=5)
DOMAIN = st.lists(LABEL, min_size=1, max_size=3).map(".".join)
REST = st.one_of(
    st.just(""),
    st.sampled_from([" SIZE=2100", "SIZE=1", " SMTPUTF8 BODY=8BITMIME", "\t", "  ", " (comment) X"]),
    st.text(alphabet=' \t()\x0b\xa0\u2003=Az9"<>@', max_size=8),
)
PATH = st.one_of(
    st.builds(lambda local, dom, rest: f"<{local}@{dom}>{rest}", ATOM, DOMAIN, REST),
    st.builds(lambda lead, addr: f"{lead}<{addr}>", st.sampled_from([" ", "\t", "("]), ATOM),
    st.text(alphabet='ab.@<>"() \t[]', max_size=14),
)


def outcome(server: SMTP, arg: str) -> object:
    try:
        return server._getaddr(arg)
    except Exception as exc:  # aiosmtpd's parser raises on a few (e.g. "<"): ours must too
        return type(exc)


@given(PATH)
def test_the_fast_path_answers_as_aiosmtpd_does(arg: str) -> None:
    assert outcome(OURS, arg) == outcome(AIOSMTPD, arg)


def test_the_usual_paths_take_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    def slow(self: SMTP, arg: str) -> tuple[str | None, str | None]:
        raise AssertionError(f"aiosmtpd's parser was asked about {arg!r}")

    monkeypatch.setattr(SMTP, "_getaddr", slow)  # the listener must answer these without it
    assert OURS._getaddr("<bounce@staff.example>") == ("bounce@staff.example", "")
    assert OURS._getaddr("<reply+aeaqaaaa@reply.corp.test> SIZE=2100") == (
        "reply+aeaqaaaa@reply.corp.test",
        "SIZE=2100",
    )
    for arg in ("<bounce@staff.example>", "<reply+aeaqaaaa@reply.corp.test> SIZE=2100", "<a.b-c@d.e>"):
        assert _PLAIN_PATH.fullmatch(arg) is not None
    for arg in ("<>", '<"a b"@c.d>', "<a@[192.0.2.1]>", "<a..b@c.d>", "<ü@x.y>"):
        assert _PLAIN_PATH.fullmatch(arg) is None
