"""YAML read for people's files (the settings file, the exceptions file): plain data, and the line
and column of every key and value, so an error can say where in the file it is.

Why PyYAML's composed nodes: each node carries `start_mark` (line and column), which is what lets
`config validate` and `exceptions import` name the line of a mistake; the standard library's
`tomllib` returns bare values with no positions. Only YAML's safe subset is read (SafeLoader: no
Python objects), and a key given twice in one mapping is refused: PyYAML would silently keep the
last one, so a reviewer reading the first would approve a value PartnerGuard never uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

# A path into the document: mapping keys and sequence indexes, from the root.
Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Position:
    """1-based line and column, as editors number them."""

    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.line}:{self.column}"


class YamlProblem(ValueError):
    """The text is not YAML PartnerGuard reads (syntax, a duplicate key, a non-string key)."""

    def __init__(self, position: Position, message: str) -> None:
        super().__init__(message)
        self.position = position
        self.message = message


@dataclass(frozen=True)
class LocatedDocument:
    """The document's data, and where each key (`keys`) and each value (`values`) starts."""

    data: Any
    keys: dict[Path, Position]
    values: dict[Path, Position]

    def position(self, path: Path) -> Position:
        """Where to point for a path: its key if it is a mapping entry, else its value, else the
        nearest enclosing entry (a missing key is reported at its parent)."""
        while path:
            if path in self.keys:
                return self.keys[path]
            if path in self.values:
                return self.values[path]
            path = path[:-1]
        return self.values.get((), Position(1, 1))


def _position(mark: Any) -> Position:
    return Position(mark.line + 1, mark.column + 1)


def load_located(text: str) -> LocatedDocument:
    """Parse one YAML document; raises YamlProblem with the position of the first mistake."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        keys: dict[Path, Position] = {}
        values: dict[Path, Position] = {}
        data = None if root is None else _convert(loader, root, (), keys, values)
        return LocatedDocument(data, keys, values)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        context = error.context or ""
        if context and error.context_mark and error.problem_mark and error.context_mark.line != error.problem_mark.line:
            context += f" started at line {error.context_mark.line + 1}"
        reason = ": ".join(part for part in (context, error.problem) if part)
        raise YamlProblem(_position(mark) if mark else Position(1, 1), f"not valid YAML: {reason}") from None
    except yaml.YAMLError as error:
        raise YamlProblem(Position(1, 1), f"not valid YAML: {error}") from None
    finally:
        loader.dispose()


def _convert(
    loader: yaml.SafeLoader, node: yaml.Node, path: Path, keys: dict[Path, Position], values: dict[Path, Position]
) -> Any:
    values[path] = _position(node.start_mark)
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                raise YamlProblem(_position(key_node.start_mark), f"a key must be text, got {key!r}")
            if key in result:
                first = keys[(*path, key)]
                raise YamlProblem(
                    _position(key_node.start_mark),
                    f"duplicate key {key!r} (first at line {first.line}); YAML would silently keep only the last",
                )
            keys[(*path, key)] = _position(key_node.start_mark)
            result[key] = _convert(loader, value_node, (*path, key), keys, values)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_convert(loader, item, (*path, index), keys, values) for index, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)
