"""A strict YAML reader for configuration files, environment values and secrets files.

PyYAML's ``safe_load`` follows YAML 1.1, which silently turns several spellings into
numbers nobody meant: ``0x10`` is 16, ``017`` is 15 (octal), ``1:30`` is 90
(base 60), ``1_000`` is 1000; and a key written twice keeps only its last value. In
a trading config each of these is a wrong number, or a setting that is not what the
file appears to say, so this reader:

* resolves plain (unquoted) scalars to ``int`` only in plain decimal form
  (``-12``, ``0``, ``+7``) and to ``float`` only in plain decimal form (``1.5``,
  ``.5``, ``1.5e-3``; ``.inf``/``.nan`` still parse and are rejected later by the
  settings' finite-number rule, which names the field);
* reads every other number-looking plain scalar (hex, octal, binary, leading zeros,
  base 60, digit separators) as a :class:`NonDecimal` marker that the caller turns
  into an error naming the field and the value (quoted, ``"0x10"`` stays a string);
* rejects a key that appears twice in one mapping, at any nesting level, naming the
  key and where it sits (merge keys ``<<`` may still be overridden).

Error messages never quote a line of the document (PyYAML's own messages do), since
the document may hold a secret: they give the problem, line and column.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

INT_TAG = "tag:yaml.org,2002:int"
FLOAT_TAG = "tag:yaml.org,2002:float"
MERGE_TAG = "tag:yaml.org,2002:merge"
NON_DECIMAL_TAG = "tag:mmbot,2024:non-decimal-number"

_DECIMAL_INT = re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$")
_DECIMAL_FLOAT = re.compile(
    r"""^(?:[-+]?[0-9]+\.[0-9]*(?:[eE][-+][0-9]+)?
    |[-+]?\.[0-9]+(?:[eE][-+][0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
_NON_DECIMAL = re.compile(
    r"""^[-+]?(?:0[xX][0-9a-fA-F_]+
    |0[oO][0-7_]+
    |0[bB][01_]+
    |0[0-9_]+(?:\.[0-9_]*)?
    |[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?
    |[0-9]+(?:_[0-9]*)+(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)?
    |[0-9]*\.[0-9]*_[0-9_]*(?:[eE][-+]?[0-9]+)?)$""",
    re.X,
)


@dataclass(frozen=True, slots=True)
class NonDecimal:
    """A plain scalar YAML 1.1 would read as a non-decimal number (``0x10``, ``017``, ``1:30``)."""

    text: str
    line: int

    @property
    def kind(self) -> str:
        t = self.text.lstrip("+-").lower()
        if t.startswith("0x"):
            return "a hex number"
        if t.startswith("0o"):
            return "an octal number"
        if t.startswith("0b"):
            return "a binary number"
        if ":" in t:
            return "a base-60 (sexagesimal) number"
        if "_" in t:
            return "a number with digit separators"
        return "a number with a leading zero, which YAML 1.1 reads as octal"

    def problem(self, shown: str | None = None) -> str:
        """``must be a plain decimal number, was 0x10 (a hex number); ...`` (``shown`` replaces the text)."""
        was = f"{self.text} ({self.kind})" if shown is None else shown
        return f"must be a plain decimal number, was {was}; write it in decimal digits, or quote it if it is meant as text"


class DuplicateKeyError(yaml.YAMLError):
    def __init__(self, key: str, where: str, first_line: int, line: int) -> None:
        super().__init__(f"key {key!r} appears twice in {where} (lines {first_line} and {line}); each key may appear once")
        self.key = key


def _strict_resolvers() -> dict[Any, list[tuple[str, re.Pattern[str]]]]:
    """SafeLoader's implicit resolvers without its int/float forms."""
    return {
        first: [(tag, rx) for tag, rx in resolvers if tag not in (INT_TAG, FLOAT_TAG)]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


class StrictLoader(yaml.SafeLoader):
    """SafeLoader with decimal-only numbers and non-decimal markers (see the module docstring)."""


StrictLoader.yaml_implicit_resolvers = _strict_resolvers()
# Order matters: the first resolver whose pattern matches wins.
StrictLoader.add_implicit_resolver(INT_TAG, _DECIMAL_INT, list("-+0123456789"))
StrictLoader.add_implicit_resolver(FLOAT_TAG, _DECIMAL_FLOAT, list("-+0123456789."))
StrictLoader.add_implicit_resolver(NON_DECIMAL_TAG, _NON_DECIMAL, list("-+0123456789."))


def _construct_non_decimal(loader: yaml.SafeLoader, node: yaml.Node) -> NonDecimal:
    return NonDecimal(str(node.value), node.start_mark.line + 1)


StrictLoader.add_constructor(NON_DECIMAL_TAG, _construct_non_decimal)


class StringsLoader(yaml.BaseLoader):
    """Every scalar is the string as written (secrets files: ``secret: 0123`` stays ``"0123"``)."""


def _key_text(node: yaml.Node) -> str:
    return str(node.value) if isinstance(node, yaml.ScalarNode) else f"<{type(node).__name__}>"


def _check_duplicates(node: yaml.Node, path: tuple[str, ...], seen_nodes: set[int]) -> None:
    if id(node) in seen_nodes:  # an alias: already checked where the anchor is
        return
    seen_nodes.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first: dict[tuple[str, str], int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == MERGE_TAG:
                continue
            if isinstance(key_node, yaml.ScalarNode):
                ident = (key_node.tag, str(key_node.value))
                line = key_node.start_mark.line + 1
                if ident in first:
                    where = "the top-level mapping" if not path else ".".join(path)
                    raise DuplicateKeyError(str(key_node.value), where, first[ident], line)
                first[ident] = line
            _check_duplicates(value_node, (*path, _key_text(key_node)), seen_nodes)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _check_duplicates(item, (*path, str(i)), seen_nodes)


def describe_yaml_error(exc: yaml.YAMLError) -> str:
    """One line: the problem and its position, never the offending text itself."""
    if isinstance(exc, DuplicateKeyError):
        return str(exc)
    if isinstance(exc, yaml.MarkedYAMLError):
        problem = exc.problem or exc.context or "syntax error"
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        return f"{problem}{where}"
    if isinstance(exc, yaml.reader.ReaderError):
        return f"unacceptable character #x{exc.character:04x} at position {exc.position}"
    return type(exc).__name__


def load(text: str, *, strings_only: bool = False) -> Any:
    """Parse one YAML document strictly; raises ``yaml.YAMLError`` (incl. DuplicateKeyError)."""
    loader: yaml.SafeLoader | yaml.BaseLoader = StringsLoader(text) if strings_only else StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_duplicates(node, (), set())
        return loader.construct_document(node)
    finally:
        loader.dispose()


def iter_non_decimal(data: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], NonDecimal]]:
    """Every NonDecimal marker in loaded data, with its key path."""
    if isinstance(data, NonDecimal):
        yield path, data
    elif isinstance(data, dict):
        for k, v in data.items():
            yield from iter_non_decimal(v, (*path, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from iter_non_decimal(v, (*path, i))
