"""A command group that builds a command only when it is asked for (issue #21).

Typer converts the signature of every command of an app into click options before it runs any
(~50 ms for mlfactory's ~40 commands and groups), and ``cli/_main.py`` imported every command
module to register them. A :class:`LazyGroup` knows its commands by name from a static table:
click's ``get_command`` imports the one asked for and converts it; a group is made without its
commands, each converted when first asked for. ``mlfactory data ingest`` pays for that command
alone; ``mlfactory --help`` and shell completion still list every command (they ask for each)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass
from functools import partial
from importlib import import_module
from typing import TYPE_CHECKING, Any, ClassVar

import typer
from typer.core import TyperGroup
from typer.main import get_command_from_info, get_command_name, get_group_from_info

if TYPE_CHECKING:
    from click import Command, Context

__all__ = ["Lazy", "LazyCommands", "LazyGroup"]


@dataclass(frozen=True)
class Lazy:
    """Where a command lives: ``target`` is ``"module:attribute"``, a command function or a
    Typer app (a group), registered as ``app.command(name)`` or ``app.add_typer(x, name=name)``
    would; ``registers`` are modules imported first, in order, whose decorators add commands to
    that app."""

    target: str
    registers: tuple[str, ...] = ()

    def load(self) -> Any:
        """The command function or Typer app, its modules imported."""
        module, _, attribute = self.target.partition(":")
        found = getattr(import_module(module), attribute)
        for name in self.registers:
            import_module(name)
        return found


class LazyCommands(MutableMapping[str, "Command"]):
    """A group's commands by name, in a fixed order: those built, and the others, built when
    first read (iterating gives names only; reading every value builds every command)."""

    def __init__(self, built: dict[str, Command], pending: dict[str, Callable[[], Command]]):
        self._built = dict(built)
        self._pending = {name: make for name, make in pending.items() if name not in built}
        self._order = [*pending, *(name for name in built if name not in pending)]

    def __getitem__(self, name: str) -> Command:
        if name not in self._built:
            if name not in self._pending:
                raise KeyError(name)
            self._built[name] = self._pending.pop(name)()
        return self._built[name]

    def __setitem__(self, name: str, command: Command) -> None:
        self._pending.pop(name, None)
        self._built[name] = command
        if name not in self._order:
            self._order.append(name)

    def __delitem__(self, name: str) -> None:
        if name not in self._order:
            raise KeyError(name)
        self._built.pop(name, None)
        self._pending.pop(name, None)
        self._order.remove(name)

    def __contains__(self, name: object) -> bool:
        return name in self._order

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._order))

    def __len__(self) -> int:
        return len(self._order)


class LazyGroup(TyperGroup):
    """A Typer group whose commands of :attr:`lazy` are imported and converted when first asked
    for; :attr:`lazy`'s order is the order of ``--help`` (commands registered on the app itself
    and absent from it come after)."""

    lazy: ClassVar[dict[str, Lazy]] = {}
    pretty_exceptions_short: ClassVar[bool] = True  # as the Typer app that makes this group

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        pending = {name: partial(self._build, name, where) for name, where in self.lazy.items()}
        self.commands = LazyCommands(dict(self.commands), pending)

    def list_commands(self, ctx: Context) -> list[str]:
        return list(self.commands)

    def _build(self, name: str, where: Lazy) -> Command:
        """The click command (or group) Typer would have made of ``where`` under ``name``."""
        found = where.load()
        if isinstance(found, typer.Typer):
            return self._group(name, found)
        holder = typer.Typer()
        holder.command(name)(found)
        return get_command_from_info(
            holder.registered_commands[0],
            pretty_exceptions_short=self.pretty_exceptions_short,
            rich_markup_mode=self.rich_markup_mode,
        )

    def _group(self, name: str, sub: typer.Typer) -> Command:
        """``sub`` as ``app.add_typer(sub, name=name)`` makes it, its commands built when read."""
        shell = copy.copy(sub)  # the group itself (callback, help, class): no command converted
        shell.registered_commands = []
        holder = typer.Typer()
        holder.add_typer(shell, name=name)
        group = get_group_from_info(
            holder.registered_groups[0],
            pretty_exceptions_short=self.pretty_exceptions_short,
            rich_markup_mode=self.rich_markup_mode,
            suggest_commands=self.suggest_commands,
        )
        pending = {
            info.name or get_command_name(info.callback.__name__): partial(
                get_command_from_info,
                info,
                pretty_exceptions_short=self.pretty_exceptions_short,
                rich_markup_mode=self.rich_markup_mode,
            )
            for info in sub.registered_commands
        }
        group.commands = LazyCommands(dict(group.commands), pending)
        return group
