"""segctl: a zero-trust microsegmentation controller for OpenFlow 1.3 networks."""

__version__ = "0.1.0"
