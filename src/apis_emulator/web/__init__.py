"""Web layer: the HTTP API of specification §5, the page, and the server around them."""

from .app import create_app

__all__ = ["create_app"]
