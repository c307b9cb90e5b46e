"""Where the Jinja2 templates live: inside the installed package, or the repo's top-level templates/."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import jinja2

from sshd_setup.core.blocks import TEMPLATE_MARKERS


def templates_dir() -> Path:
    packaged = Path(__file__).parent / "templates"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "templates"


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.globals.update(TEMPLATE_MARKERS)
    return env
