"""The web endpoint (`nudger web`): one-click unsubscribe, pause / resume, and joining by invitation."""

from nudger.web.app import create_app

__all__ = ["create_app"]
