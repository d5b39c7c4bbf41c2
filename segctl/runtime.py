"""The running controller: the core, its saved state, and the actions that span the switches
(quarantine, release, reload), each confirmed by the switches before it returns."""

from __future__ import annotations

import logging
import time

from .config import Sources, load_sources
from .core.controller import Controller
from .core.errors import ConfigError
from .core.events import EventLog
from .state import load_state, save_state

LOG = logging.getLogger("segctl.runtime")


class Runtime:
    """Owns the core controller and reaches the switches through the Ryu app once attached."""

    def __init__(self, sources: Sources, events: EventLog, state_dir: str | None = None):
        directory, policy = load_sources(sources)
        self.sources = sources
        self.events = events
        self.state_dir = state_dir
        self.controller = Controller(directory, policy, events)
        self.started = time.time()
        self.app = None
        if state_dir is not None:
            # StateError propagates: a state we cannot read must stop the start.
            self.controller.restore_quarantine(load_state(state_dir)["quarantine"])

    def attach(self, app) -> None:
        self.app = app

    def send(self, messages: list) -> None:
        if self.app is not None:
            self.app.send(messages)

    def confirm(self, messages: list) -> dict:
        if self.app is None:
            return {"confirmed": [], "unconfirmed": []}
        return self.app.send_and_confirm(messages)

    def save(self) -> None:
        if self.state_dir is not None:
            save_state(self.state_dir, {"quarantine": self.controller.quarantine_view()})

    # -- actions -----------------------------------------------------------------------------
    def quarantine(self, host: str, reason: str, by: str) -> dict:
        """Cut `host` off everywhere; saved before the switches are told, so a crash in between
        still finds it quarantined after the restart. Raises UnknownHost."""
        started = time.monotonic()
        name, _ = self.controller.quarantine_target(host)
        messages = self.controller.quarantine(name, reason, time.time(), by=by)
        self.save()
        switches = self.confirm(messages)
        entry = self.controller.quarantined[name]
        return dict(entry.to_json(), switches=switches, seconds=round(time.monotonic() - started, 4))

    def release(self, host: str, by: str) -> dict:
        messages = self.controller.release(host, time.time(), by=by)
        self.save()
        return {"released": host, "switches": self.confirm(messages)}

    def _name(self, host: str) -> str:
        return self.controller._quarantine_target(host)[0]

    def reload(self, by: str = "signal") -> dict:
        """Re-read both files. On error keep what runs and return the problems; on success
        revoke what is no longer allowed, confirmed by the switches."""
        try:
            directory, policy = load_sources(self.sources)
        except ConfigError as exc:
            errors = [str(problem) for problem in exc.problems]
            self.events.record("reload", ok=False, errors=errors, by=by)
            return {"ok": False, "errors": errors}
        messages, revoked = self.controller.reload(directory, policy, time.time())
        switches = self.confirm(messages)
        report = {
            "ok": True,
            "revoked": revoked,
            "hosts": len(directory),
            "rules": len(policy.rules),
            "mode": policy.mode,
        }
        self.events.record("reload", by=by, **report)
        return dict(report, switches=switches)

    def health(self) -> dict:
        c = self.controller
        return {
            "status": "ok",
            "uptime": round(time.time() - self.started, 1),
            "mode": c.policy.mode,
            "switches": sorted(c.topology.ports),
            "links": len(c.topology.links()),
            "hosts": len(c.directory),
            "hosts_bound": len(c.bindings.by_mac),
            "connections": len(c.connections),
            "quarantined": len(c.quarantined),
            "packet_ins": c.packet_ins,
            "directory": {"source": c.directory.source, "status": "ok"},
        }
