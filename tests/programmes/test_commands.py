"""parse_command and split_sharing_marker: four languages, durations, and what is *not* a command."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nudger.programmes.commands import (
    DEFAULT_PAUSE,
    Command,
    CommandName,
    parse_command,
    split_sharing_marker,
)

TODAY = date(2025, 3, 10)  # a Monday
DEFAULT_UNTIL = TODAY + DEFAULT_PAUSE


@pytest.mark.parametrize(
    ("text", "name"),
    [
        # stop
        ("stop", CommandName.STOP),
        ("Stop.", CommandName.STOP),
        ("STOP!", CommandName.STOP),
        ("unsubscribe", CommandName.STOP),
        ("Stop emails please", CommandName.STOP),
        ("Abmelden", CommandName.STOP),
        ("Bitte abmelden, danke", CommandName.STOP),
        ("désabonner", CommandName.STOP),
        ("Se désinscrire", CommandName.STOP),
        ("se desinscrire svp", CommandName.STOP),
        ("baja", CommandName.STOP),
        ("Darme de baja", CommandName.STOP),
        ("Cancelar suscripción, por favor", CommandName.STOP),
        # resume, skip, sharing, help
        ("resume", CommandName.RESUME),
        ("Fortsetzen", CommandName.RESUME),
        ("reprendre", CommandName.RESUME),
        ("Reanudar", CommandName.RESUME),
        ("skip", CommandName.SKIP),
        ("Skip this week", CommandName.SKIP),
        ("Überspringen", CommandName.SKIP),
        ("passer", CommandName.SKIP),
        ("saltar", CommandName.SKIP),
        ("private", CommandName.PRIVATE),
        ("Privat", CommandName.PRIVATE),
        ("privé", CommandName.PRIVATE),
        ("privado", CommandName.PRIVATE),
        ("[private]", CommandName.PRIVATE),
        ("share", CommandName.SHARE),
        ("teilen", CommandName.SHARE),
        ("partager", CommandName.SHARE),
        ("compartir", CommandName.SHARE),
        ("help", CommandName.HELP),
        ("Hilfe?", CommandName.HELP),
        ("aide", CommandName.HELP),
        ("ayuda", CommandName.HELP),
    ],
)
def test_commands_in_the_body(text: str, name: CommandName) -> None:
    assert parse_command(text, "Re: What did you learn?", today=TODAY) == Command(name)


@pytest.mark.parametrize(
    ("text", "until"),
    [
        ("pause", DEFAULT_UNTIL),
        ("Pause please", DEFAULT_UNTIL),
        ("pausieren", DEFAULT_UNTIL),
        ("pausar", DEFAULT_UNTIL),
        ("pause for 2 weeks", TODAY + timedelta(weeks=2)),
        ("Pause 3 days", TODAY + timedelta(days=3)),
        ("pause for two weeks", TODAY + timedelta(weeks=2)),
        ("pause for a month", date(2025, 4, 10)),
        ("Pausieren für 2 Wochen", TODAY + timedelta(weeks=2)),
        ("pause pour 2 semaines", TODAY + timedelta(weeks=2)),
        ("pausar por 2 semanas", TODAY + timedelta(weeks=2)),
        ("pause until 3 April", date(2025, 4, 3)),
        ("pause until April 3rd", date(2025, 4, 3)),
        ("Pause until 3 March", date(2026, 3, 3)),  # already past this year: next year
        ("pause until Monday", date(2025, 3, 17)),
        ("Pausieren bis zum 3. April, danke", date(2025, 4, 3)),
        ("pause jusqu'au 3 avril", date(2025, 4, 3)),
        ("pausar hasta el 3 de abril", date(2025, 4, 3)),
        ("pause until 2025-04-03", date(2025, 4, 3)),
        ("pause until further notice", DEFAULT_UNTIL),
        ("pause for 500 weeks", TODAY + timedelta(days=366)),  # capped at a year
    ],
)
def test_pause_durations(text: str, until: date) -> None:
    assert parse_command(text, "Re: q", today=TODAY) == Command(CommandName.PAUSE, until)


@pytest.mark.parametrize(
    "text",
    [
        "I think we should stop having so many meetings and focus on the work.",
        "Stop doing things nobody asked for.",  # short, but a reflection, not a command
        "Help others first.",
        "Sharing is caring",
        "Pause and reflect",
        "pause for 2 bananas",
        "I learned to pause before replying to angry emails.",
        "Stop\nI am really annoyed that these keep coming every single week",  # too long for a command
    ],
)
def test_reflections_are_not_commands(text: str) -> None:
    assert parse_command(text, "Re: q", today=TODAY) is None


def test_command_on_the_first_line_with_a_sign_off() -> None:
    assert parse_command("Stop\n\nThanks,\nAnna", "Re: q", today=TODAY) == Command(CommandName.STOP)
    assert parse_command("Pause for 2 weeks\nAnna", "Re: q", today=TODAY) == Command(
        CommandName.PAUSE, TODAY + timedelta(weeks=2)
    )


def test_sharing_marker_with_a_reflection_is_not_a_command() -> None:
    assert parse_command("Private\nI learned a lot", "Re: q", today=TODAY) is None


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("stop", Command(CommandName.STOP)),
        ("Re: unsubscribe", Command(CommandName.STOP)),
        ("RE: AW: Pause for 2 weeks", Command(CommandName.PAUSE, TODAY + timedelta(weeks=2))),
        ("SV: hjälp", None),
        ("AW: Hilfe", Command(CommandName.HELP)),
        ("Re: What did you learn this week?", None),
        ("", None),
    ],
)
def test_empty_body_falls_back_to_the_subject(subject: str, expected: Command | None) -> None:
    assert parse_command("", subject, today=TODAY) == expected
    assert parse_command("  \n\n ", subject, today=TODAY) == expected


def test_body_wins_over_subject() -> None:
    assert parse_command("I learned to listen.", "stop", today=TODAY) is None


@pytest.mark.parametrize(
    ("text", "subject", "expected"),
    [
        ("private\nI learned a lot.", "Re: q", (CommandName.PRIVATE, "I learned a lot.")),
        ("Private:\n\nI learned a lot.", "Re: q", (CommandName.PRIVATE, "I learned a lot.")),
        ("[private]\nI learned a lot.", "Re: q", (CommandName.PRIVATE, "I learned a lot.")),
        ("\n  PRIVATE  \nline one\nline two", "Re: q", (CommandName.PRIVATE, "line one\nline two")),
        ("private: I learned a lot.", "Re: q", (CommandName.PRIVATE, "I learned a lot.")),
        ("[private] I learned a lot.\nMore.", "Re: q", (CommandName.PRIVATE, "I learned a lot.\nMore.")),
        ("privat\nIch habe gelernt.", "AW: q", (CommandName.PRIVATE, "Ich habe gelernt.")),
        ("privé\nJ'ai appris.", "RE: q", (CommandName.PRIVATE, "J'ai appris.")),
        ("share\nI learned a lot.", "Re: q", (CommandName.SHARE, "I learned a lot.")),
        ("Teilen:\nIch habe gelernt.", "AW: q", (CommandName.SHARE, "Ich habe gelernt.")),
        ("compartir\nAprendí mucho.", "RE: q", (CommandName.SHARE, "Aprendí mucho.")),
        ("I learned a lot.", "Re: q [private]", (CommandName.PRIVATE, "I learned a lot.")),
        ("I learned a lot.", "[Share] Re: q", (CommandName.SHARE, "I learned a lot.")),
        ("Private thoughts: ranges beat numbers.", "Re: q", (None, "Private thoughts: ranges beat numbers.")),
        ("Sharing early helps.", "Re: q", (None, "Sharing early helps.")),
        ("I learned a lot.\nprivate", "Re: q", (None, "I learned a lot.\nprivate")),
        ("", "Re: q", (None, "")),
    ],
)
def test_split_sharing_marker(text: str, subject: str, expected: tuple[CommandName | None, str]) -> None:
    assert split_sharing_marker(text, subject) == expected


def test_dates_at_the_end_of_the_calendar_do_not_overflow() -> None:
    assert parse_command("pause for 2 months", "", today=date.max) == Command(CommandName.PAUSE, date.max)
    assert parse_command("pause until Monday", "", today=date.max) == Command(CommandName.PAUSE, date.max)


@settings(max_examples=200, deadline=None, database=None)
@given(st.text(max_size=200), st.text(max_size=80), st.dates(max_value=date(9000, 1, 1)))
def test_never_raises(text: str, subject: str, today: date) -> None:
    command = parse_command(text, subject, today=today)
    assert command is None or isinstance(command.name, CommandName)
    if command is not None and command.until is not None:
        assert today < command.until <= today + timedelta(days=366)
    marker, rest = split_sharing_marker(text, subject)
    assert marker in (None, CommandName.PRIVATE, CommandName.SHARE)
    assert len(rest) <= len(text)
