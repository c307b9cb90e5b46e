"""Options several commands share, declared once: each command's function lists only its own options.

Typer reads a command's options from its function's signature, so `with_shared` gives Typer a signature
holding the shared options too, in the order `--help` shows them, and calls the command with the shared
values gathered in one dataclass. Imported every time sshd-setup starts: the standard library and typer only.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, TypeVar, get_type_hints

import typer

Args = TypeVar("Args")
Command = Callable[..., int | None]
KEYWORD = inspect.Parameter.KEYWORD_ONLY


class Shared(NamedTuple):
    """One shared option: the type Typer converts its value to, and its typer.Option (flags, default, help)."""

    annotation: Any
    option: Any


def with_shared(
    args_type: type[Args], options: Mapping[str, Shared], order: str
) -> Callable[[Command], Callable[..., None]]:
    """Give a command the shared `options` named in `order` (every option's name, in --help order).

    The command's first parameter receives `args_type(**the shared values)` (the fields it does not name keep
    their defaults); its other parameters are its own options. It returns its exit code (None: 0).
    """

    def decorate(command: Command) -> Callable[..., None]:
        own = dict(inspect.signature(command).parameters)
        args_name = next(iter(own))
        del own[args_name]
        own_types = get_type_hints(command)
        shared = [name for name in order.split() if name in options]
        if sorted(order.split()) != sorted([*shared, *own]):
            raise TypeError(f"{command.__name__}: order {order!r} must name each option once")
        fields = dataclasses.fields(args_type)  # type: ignore[arg-type]
        needed = {field.name for field in fields if field.default is dataclasses.MISSING}
        if not needed <= set(shared) <= {field.name for field in fields}:
            raise TypeError(f"{command.__name__}: order {order!r} must name {args_type.__name__}'s fields")

        def run(**values: Any) -> None:
            args = args_type(**{name: values.pop(name) for name in shared})
            raise typer.Exit(command(args, **values) or 0)

        parameters = [
            inspect.Parameter(name, KEYWORD, default=options[name].option, annotation=options[name].annotation)
            if name in options
            else own[name].replace(kind=KEYWORD, annotation=own_types[name])
            for name in order.split()
        ]
        run.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        run.__annotations__ = {parameter.name: parameter.annotation for parameter in parameters}
        run.__name__, run.__qualname__, run.__doc__ = command.__name__, command.__qualname__, command.__doc__
        run.__module__ = command.__module__
        return run

    return decorate
