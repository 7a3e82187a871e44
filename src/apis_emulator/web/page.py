"""The page at ``/`` and its static files (specification §3, §4.1)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

if TYPE_CHECKING:
    from .state import WebState

__all__ = ["install_page"]

HERE = Path(__file__).resolve().parent


def install_page(app: FastAPI, state: WebState) -> None:
    """Serve the page, and the static files from the package (never a file outside it)."""
    templates = Environment(loader=FileSystemLoader(HERE / "templates"),
                            autoescape=select_autoescape(["html"]))
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index(request: Request) -> HTMLResponse:
        page = templates.get_template("index.html")
        return HTMLResponse(page.render(ids=state.emulator.ids, title="APIS HW emulator"))
