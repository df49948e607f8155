"""Routing never raises and never routes what it should not, on any address (hypothesis)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from nudger.inbound.route import accepts_recipient, find_tokens
from nudger.mail.tokens import TokenKind
from tests.fixtures import identity, keys

addresses = st.one_of(
    st.text(max_size=200),
    st.from_regex(r"(reply|bounces)\+?[a-z2-7]{0,40}@reply\.corp\.test", fullmatch=True),
    st.emails(),
)


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(addresses, max_size=8))
def test_unsigned_look_alike_addresses_never_route(candidates: list[str]) -> None:
    """Random text and forged reply+<base32> addresses (no valid signature: odds 2**-80) route nowhere."""
    assert find_tokens(candidates, identity(), keys()) == []


@settings(max_examples=300, deadline=None, database=None)
@given(addresses)
def test_accepts_recipient_never_raises(address: str) -> None:
    assert accepts_recipient(address, identity(), keys()) in (True, False)


@settings(max_examples=100, deadline=None, database=None)
@given(st.integers(min_value=0, max_value=2**48 - 1), st.sampled_from(list(TokenKind)))
def test_a_real_token_routes_in_any_letter_case(ident: int, kind: TokenKind) -> None:
    address = identity().reply_address(keys().token(kind, ident))
    for variant in (address, address.upper(), address.replace("+", "")):
        [token] = find_tokens([variant], identity(), keys())
        assert (token.kind, token.id) == (kind, ident)
