"""Where the directory and the policy come from, loaded together as `run`, `check`, `explain`
and reload do.

`--directory` is a YAML directory file (top-level `hosts:`), an LDAP settings file (top-level
`ldap:`), or an `ldap://host:port/BASE-DN` URL."""

from __future__ import annotations

from dataclasses import dataclass, replace

from .core.directory import Directory, parse_directory
from .core.errors import ConfigError, ConfigProblem, DirectoryRefused, DirectoryUnavailable
from .core.ldapsettings import is_ldap_url, parse_ldap_settings, settings_from_url
from .core.policy import Policy, load_policy
from .core.yamlsrc import LDict, load_yaml_text, read_yaml_text


@dataclass(frozen=True)
class Sources:
    directory: str
    policy: str
    pipeline: str | None = None  # `segctl run --pipeline`: in force over the policy's `pipeline`


class YamlDirectorySource:
    """The embedded directory: a YAML file, read on start and on reload only."""

    kind = "yaml"
    ttl = None

    def __init__(self, directory: Directory):
        self.directory = directory
        self.source = directory.source

    def read(self) -> tuple[Directory, list[ConfigProblem]]:
        return self.directory, []


class ParsedDirectory:
    """The YAML directory file parsed last, with its text. Reading the file again costs little;
    parsing its YAML about 0.2 s per 1,000 hosts. A reload whose directory file has not changed
    (a policy edit) takes the hosts parsed then (a Directory is immutable)."""

    def __init__(self) -> None:
        self._last: tuple[str, str, Directory] | None = None  # path, text, directory

    def get(self, path: str, text: str) -> Directory | None:
        last = self._last
        return last[2] if last is not None and last[0] == path and last[1] == text else None

    def keep(self, path: str, text: str, directory: Directory) -> None:
        self._last = (path, text, directory)


def open_directory(spec: str, parsed: ParsedDirectory | None = None):
    """The directory source `spec` names. Raises ConfigError for a broken file or settings.
    `parsed`: the directory file parsed last, taken again if the file has not changed."""
    if is_ldap_url(spec):
        from .ldapsource import LdapDirectorySource

        return LdapDirectorySource(settings_from_url(spec))
    text = read_yaml_text(spec)
    known = parsed.get(spec, text) if parsed is not None else None
    if known is not None:
        return YamlDirectorySource(known)
    data = load_yaml_text(text, spec)
    if isinstance(data, LDict) and "ldap" in data and "hosts" not in data:
        from .ldapsource import LdapDirectorySource

        return LdapDirectorySource(parse_ldap_settings(data, spec))
    directory = parse_directory(data, spec)
    if parsed is not None:
        parsed.keep(spec, text, directory)
    return YamlDirectorySource(directory)


def open_sources(sources: Sources, parsed: ParsedDirectory | None = None):
    """(directory source, policy), every problem of both in one ConfigError. `parsed`: as
    open_directory takes it."""
    problems = []
    directory = policy = None
    try:
        directory = open_directory(sources.directory, parsed)
    except ConfigError as exc:
        problems.extend(exc.problems)
    try:
        policy = load_policy(sources.policy)
    except ConfigError as exc:
        problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    if sources.pipeline is not None and policy is not None:
        policy = replace(policy, pipeline=sources.pipeline)
    return directory, policy


def load_sources(sources: Sources, warn=None) -> tuple[Directory, Policy]:
    """Both read now. A server that does not answer or refuses the bind is a ConfigError; so
    is an LDAP entry that had to be left out, unless `warn` takes those problems instead."""
    source, policy = open_sources(sources)
    try:
        directory, problems = source.read()
    except (DirectoryRefused, DirectoryUnavailable) as exc:
        raise ConfigError([ConfigProblem(sources.directory, None, str(exc))]) from None
    if problems and warn is None:
        raise ConfigError(problems)
    for problem in problems:
        warn(problem)
    return directory, policy
