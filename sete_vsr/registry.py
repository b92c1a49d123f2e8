"""One small typed registry for everything the package finds by name: methods, metrics, commands, architectures.

An :class:`Entry` names a factory by import path (``"package.module:attribute"``), so a registry can be listed and
its options checked without importing any factory: a broken optional dependency of one entry never breaks the
others. Its options are a frozen dataclass; values given as text (the command line, ``--method-option KEY=VALUE``)
are converted and validated once, by :func:`parse_options`, against the dataclass's field types:

=====================  ================================================================
field type             text accepted
=====================  ================================================================
``bool``               :func:`~sete_vsr.options.as_bool` words (``true``/``false``...); junk is an error
``int``, ``float``     numbers (``"1e-2"`` is a float, not an int)
``str``                anything
``Literal[...]``       one of the listed words
``tuple[str, ...]``    comma-separated words
``X | None``           ``X``, or ``""`` for None
=====================  ================================================================

The factory is then called as ``factory(options=options, **entry.presets)`` (or ``factory(**entry.presets)`` for an
entry without options), so defaults live in one place: the dataclass.
"""

from __future__ import annotations

import dataclasses
import importlib
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import SeteVSRError
from .options import as_bool


@dataclass(frozen=True)
class Entry:
    """One thing found by name.

    Attributes:
        name: what users type.
        target: ``"package.module:attribute"`` of the factory (a class or function), imported on first use; a
            module for commands (``"sete_vsr.commands.eval"``, which has ``add_arguments`` and ``run``).
        label: one line for listings and help texts.
        options: the frozen dataclass of the options the factory takes; ``None`` for none.
        presets: fixed keyword arguments of this entry (``which="psnr"``, ``base="basicvsr-vimeo-bi"``); not options.
    """

    name: str
    target: str
    label: str = ""
    options: type | None = None
    presets: Mapping[str, Any] = field(default_factory=dict)

    def load(self) -> Any:
        """The factory itself (imports its module); a target without ``:attribute`` is the module."""
        module_name, _, attribute = self.target.partition(":")
        module = importlib.import_module(module_name)
        return getattr(module, attribute) if attribute else module

    def option_names(self) -> frozenset[str]:
        """The names of the options the entry takes (empty without options)."""
        return option_names(self.options) if self.options is not None else frozenset()

    def build(self, options: Any = None, **arguments: Any) -> Any:
        """Call the factory with ``options`` (an instance of :attr:`options`; default: all defaults) and the presets,
        updated by ``arguments`` (keyword arguments of the factory itself, for callers in code)."""
        keywords = {**self.presets, **arguments}
        if self.options is None:
            return self.load()(**keywords)
        return self.load()(options=options if options is not None else self.options(), **keywords)


class Registry:
    """Entries of one kind (``"method"``, ``"metric"``...) by name, in the order they were added."""

    def __init__(self, kind: str, entries: tuple[Entry, ...] = ()):
        self.kind = kind
        self._entries: dict[str, Entry] = {}
        for entry in entries:
            self.add(entry)

    def add(self, entry: Entry) -> None:
        self._entries[entry.name] = entry

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._entries.values())

    def names(self) -> list[str]:
        return list(self._entries)

    def __getitem__(self, name: str) -> Entry:
        """The entry called ``name``.

        Raises:
            SeteVSRError: an unknown name, with the known ones.
        """
        if name not in self._entries:
            raise SeteVSRError(f"unknown {self.kind} {name!r}; available: {', '.join(sorted(self._entries))}")
        return self._entries[name]


def option_names(options_class: type) -> frozenset[str]:
    """The field names of an options dataclass."""
    return frozenset(f.name for f in dataclasses.fields(options_class))


def non_default_options(options: Any) -> dict[str, Any]:
    """The fields of an options instance that differ from their defaults, by name, in field order."""
    changed = {}
    for f in dataclasses.fields(options):
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        value = getattr(options, f.name)
        if default is dataclasses.MISSING or value != default:
            changed[f.name] = value
    return changed


def parse_options(options_class: type, given: Mapping[str, Any], owner: str) -> Any:
    """An instance of ``options_class`` from ``given`` (text or typed values), every key checked and converted.

    Args:
        options_class: a dataclass whose fields have the types of the module docstring's table.
        given: option name -> value; values already of the field's type are kept as they are.
        owner: who takes the options, for messages (``"basicvsr-vimeo-bi"``).

    Raises:
        SeteVSRError: a key the class has no field for, a value that does not convert, a required field not
            given, or a check of the class's ``__post_init__`` that fails; one line each.
    """
    known = option_names(options_class)
    unknown = sorted(set(given) - known)
    if unknown:
        raise SeteVSRError(
            f"{owner} does not take the option(s) {', '.join(unknown)}; it takes: {', '.join(sorted(known)) or 'none'}"
        )
    hints = typing.get_type_hints(options_class)
    values = {key: _convert(value, hints[key], f"{owner}: option {key}") for key, value in given.items()}
    missing = [
        f.name
        for f in dataclasses.fields(options_class)
        if f.name not in values and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise SeteVSRError(f"{owner} needs the option(s) {', '.join(missing)}")
    return options_class(**values)


def _convert(value: Any, hint: Any, where: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None or value == "":
            if type(None) in args:
                return None
        kinds = [a for a in args if a is not type(None)]
        if len(kinds) != 1:
            raise TypeError(f"{where}: unsupported option type {hint}")
        return _convert(value, kinds[0], where)
    if origin is Literal:
        if value not in args:
            raise SeteVSRError(f"{where} must be one of {', '.join(map(str, args))}, got {value!r}")
        return value
    if origin is tuple:
        items = value.split(",") if isinstance(value, str) else list(value)
        return tuple(str(item).strip() for item in items if str(item).strip())
    if hint is bool:
        try:
            return as_bool(value)
        except SeteVSRError:
            raise SeteVSRError(f"{where} expects true or false, got {value!r}") from None
    if hint in (int, float):
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise SeteVSRError(f"{where} expects a number, got {value!r}")
        try:
            number = hint(value)
        except ValueError:
            kind = "an integer" if hint is int else "a number"
            raise SeteVSRError(f"{where} expects {kind}, got {value!r}") from None
        if hint is int and isinstance(value, float) and value != number:
            raise SeteVSRError(f"{where} expects an integer, got {value!r}")
        return number
    if hint is str:
        return str(value)
    raise TypeError(f"{where}: unsupported option type {hint}")
