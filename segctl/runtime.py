"""The running controller: the core, its saved state, and the actions that span the switches
(quarantine, release, reload), each confirmed by the switches before it returns."""

from __future__ import annotations

import contextlib
import gc
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol, TypedDict

from . import views
from .config import ParsedDirectory, Sources, open_sources
from .core.audit import AUDIT_INTERVAL
from .core.controller import Controller
from .core.decision import DecisionIndex
from .core.dircache import DirectoryCache
from .core.directory import Directory
from .core.errors import ConfigError, ConfigProblem, DirectoryRefused, DirectoryUnavailable
from .core.events import EventLog
from .core.flowlog import DirectoryLabels, FlowEdge, labels_in
from .core.flowmap import build_map
from .core.messages import Message, SwitchMessage, for_switches
from .core.policy import Policy, parse_policy
from .core.reach import ReachMap
from .core.reachview import reach_json
from .core.reloading import would_revoke
from .core.replay import replay
from .core.suggest import SuggestOptions, suggest
from .core.yamlsrc import load_yaml_text
from .flowstore import FlowStore, StoreError
from .recorder import FlowRecorder
from .state import load_state, save_state

LOG = logging.getLogger("segctl.runtime")
SAVE_RETRY = 5.0  # seconds between two tries to save the link ends after a failed one
IDLE_REFRESH_CHECK = 1.0  # seconds between looks when the directory is not a remote one


class Actions:
    """The actions under way: a quarantine, a release or a reload, from its start until its
    switches confirm it (actions may overlap: each waits for its own switches). Meanwhile the
    engineer waits, so what can wait does: Python's cyclic garbage collector is paused (a full
    collection walks every object of the controller: tens of milliseconds), and the app puts off
    its background work (writing the event log's file and the flow store, reading flow tables),
    which would otherwise run between the switches' confirmations. Everything resumes when the
    last action ends."""

    def __init__(self) -> None:
        self.under_way = 0
        self._collector_paused = False

    @contextlib.contextmanager
    def running(self):
        if not self.under_way:
            # (a collector someone else paused stays theirs to resume)
            self._collector_paused = gc.isenabled()
            gc.disable()
        self.under_way += 1
        try:
            yield
        finally:
            self.under_way -= 1
            if not self.under_way and self._collector_paused:
                gc.enable()


ACTIONS = Actions()


class NoFlowStore(Exception):
    """No recorded flows to answer from: the controller runs without a flow store (recording
    off), or its store cannot be read (the message says why)."""


class Confirmation(TypedDict):
    """Which switches answered a batch's barriers in time, and which did not."""

    confirmed: list[int]
    unconfirmed: list[int]


class Switches(Protocol):
    """The switches as the runtime sees them (segctl.app.OpenFlowSwitches on a real network)."""

    def send(self, messages: list[SwitchMessage]) -> None: ...

    def send_and_confirm(self, messages: list[SwitchMessage]) -> Confirmation: ...


class NoSwitches:
    """No switch connected (a runtime serving only the API, or a test)."""

    def send(self, messages: list[SwitchMessage]) -> None:
        pass

    def send_and_confirm(self, messages: list[SwitchMessage]) -> Confirmation:
        return {"confirmed": [], "unconfirmed": []}


def run_inline(function: Callable[[], Any]) -> Any:
    return function()


class Runtime:
    """Owns the core controller, its saved state, and the switches it sends to."""

    def __init__(
        self,
        sources: Sources,
        events: EventLog,
        state_dir: str | None = None,
        switches: Switches | None = None,
        run_blocking: Callable[[Callable[[], Any]], Any] = run_inline,
        audit_interval: float = AUDIT_INTERVAL,
        store: FlowStore | None = None,
    ):
        self.sources = sources
        self.events = events
        self.state_dir = state_dir
        self.switches: Switches = switches or NoSwitches()
        # How blocking directory reads run: inline, or (under Ryu) in an OS thread.
        self.run_blocking = run_blocking
        self.parsed = ParsedDirectory()  # a reload parses the directory file again only if it changed
        self.source, policy = open_sources(sources, self.parsed)
        # A remote directory (LDAP) is cached and re-read; a YAML file only on reload.
        self.cache = DirectoryCache(self.source.ttl, self.source.source) if self.source.ttl else None
        self.controller = Controller(self._first_read(), policy, events, audit_interval)
        self.started = time.time()
        self._reach: ReachMap | None = None  # built at the first reach question
        if state_dir is not None:
            # StateError propagates: a state we cannot read must stop the start.
            saved = load_state(state_dir)
            self.controller.restore_quarantine(saved["quarantine"])
            self.controller.remember_link_ends(saved["link_ends"])
        self._saved_link_ends: set | None = None  # what the state file holds (None: unknown)
        self._retry_save_at = 0.0  # (monotonic) after a failed link-ends save, when to try again
        # The flow store (None: recording off); the event log taps every decision into it.
        self.store = store
        self._labels: DirectoryLabels | None = None
        self.recorder = FlowRecorder(store, self._labels_now, run_blocking) if store is not None else None
        if self.recorder is not None:
            events.tap = self.recorder.tap

    def apply(self, messages: list[Message]) -> None:
        """Carry out what the core returned: save the state if it asks, then send the rest."""
        switch_messages, save = for_switches(messages)
        if save:
            self.save()
        if switch_messages:
            self.switches.send(switch_messages)

    def confirm(self, messages: list[Message]) -> Confirmation:
        """Like apply(), then wait for the switches to confirm the batch's barriers."""
        switch_messages, save = for_switches(messages)
        if save:
            self.save()
        return self.switches.send_and_confirm(switch_messages)

    def save(self) -> None:
        if self.state_dir is not None:
            ledger = self.controller.ledger
            save_state(self.state_dir, {"quarantine": self.quarantine_view(), "link_ends": ledger.link_ends()})
            self._saved_link_ends = ledger.link_end_set()

    def save_if_links_changed(self) -> None:
        """Save the state when the link ends differ from the saved ones (called ten times a
        second: links found at startup are saved together, not one file write each; a set
        compared, not a list sorted, while nothing changes)."""
        if self.state_dir is None or self.controller.ledger.link_end_set() == self._saved_link_ends:
            return
        if time.monotonic() < self._retry_save_at:
            return
        try:
            self.save()
        except OSError as exc:
            # The link ends are a hint for the next start, not worth stopping enforcement (the
            # discovery loop is fail_fast): a full or failing disk is said, and tried again later.
            LOG.warning("state: cannot save the link ends (trying again in %.0f s): %s", SAVE_RETRY, exc)
            self._retry_save_at = time.monotonic() + SAVE_RETRY

    # -- views -------------------------------------------------------------------------------
    def hosts_view(self) -> list[dict]:
        return views.hosts_view(self.controller.ledger)

    def host_view(self, name_or_mac: str) -> dict | None:
        return views.find_host_view(self.controller.ledger, name_or_mac)

    def quarantine_view(self) -> list[dict]:
        return views.quarantine_view(self.controller.ledger)

    def connections_view(self) -> list[dict]:
        return views.connections_view(self.controller.ledger)

    def audit_view(self) -> dict:
        """Each switch's last flow-table audit: when, entries read, findings (a few shown)."""
        return self.controller.auditor.view()

    def reach_view(self, host: str, hops: int, reverse: bool, since: float | None) -> dict | None:
        """The blast radius of `host` (None if the directory does not know it). Raises ValueError
        for hops out of range."""
        ledger = self.controller.ledger
        found = ledger.directory.find(host)
        if found is None:
            return None
        reach = self._reach_map().reach(found, hops, reverse)
        attached = {binding.host.name for binding in ledger.bindings.by_mac.values()}
        try:
            seen = self.recorded_edges(since)
        except NoFlowStore:
            seen = None  # reach is the policy's; what was seen is shown where it is known
        return reach_json(reach, attached, seen)

    def _reach_map(self) -> ReachMap:
        """The reach map of the directory, policy and quarantine in force; built again only
        when one of them changed."""
        ledger, built = self.controller.ledger, self._reach
        quarantined = frozenset(ledger.quarantined)
        if (
            built is None
            or built.directory is not ledger.directory
            or built.index is not ledger.index
            or built.quarantined != quarantined
        ):
            built = self._reach = ReachMap(ledger.directory, ledger.index, quarantined)
        return built

    # -- recorded flows: the map and the suggested policy ------------------------------------
    def flow_map(self, by: tuple[str, ...], since: float | None, verdict: str | None) -> dict:
        """The map of flows recorded since `since` seconds ago, with the running policy's
        status (an index of its own: built in another thread). Raises NoFlowStore."""
        edges = self.recorded_edges(since)
        directory, policy = labels_in(self.controller.directory), self.controller.policy
        return self.run_blocking(lambda: build_map(edges, by, DecisionIndex(policy), directory, verdict).to_json())

    def suggest_policy(self, options: SuggestOptions, since: float | None) -> dict:
        """A draft policy from the flows recorded since `since` seconds ago. Raises NoFlowStore."""
        edges = self.recorded_edges(since)
        directory = labels_in(self.controller.directory)
        return self.run_blocking(lambda: suggest(edges, options, directory).to_json())

    # -- actions -----------------------------------------------------------------------------
    def quarantine(self, host: str, reason: str, by: str) -> dict:
        """Cut `host` off everywhere; saved before the switches are told, so a crash in between
        still finds it quarantined after the restart. Raises UnknownHost."""
        started = time.monotonic()
        name, _ = self.controller.quarantine_target(host)
        with ACTIONS.running():
            messages = self.controller.quarantine(name, reason, time.time(), by=by)
            self.save()
            switches = self.confirm(messages)
        return dict(self.quarantined(name), switches=switches, seconds=round(time.monotonic() - started, 4))

    def release(self, host: str, by: str) -> dict:
        with ACTIONS.running():
            messages = self.controller.release(host, time.time(), by=by)
            self.save()
            return {"released": host, "switches": self.confirm(messages)}

    def quarantined(self, name: str) -> dict:
        return self.controller.quarantined[name].to_json()

    # -- the directory ----------------------------------------------------------------------
    def _first_read(self) -> Directory:
        """The directory to start with. A remote one that refuses us (bad credentials, wrong
        base) stops the start; one that does not answer starts us with nobody trusted."""
        if self.cache is None:
            return self.source.read()[0]
        now = time.time()
        try:
            directory, problems = self.source.read()
        except DirectoryRefused as exc:
            raise ConfigError([ConfigProblem(self.sources.directory, None, str(exc))]) from None
        except DirectoryUnavailable as exc:
            self.cache.failed(str(exc), now)
            LOG.warning("%s; starting with no host trusted, retrying", exc)
            self.events.record("directory", now, status=self.cache.status, error=str(exc))
            return self.cache.effective((), now)
        self._stored(self.cache, directory, problems, now)
        return directory

    def _stored(self, cache: DirectoryCache, directory: Directory, problems: list, now: float) -> None:
        was, known = cache.status, {str(p) for p in cache.problems}
        cache.stored(directory, problems, now)
        for problem in problems:
            if str(problem) not in known:
                LOG.warning("directory entry left out: %s", problem)
        if was != "ok":
            self.events.record("directory", now, status="ok", hosts=len(directory), left_out=len(problems))

    def next_refresh_in(self, now: float) -> float:
        """Seconds until refresh_directory() has work; a reload may switch between a YAML
        directory (nothing to refresh) and LDAP at any time."""
        return self.cache.next_read_in(now) if self.cache is not None else IDLE_REFRESH_CHECK

    def refresh_directory(self) -> None:
        """One scheduled read of a remote directory, then revoke whatever it no longer allows.
        A failed read is logged and retried; it never raises. Nothing to do for a YAML file."""
        if self.cache is None:
            return
        try:
            directory, problems = self.run_blocking(self.source.read)
        except (DirectoryUnavailable, DirectoryRefused) as exc:
            now = time.time()
            was = self.cache.status
            self.cache.failed(str(exc), now)
            if was != self.cache.status:
                LOG.warning("directory %s: %s", self.cache.status, exc)
                self.events.record("directory", now, status=self.cache.status, error=str(exc))
        else:
            self._stored(self.cache, directory, problems, time.time())
        self._apply_directory()

    def _apply_directory(self) -> None:
        if self.cache is None:
            return
        now = time.time()
        current = self.controller.directory
        directory = self.cache.effective(self.controller.bindings.by_mac, now)
        if directory.by_mac == current.by_mac:
            return
        with ACTIONS.running():
            messages, revoked = self.controller.reload(directory, self.controller.policy, now)
            self.confirm(messages)
        self.events.record("directory-change", now, hosts=len(directory), revoked=revoked, source=directory.source)

    def reload(self, by: str = "signal") -> dict:
        """Re-read the directory and the policy. On error keep what runs and return the
        problems; on success revoke what is no longer allowed, confirmed by the switches."""
        try:
            source, policy = open_sources(self.sources, self.parsed)
            directory, problems = self.run_blocking(source.read)
        except ConfigError as exc:
            return self._reload_failed([str(problem) for problem in exc.problems], by)
        except (DirectoryUnavailable, DirectoryRefused) as exc:
            return self._reload_failed([f"{self.sources.directory}: {exc}"], by)
        self.source = source
        if source.ttl:
            if self.cache is None or self.cache.source != source.source or self.cache.ttl != source.ttl:
                self.cache = DirectoryCache(source.ttl, source.source)
            self._stored(self.cache, directory, problems, time.time())
        else:
            self.cache = None
        with ACTIONS.running():
            messages, revoked = self.controller.reload(directory, policy, time.time())
            switches = self.confirm(messages)
        report = {
            "ok": True,
            "revoked": revoked,
            "hosts": len(directory),
            "rules": len(policy.rules),
            "mode": policy.mode,
            "modes": dict(policy.modes),
        }
        self.events.record_later("reload", None, [dict(by=by, **report)])  # after its revokes' records
        return dict(report, switches=switches)

    # -- what-if: a draft or the files on disk replayed against the recorded flows ----------
    def simulate(self, draft_text: str, since: float | None, top: int) -> dict:
        """The draft policy (YAML text, its problems named `draft:LINE`) replayed against the
        flows recorded in the last `since` seconds. Raises ConfigError; applies nothing."""
        # In an OS thread under Ryu: a MiB of YAML takes seconds, which the switches must not wait.
        draft = self.run_blocking(lambda: parse_policy([(load_yaml_text(draft_text, "draft"), "draft")]))
        return self._replay(draft, self.controller.directory, since, top)

    def reload_dry_run(self, since: float | None, top: int) -> dict:
        """What reload() would do now, done to nothing: the files' problems, or the replay of
        the policy on disk and the number of connections it would revoke."""
        try:
            source, policy = open_sources(self.sources, self.parsed)
            directory, _ = self.run_blocking(source.read)
        except ConfigError as exc:
            return {"ok": False, "dry_run": True, "errors": [str(problem) for problem in exc.problems]}
        except (DirectoryUnavailable, DirectoryRefused) as exc:
            return {"ok": False, "dry_run": True, "errors": [f"{self.sources.directory}: {exc}"]}
        report = self._replay(policy, directory, since, top)
        revoked = would_revoke(self.controller.ledger, directory, policy)
        return dict(report, ok=True, dry_run=True, revoked=revoked, hosts=len(directory), rules=len(policy.rules))

    def _replay(self, draft: Policy, directory: Directory, since: float | None, top: int) -> dict:
        labels = labels_in(directory)
        edges = self.recorded_edges(since)
        running = self.controller.policy

        def decide_all() -> dict:
            # Indexes of its own: the controller's caches are neither shared across threads nor
            # flushed by a million replayed decisions.
            report = replay(edges, DecisionIndex(draft), DecisionIndex(running), labels)
            return report.to_json(top)

        # In an OS thread under Ryu: a long replay must not stall the switches' event loop.
        return dict(self.run_blocking(decide_all), since=since, mode=draft.mode)

    def recorded_edges(self, since: float | None) -> list[FlowEdge]:
        """The flow store's edges of the last `since` seconds. Raises NoFlowStore."""
        if self.store is None:
            raise NoFlowStore("this controller records no flows: it runs with --retention 0")
        try:
            return self.flow_edges(since)
        except StoreError as exc:
            raise NoFlowStore(f"the flow store cannot be read: {exc}") from None

    def _reload_failed(self, errors: list[str], by: str) -> dict:
        self.events.record("reload", ok=False, errors=errors, by=by)
        return {"ok": False, "errors": errors}

    # -- the flow store -----------------------------------------------------------------------
    def _labels_now(self) -> DirectoryLabels:
        # The directory of the moment the recorder writes (a reload swaps it), not of the start;
        # one view per directory, so the store sees when it changed.
        directory = self.controller.directory
        if self._labels is None or self._labels.directory is not directory:
            self._labels = DirectoryLabels(directory)
        return self._labels

    def record_flows(self) -> None:
        """Writes the decisions pending for the flow store (the app calls it every second)."""
        if self.recorder is not None:
            self.recorder.flush()

    def flow_edges(self, since: float | None = None) -> list[FlowEdge]:
        """The recorded edges seen in the last `since` seconds (all: None); [] with recording
        off. Writes what is pending first. Raises StoreError, ValueError for a bad `since`."""
        if self.store is None:
            return []
        self.record_flows()
        store = self.store
        return self.run_blocking(lambda: store.edges(since))

    def flow_store_health(self) -> dict:
        if self.store is None or self.recorder is None:
            return {"status": "off"}
        store = self.store
        try:
            stats = self.run_blocking(store.stats)
        except StoreError as exc:
            stats = {"path": store.path, "error": str(exc)}
        recording = self.recorder.view()
        failing = "error" in stats or recording["error"] is not None
        return {
            **stats,
            **recording,
            "status": "failing" if failing else "ok",
            "error": stats.get("error") or recording["error"],
        }

    def health(self) -> dict:
        c = self.controller
        return {
            "status": "ok",  # the controller serves; a degraded directory shows in "directory"
            "uptime": round(time.time() - self.started, 1),
            "mode": c.policy.mode,
            "modes": dict(c.policy.modes),
            "pipeline": c.policy.pipeline,
            "switches": sorted(c.topology.ports),
            "conntrack_switches": sorted(c.ledger.conntrack_switches),
            "links": len(c.topology.links()),
            "hosts": len(c.directory),
            "hosts_bound": len(c.bindings.by_mac),
            "connections": len(c.connections),
            "quarantined": len(c.quarantined),
            "packet_ins": c.packet_ins,
            "drift_findings": c.auditor.drift_findings,
            "directory": self.directory_health(),
            "flow_store": self.flow_store_health(),
        }

    def directory_health(self) -> dict:
        if self.cache is None:
            return {"status": "ok", "source": self.controller.directory.source, "hosts": len(self.controller.directory)}
        return self.cache.view(time.time())
