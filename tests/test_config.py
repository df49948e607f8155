"""Config: the example loads; every error names the file and the dotted key; secrets never print."""

from __future__ import annotations

from pathlib import Path

import pytest

from nudger.config import (
    ConfigError,
    Secret,
    Secrets,
    Settings,
    TlsMode,
    load_settings,
    parse_settings,
    resolve_secrets,
)

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "config.example.toml"

GOOD_ENV = {
    "NUDGER_SECRET": "a-signing-secret-of-32-characters",
    "NUDGER_SMTP_PASSWORD": "smtp-pass-value",
    "NUDGER_IMAP_PASSWORD": "imap-pass-value",
}

PROGRAMME = """
[[programme]]
key = "weekly"
name = "Weekly"
[[programme.questions]]
text = "What did you learn?"
"""


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    return info.value.problems


# ------------------------------------------------------------------------------------ the example


def with_imap_enabled(tmp_path: Path) -> Path:
    """The example with its commented-out [inbound.imap] block switched on (it must be valid too)."""
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    start = lines.index("# [inbound.imap]")
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("#")), len(lines))
    lines[start:end] = [line.removeprefix("# ") for line in lines[start:end]]
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_example_config_loads_and_validates(tmp_path: Path) -> None:
    plain = load_settings(EXAMPLE)
    assert plain.inbound.imap is None  # listener only, until the admin switches IMAP on
    assert plain.inbound.listener is not None
    settings = load_settings(with_imap_enabled(tmp_path))
    assert [p.key for p in settings.programmes] == ["weekly-reflection", "new-managers"]
    prog = settings.programme("weekly-reflection")
    assert (prog.schedule.weekday, prog.schedule.time) == ("tue", "10:00")
    assert len(prog.questions) == 5
    assert prog.reminder is not None
    assert prog.questions[-1].follows_up_weeks == 2
    managers = settings.programme("new-managers")
    assert (managers.schedule.every, managers.audience.tags) == ("2 weeks", ["new-manager"])
    assert settings.smtp.port == 587
    assert settings.smtp.tls == TlsMode.STARTTLS
    assert settings.inbound.imap is not None
    assert settings.inbound.imap.mailboxes == ["INBOX"]
    assert settings.report.anonymity_threshold == 5


def test_example_config_resolves_its_secrets_from_the_environment(tmp_path: Path) -> None:
    settings = load_settings(with_imap_enabled(tmp_path))
    secrets = resolve_secrets(settings, GOOD_ENV, str(EXAMPLE))
    assert secrets.signing_key.reveal() == GOOD_ENV["NUDGER_SECRET"]
    assert secrets.smtp_password.reveal() == "smtp-pass-value"
    assert secrets.imap_password.reveal() == "imap-pass-value"


# ------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("toml", "key", "fragment"),
    [
        ('[smtp]\nport = "x"\n', "smtp.port", 'not a valid port "x"'),
        ("[smtp]\nport = 70000\n", "smtp.port", 'not a valid port "70000"'),
        ("[smtp]\nport = -1\n", "smtp.port", "not a valid port"),
        ("[smtp]\nport = true\n", "smtp.port", "not a valid port"),
        ('[smtp]\ntls = "ssl"\n', "smtp.tls", '"ssl"'),
        ("[smtp]\nhostname = 'x'\n", "smtp.hostname", "unknown setting"),
        ("[smtpp]\nhost = 'x'\n", "smtpp", "unknown setting"),
        ('[inbound.imap]\nhost = "imap.x.com"\n', "inbound.imap.username", "required setting is missing"),
        ('[inbound.listener]\nport = "25x"\n', "inbound.listener.port", 'not a valid port "25x"'),
        ('[service]\nfrom_address = "nope"\n', "service.from_address", 'not an email address "nope"'),
        ('[service]\nreply_domain = "not a domain"\n', "service.reply_domain", "not a domain name"),
        ('[service]\nbase_url = "ftp://x"\n', "service.base_url", "not an http(s) URL"),
        ('[database]\nurl = "mysql://db/x"\n', "database.url", "unsupported database URL"),
        ('[redis]\nurl = "http://x"\n', "redis.url", "not a redis URL"),
        ("[report]\nanonymity_threshold = 2\n", "report.anonymity_threshold", '"2"'),
        ('[report]\nrecipients = ["ok@x.com", "bad"]\n', "report.recipients", 'not an email address "bad"'),
        (
            PROGRAMME.replace('name = "Weekly"', 'name = "Weekly"\nschedule = { weekday = "someday" }'),
            "programme[0].schedule.weekday",
            "not a weekday",
        ),
        (
            PROGRAMME.replace('name = "Weekly"', 'name = "Weekly"\nschedule = { time = "25:00" }'),
            "programme[0].schedule.time",
            'not a time of day "25:00"',
        ),
        (PROGRAMME.replace('name = "Weekly"\n', ""), "programme[0].name", "required setting is missing"),
        (PROGRAMME.replace('key = "weekly"', 'key = "Weekly Key"'), "programme[0].key", "programme key"),
        (
            PROGRAMME + 'colour = "red"\n',
            "programme[0].questions[0].colour",
            "unknown setting",
        ),
        (
            PROGRAMME
            + PROGRAMME.replace('"weekly"', '"second"').replace(
                'name = "Weekly"', 'name = "Second"\ncircle_size = 7'
            ),
            "programme[1].circle_size",
            '"7"',
        ),
        (
            '[[programme]]\nkey = "weekly"\nname = "Weekly"\nquestions = []\n',
            "programme[0].questions",
            "at least 1",
        ),
    ],
)
def test_each_error_names_the_file_and_the_dotted_key(
    tmp_path: Path, toml: str, key: str, fragment: str
) -> None:
    path = write(tmp_path, toml)
    problems = problems_of(path)
    prefix = f"{path}: {key}: "
    matching = [p for p in problems if p.startswith(prefix)]
    assert matching, f"no problem starts with {prefix!r}: {problems}"
    assert fragment in matching[0]


def test_duplicate_programme_keys_name_the_second_entry(tmp_path: Path) -> None:
    path = write(tmp_path, PROGRAMME + PROGRAMME.replace('name = "Weekly"', 'name = "Again"'))
    problems = problems_of(path)
    assert len(problems) == 1
    assert 'duplicate programme key "weekly"' in problems[0]
    # the admin must be told *which* entry to fix, as for every other error
    assert problems[0].startswith(f"{path}: programme[1].key: "), problems[0]


def test_several_errors_are_reported_at_once(tmp_path: Path) -> None:
    text = (
        '[smtp]\nport = "x"\nhostname = "h"\n'
        + "[report]\nanonymity_threshold = 1\n"
        + PROGRAMME.replace('name = "Weekly"', 'name = "Weekly"\nschedule = { weekday = "xyz" }')
    )
    path = write(tmp_path, text)
    keys = sorted(p.removeprefix(f"{path}: ").split(": ", 1)[0] for p in problems_of(path))
    assert keys == [
        "programme[0].schedule.weekday",
        "report.anonymity_threshold",
        "smtp.hostname",
        "smtp.port",
    ]


def test_parse_settings_uses_the_given_source_name() -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings({"smtp": {"port": "x"}}, "config.toml")
    assert info.value.problems == ['config.toml: smtp.port: not a valid port "x"']
    assert str(info.value) == 'config.toml: smtp.port: not a valid port "x"'


def test_an_empty_file_is_a_valid_config_with_defaults(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, ""))
    assert settings == Settings()
    assert settings.programmes == []


def test_invalid_toml_names_the_file_and_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[service]\nname = "x"\n[smtp\nport = 25\n')
    problems = problems_of(path)
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}: not valid TOML")
    assert "line 3" in problems[0]


def test_missing_file_names_the_file_and_suggests_init(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "config.toml"
    assert problems_of(path) == [f"{path}: file not found (run `nudger init` to write a starter)"]


@pytest.mark.parametrize(
    ("toml", "password"),
    [
        ('[database]\nurl = "postgresql://nudger:hunter2-db@db.internal/nudger"\n', "hunter2-db"),
        ('[redis]\nurl = "http://user:hunter2-redis@cache:6379/0"\n', "hunter2-redis"),
    ],
)
def test_passwords_in_rejected_urls_are_masked(tmp_path: Path, toml: str, password: str) -> None:
    problems = problems_of(write(tmp_path, toml))
    assert len(problems) == 1
    assert password not in problems[0]
    assert "***" in problems[0]


@pytest.mark.parametrize(
    "key", ["smtp.password_env", "inbound.imap.password_env", "service.signing_secret_env"]
)
def test_a_password_typed_into_an_env_setting_is_not_echoed(tmp_path: Path, key: str) -> None:
    """A common slip: the secret itself instead of the variable's name. The error must not copy it into
    terminals and CI logs."""
    table, name = key.rsplit(".", 1)
    extra = 'host = "imap.corp.test"\nusername = "u"\n' if table == "inbound.imap" else ""
    path = write(tmp_path, f'[{table}]\n{extra}{name} = "Tr0ub4dor&3 horse"\n')
    problems = problems_of(path)
    assert [p.split(": ")[1] for p in problems] == [key]
    assert "Tr0ub4dor" not in problems[0]


# ------------------------------------------------------------------------------------ secrets


def example(tmp_path: Path) -> Settings:
    return load_settings(with_imap_enabled(tmp_path))


def test_every_missing_secret_is_reported_with_its_key_and_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_secrets(example(tmp_path), {}, "config.toml")
    problems = info.value.problems
    assert len(problems) == 3
    assert problems[0].startswith("config.toml: service.signing_secret_env: ")
    assert "NUDGER_SECRET" in problems[0]
    assert problems[1].startswith("config.toml: smtp.password_env: ")
    assert "NUDGER_SMTP_PASSWORD" in problems[1]
    assert problems[2].startswith("config.toml: inbound.imap.password_env: ")
    assert "NUDGER_IMAP_PASSWORD" in problems[2]


@pytest.mark.parametrize(
    ("secret", "ok"),
    [("", False), ("x", False), ("fifteen-chars!!", False), ("sixteen-chars!!!", True), ("y" * 64, True)],
)
def test_signing_secret_must_have_at_least_16_characters(secret: str, ok: bool, tmp_path: Path) -> None:
    env = {**GOOD_ENV, "NUDGER_SECRET": secret}
    if ok:
        assert resolve_secrets(example(tmp_path), env).signing_key.reveal() == secret
        return
    with pytest.raises(ConfigError) as info:
        resolve_secrets(example(tmp_path), env, "config.toml")
    assert len(info.value.problems) == 1
    assert info.value.problems[0].startswith("config.toml: service.signing_secret_env: ")
    assert "16" in info.value.problems[0]


def test_no_password_needed_for_an_unauthenticated_relay_without_imap() -> None:
    settings = parse_settings({"smtp": {"password_env": ""}})
    secrets = resolve_secrets(settings, {"NUDGER_SECRET": "0123456789abcdef"})
    assert secrets.smtp_password.reveal() == ""
    assert not secrets.smtp_password
    assert secrets.imap_password.reveal() == ""


def test_secret_values_never_appear_in_config_errors(tmp_path: Path) -> None:
    env = {"NUDGER_SECRET": "short-s3cret", "NUDGER_SMTP_PASSWORD": "smtp-s3cret"}
    with pytest.raises(ConfigError) as info:
        resolve_secrets(example(tmp_path), env, "config.toml")
    text = "\n".join(info.value.problems) + str(info.value) + repr(info.value)
    assert "service.signing_secret_env" in text  # the test reads a real error
    assert "short-s3cret" not in text
    assert "smtp-s3cret" not in text


def test_secret_never_shows_its_value() -> None:
    secret = Secret("hunter2-top-secret")
    shown = [
        repr(secret),
        str(secret),
        f"{secret}",
        f"{secret!r}",
        f"{secret!s}",
        format(secret, ""),
        "%s" % secret,  # noqa: UP031 (the logging style)
        "%r" % secret,  # noqa: UP031
        str([secret]),
        str({"password": secret}),
    ]
    for text in shown:
        assert "hunter2" not in text
        assert "**" in text
    assert secret.reveal() == "hunter2-top-secret"


def test_secret_compares_by_value_and_is_falsy_when_empty() -> None:
    assert Secret("a") == Secret("a")
    assert Secret("a") != Secret("b")
    assert Secret("a") != "a"
    assert bool(Secret("a"))
    assert not Secret("")


def test_secrets_repr_hides_every_value(tmp_path: Path) -> None:
    secrets = resolve_secrets(example(tmp_path), GOOD_ENV)
    for text in (repr(secrets), str(secrets), f"{secrets}"):
        for value in GOOD_ENV.values():
            assert value not in text
    assert "signing_key=Secret(" in repr(secrets)
    assert isinstance(secrets, Secrets)
