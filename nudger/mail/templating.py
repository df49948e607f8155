"""The Jinja2 environment, built once and injected. HTML templates autoescape; text ones do not."""

from __future__ import annotations

from pathlib import Path

import jinja2

_PACKAGE = Path(__file__).resolve().parent.parent


def templates_dir() -> Path:
    """`nudger/templates` in an installed wheel; the repository's `templates/` in a checkout."""
    for candidate in (_PACKAGE / "templates", _PACKAGE.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("nudger's templates folder is missing (looked in the package and the checkout)")


def _autoescape(name: str | None) -> bool:
    return bool(name) and (name or "").endswith((".html.j2", ".html"))


def make_environment(folder: Path | None = None) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder or templates_dir())),
        autoescape=_autoescape,  # noqa: S701 (a function: on for HTML templates, off for text)
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,  # templates ship with the package: no stat() per render
    )
    return env
