"""The address fast path gives exactly what `email.utils.getaddresses` gives, or steps aside."""

from __future__ import annotations

from email.utils import getaddresses

from hypothesis import given
from hypothesis import strategies as st

from nudger.inbound.parse import _simple_addresses

ATOM = st.text(alphabet="abcXYZ019_'+-.%", min_size=1, max_size=6)
NAME = st.lists(st.text(alphabet="abcXYZ09_'+-. \"", min_size=0, max_size=6), max_size=3).map(" ".join)
ADDR = st.builds(
    lambda local, dom: f"{local}@{dom}", ATOM, st.lists(ATOM, min_size=1, max_size=3).map(".".join)
)
VALUE = st.one_of(
    ADDR,
    ADDR.map(lambda a: f"<{a}>"),
    st.builds(lambda n, a: f"{n} <{a}>", NAME, ADDR),
    st.builds(lambda n, a, sp: f"{sp}{n}{sp}<{a}>{sp}", NAME, ADDR, st.sampled_from(["", " ", "  ", "\t"])),
    st.text(alphabet="ab@<>. ,;:\"()'", max_size=12),
)


@given(st.lists(VALUE, max_size=3))
def test_the_fast_path_agrees_with_getaddresses_or_declines(values: list[str]) -> None:
    fast = _simple_addresses(values)
    if fast is not None:
        assert fast == getaddresses(values)


def test_the_common_forms_take_the_fast_path() -> None:
    assert _simple_addresses(["Ana Novak <ana@corp.test>", "reply+abc@reply.corp.test", "<b.c@d.e>"]) == [
        ("Ana Novak", "ana@corp.test"),
        ("", "reply+abc@reply.corp.test"),
        ("", "b.c@d.e"),
    ]
    assert _simple_addresses(['"Novak, Ana" <ana@corp.test>']) is None
    assert _simple_addresses(["=?utf-8?q?Ana?= <ana@corp.test>"]) is None
    assert _simple_addresses(["a@b.c, d@e.f"]) is None
