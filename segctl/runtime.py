"""The running controller's state and the actions that span it: reload, and (later) the API."""

from __future__ import annotations

import logging
import time

from .config import Sources, load_sources
from .core.controller import Controller
from .core.errors import ConfigError
from .core.events import EventLog

LOG = logging.getLogger("segctl.runtime")


class Runtime:
    """Owns the core controller and knows how to reach the switches through the Ryu app."""

    def __init__(self, sources: Sources, events: EventLog):
        directory, policy = load_sources(sources)
        self.sources = sources
        self.events = events
        self.controller = Controller(directory, policy, events)
        self.app = None

    def attach(self, app) -> None:
        self.app = app

    def send(self, messages: list) -> None:
        if self.app is not None:
            self.app.send(messages)

    def reload(self) -> dict:
        """Re-read both files. On error keep what runs and return the problems; on success
        revoke what is no longer allowed. Returns a JSON-able report."""
        try:
            directory, policy = load_sources(self.sources)
        except ConfigError as exc:
            errors = [str(problem) for problem in exc.problems]
            self.events.record("reload", ok=False, errors=errors)
            return {"ok": False, "errors": errors}
        messages, revoked = self.controller.reload(directory, policy, time.time())
        self.send(messages)
        self.events.record(
            "reload",
            ok=True,
            revoked=revoked,
            hosts=len(directory),
            rules=len(policy.rules),
            mode=policy.mode,
        )
        return {
            "ok": True,
            "revoked": revoked,
            "hosts": len(directory),
            "rules": len(policy.rules),
            "mode": policy.mode,
        }
