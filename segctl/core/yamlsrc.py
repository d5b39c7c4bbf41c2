"""YAML loading that remembers where every value came from, for `FILE:LINE: message` errors."""

from __future__ import annotations

from typing import Any

import yaml

from .errors import ConfigError, ConfigProblem


class LDict(dict):
    """A mapping that knows its own line and the line of each key (1-based). An LDAP entry's
    fields have no line (None): their problems name the entry's DN instead."""

    line: int | None = 0
    lines: dict

    def line_of(self, key: Any) -> int | None:
        return self.lines.get(key, self.line)


class LList(list):
    """A sequence that knows its own line and the line of each item (1-based)."""

    line: int = 0
    lines: list

    def line_of(self, index: int) -> int:
        return self.lines[index] if 0 <= index < len(self.lines) else self.line


_SCALARS = yaml.SafeLoader
# Aliases let a few lines name millions of values (`a: &a [x, x]`, `b: &b [*a, *a]`, ...); text
# from the API must not buy that, so a document may hold only so many values per character.
VALUES_PER_CHARACTER = 2
VALUES_AT_LEAST = 10_000


class _Budget:
    def __init__(self, text: str):
        self.left = VALUES_AT_LEAST + VALUES_PER_CHARACTER * len(text)


def _convert(node: yaml.Node, loader: yaml.SafeLoader, file: str, problems: list, budget: _Budget) -> Any:
    budget.left -= 1
    if budget.left < 0:
        raise ConfigError([ConfigProblem(file, node.start_mark.line + 1, "YAML: aliases expand to too many values")])
    if isinstance(node, yaml.MappingNode):
        out = LDict()
        out.line = node.start_mark.line + 1
        out.lines = {}
        for key_node, value_node in node.value:
            key = _convert(key_node, loader, file, problems, budget)
            line = key_node.start_mark.line + 1
            if isinstance(key, (dict, list)):
                problems.append(ConfigProblem(file, line, "a key must be a plain value"))
                continue
            if key in out:
                problems.append(ConfigProblem(file, line, f"duplicate key {key!r}"))
                continue
            out[key] = _convert(value_node, loader, file, problems, budget)
            out.lines[key] = line
        return out
    if isinstance(node, yaml.SequenceNode):
        seq = LList()
        seq.line = node.start_mark.line + 1
        seq.lines = []
        for item in node.value:
            seq.append(_convert(item, loader, file, problems, budget))
            seq.lines.append(item.start_mark.line + 1)
        return seq
    return loader.construct_object(node, deep=True)


def load_yaml_text(text: str, file: str) -> Any:
    """Parse YAML text; raise ConfigError naming the file and line of any syntax problem."""
    loader = None
    try:
        loader = yaml.SafeLoader(text)
        node = loader.get_single_node()
        problems: list[ConfigProblem] = []
        data = None if node is None else _convert(node, loader, file, problems, _Budget(text))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise ConfigError([ConfigProblem(file, line, f"YAML syntax: {exc.problem}")]) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, max(0, exc.position)) + 1
        raise ConfigError([ConfigProblem(file, line, f"YAML: character {exc.character!r} is not allowed")]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([ConfigProblem(file, 1, f"YAML: {exc}")]) from None
    except RecursionError:  # the parser recurses once per level of nesting
        raise ConfigError([ConfigProblem(file, 1, "YAML: nested too deeply")]) from None
    finally:
        if loader is not None:
            loader.dispose()
    if problems:
        raise ConfigError(problems)
    return data


def read_yaml_text(path: str) -> str:
    """The text of a YAML file; an unreadable file is a ConfigError."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigProblem(path, 1, f"cannot read: {exc}")]) from None


def load_yaml_file(path: str) -> Any:
    """Read and parse one YAML file; unreadable files are a ConfigError too."""
    return load_yaml_text(read_yaml_text(path), path)
