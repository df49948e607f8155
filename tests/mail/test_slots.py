"""Rendering a template once per round and filling each person in gives exactly what rendering each
person would have given: for the shipped templates, for names that need escaping, and for templates
that use the personal values in ways that cannot be filled in (those render normally)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nudger.mail.slots import SlotRenderer
from nudger.mail.templating import make_environment

CLOSES = datetime(2026, 3, 6, 9, 0, tzinfo=UTC)


class Counting:
    """The normal render, counting its calls."""

    def __init__(self, env: jinja2.Environment) -> None:
        self.env = env
        self.calls = 0

    def __call__(self, name: str, context: Mapping[str, Any]) -> tuple[str, str]:
        self.calls += 1
        text = self.env.get_template(f"{name}.txt.j2").render(context)
        html = self.env.get_template(f"{name}.html.j2").render(context)
        return text, html


def nudge_context(first_name: str, url: str, zone: str = "Europe/London") -> dict[str, Any]:
    return {
        "programme": "Weekly reflection",
        "question": "What is one thing you learned this week, & from whom?",
        "closes_at": CLOSES.astimezone(ZoneInfo(zone)),
        "service": "nudger",
        "first_name": first_name,
        "unsubscribe_url": url,
    }


@pytest.fixture(scope="module")
def env() -> jinja2.Environment:
    return make_environment()


names = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30).filter(
    lambda s: s.strip() != ""
)


@settings(max_examples=60, deadline=None)
@given(
    people=st.lists(
        st.tuples(names, st.sampled_from(["Europe/London", "Asia/Kolkata"])), min_size=3, max_size=8
    )
)
def test_filled_in_nudges_are_exactly_the_rendered_ones(
    env: jinja2.Environment, people: list[tuple[str, str]]
) -> None:
    slots = SlotRenderer(env)
    render = Counting(env)
    for i, (name, zone) in enumerate(people):
        context = nudge_context(name, f"https://nudger.corp.test/unsubscribe/tok{i}?a=1&b=<{i}>", zone)
        assert slots.render("nudge", context, render) == render("nudge", context)


def test_a_round_renders_the_template_once_per_timezone_not_once_per_person(env: jinja2.Environment) -> None:
    slots = SlotRenderer(env)
    render = Counting(env)
    for i in range(100):
        slots.render("nudge", nudge_context(f"Person {i}", f"https://x.test/u/{i}"), render)
    # first sight (normal), second sight (normal + placeholders to build the entry), then filled in
    assert render.calls == 3
    for i in range(100):
        zone = "Asia/Kolkata" if i % 2 else "Europe/London"
        slots.render("nudge", nudge_context(f"Person {i}", f"https://x.test/u/{i}", zone), render)
    assert render.calls == 3 + 3  # London is cached already; Kolkata is new


def test_every_personal_template_that_qualifies_fills_in_exactly(env: jinja2.Environment) -> None:
    contexts: dict[str, dict[str, Any]] = {
        "nudge": nudge_context("x", "y"),
        "reminder": {**nudge_context("x", "y")},
    }
    for name, base in contexts.items():
        slots = SlotRenderer(env)
        render = Counting(env)
        for person in ("Zoë <b>", "O'Brien & Sons", "Ana", "李"):
            context = {**base, "first_name": person, "unsubscribe_url": f"https://x.test/u/{person}"}
            assert slots.render(name, context, render) == render(name, context)


def _env(tmp_path: Path, templates: dict[str, str]) -> jinja2.Environment:
    for name, source in templates.items():
        (tmp_path / name).write_text(source)
    return make_environment(tmp_path)


@pytest.mark.parametrize(
    "body",
    [
        "Hi {{ first_name | upper }}!",  # a filter changes the value
        "Hi {{ first_name ~ '!' }}",  # an expression around it
        "{% if first_name == 'Ana' %}Olá{% else %}Hi{% endif %} {{ first_name }}",  # compared
        "{% set first_name = 'someone' %}Hi {{ first_name }}",  # reassigned
        "{% include unsubscribe_url %}",  # an include whose name is a personal value (_a.txt.j2)
        "{{ first_name[0] }}. {{ unsubscribe_url }}",  # part of it
        "{% filter truncate(9) %}Hi {{ first_name }}, welcome{% endfilter %}",  # captured, then cut
        "{% macro hi() %}Hi {{ first_name }}{% endmacro %}{{ hi() | truncate(6) }}",  # a macro's output
        "{% set line %}Hi {{ first_name }}{% endset %}{{ line | upper }}",  # a block assignment
    ],
)
def test_templates_that_use_a_personal_value_otherwise_render_normally(tmp_path: Path, body: str) -> None:
    env = _env(tmp_path, {"m.txt.j2": body, "m.html.j2": body, "_a.txt.j2": "A", "_b.txt.j2": "B"})
    slots = SlotRenderer(env)
    render = Counting(env)
    for person, url in (
        ("Ana", "_a.txt.j2"),
        ("Ben", "_b.txt.j2"),
        ("Chi", "_a.txt.j2"),
        ("Dan", "_b.txt.j2"),
    ):
        context = {"first_name": person, "unsubscribe_url": url}
        assert slots.render("m", context, render) == render("m", context)


def test_an_included_template_is_checked_too(tmp_path: Path) -> None:
    env = _env(
        tmp_path,
        {
            "m.txt.j2": "Hi {{ first_name }}\n{% include '_f.txt.j2' %}",
            "m.html.j2": "<p>Hi {{ first_name }}</p>{% include '_f.txt.j2' %}",
            "_f.txt.j2": "{{ first_name | title }}: {{ unsubscribe_url }}",
        },
    )
    slots = SlotRenderer(env)
    render = Counting(env)
    for person in ("ana", "ben", "chi"):
        context = {"first_name": person, "unsubscribe_url": "https://x.test/u"}
        assert slots.render("m", context, render) == render("m", context)


def test_empty_personal_values_and_unshareable_contexts_render_normally(env: jinja2.Environment) -> None:
    slots = SlotRenderer(env)
    render = Counting(env)
    for i in range(4):
        context = nudge_context(f"P{i}", "")  # no base URL: the footer leaves the link out
        assert slots.render("nudge", context, render) == render("nudge", context)
    lists = {**nudge_context("Ana", "https://x.test/u"), "posts": ["a", "b"]}  # a list: not hashable
    for _ in range(3):
        assert slots.render("nudge", lists, render) == render("nudge", lists)


def test_placeholder_like_text_in_a_shared_value_is_printed_as_it_is(env: jinja2.Environment) -> None:
    slots = SlotRenderer(env)
    render = Counting(env)
    odd = "Who helped \ue000first_name\ue001 or \ue000service\ue001 this week?"
    for person in ("Ana", "Ben", "Chi"):
        context = {**nudge_context(person, "https://x.test/u"), "question": odd}
        assert slots.render("nudge", context, render) == render("nudge", context)


def test_the_cache_is_bounded(env: jinja2.Environment) -> None:
    slots = SlotRenderer(env)
    render = Counting(env)
    for day in range(400):  # 400 different deadlines: never more entries than the bound
        context = {**nudge_context("Ana", "https://x.test/u"), "closes_at": CLOSES + timedelta(days=day)}
        slots.render("nudge", context, render)
        slots.render("nudge", context, render)
    from nudger.mail.slots import ENTRIES

    assert len(slots._entries) <= ENTRIES
