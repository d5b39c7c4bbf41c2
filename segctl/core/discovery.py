"""Authenticated LLDP link discovery.

The controller sends an LLDP probe out of every live port every second; a probe that comes
back in on another switch port proves a link. Each probe carries when it was sent and an
HMAC-SHA256 over (switch, port, time) under a key made fresh for each controller run, so a
host cannot forge a probe, and a captured one is useless a few seconds later. (A host relaying
fresh probes between two of its ports is the other link-fabrication attack; the controller
refuses probes that arrive on a port where a host is bound.)"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import struct

from .macs import LLDP_PROBE_MAC
from .packets import mac_bytes

LLDP_MULTICAST = "01:80:c2:00:00:0e"
PROBE_SOURCE_MAC = LLDP_PROBE_MAC
ETH_TYPE_LLDP = 0x88CC
SEGCTL_OUI = b"\x0e\x5e\xc7"
_PROBE_SUBTYPE = 1
_PROBE_TAG = SEGCTL_OUI + bytes([_PROBE_SUBTYPE])
_MAC_LENGTH = 16
_TLV_END, _TLV_CHASSIS, _TLV_PORT, _TLV_TTL, _TLV_ORG = 0, 1, 2, 3, 127
_CHASSIS_LOCAL, _PORT_COMPONENT = 7, 2

INTERVAL = 1.0  # seconds between probes on each port
MAX_AGE = 3.0  # a probe older than this proves nothing (slow switches, loaded controller)
LINK_TIMEOUT = 3.5  # a link with no probe through it for this long is gone


def _tlv(kind: int, value: bytes) -> bytes:
    return struct.pack("!H", kind << 9 | len(value)) + value


class LinkDiscovery:
    def __init__(self, key: bytes | None = None):
        self.key = key or secrets.token_bytes(32)

    def _digest(self, dpid: int, port: int, sent: float) -> bytes:
        message = struct.pack("!QId", dpid, port, sent)
        return hmac.new(self.key, message, hashlib.sha256).digest()[:_MAC_LENGTH]

    def probe(self, dpid: int, port: int, now: float) -> bytes:
        """The LLDP frame to send out of (dpid, port)."""
        tlvs = (
            _tlv(_TLV_CHASSIS, bytes([_CHASSIS_LOCAL]) + f"dpid:{dpid:016x}".encode())
            + _tlv(_TLV_PORT, bytes([_PORT_COMPONENT]) + struct.pack("!I", port))
            + _tlv(_TLV_TTL, struct.pack("!H", 120))
            + _tlv(
                _TLV_ORG,
                _PROBE_TAG + struct.pack("!d", now) + self._digest(dpid, port, now),
            )
            + _tlv(_TLV_END, b"")
        )
        return mac_bytes(LLDP_MULTICAST) + mac_bytes(PROBE_SOURCE_MAC) + struct.pack("!H", ETH_TYPE_LLDP) + tlvs

    def verify(self, data: bytes, now: float) -> tuple[int, int] | str:
        """(switch, port) the probe was sent from, or why it proves nothing."""
        if len(data) < 14 or data[12:14] != b"\x88\xcc":
            return "not LLDP"
        chassis = port = stamp = None
        offset = 14
        while offset + 2 <= len(data):
            header = struct.unpack_from("!H", data, offset)[0]
            kind, length = header >> 9, header & 0x1FF
            value = data[offset + 2 : offset + 2 + length]
            if len(value) < length or kind == _TLV_END:
                break
            if kind == _TLV_CHASSIS and value[:1] == bytes([_CHASSIS_LOCAL]) and value[1:6] == b"dpid:":
                try:
                    chassis = int(value[6:], 16)
                except ValueError:
                    return "malformed chassis id"
            elif kind == _TLV_PORT and len(value) == 5 and value[0] == _PORT_COMPONENT:
                port = struct.unpack("!I", value[1:])[0]
            elif kind == _TLV_ORG and value[:4] == _PROBE_TAG and len(value) == 12 + _MAC_LENGTH:
                stamp = (struct.unpack("!d", value[4:12])[0], value[12:])
            offset += 2 + length
        if chassis is None or port is None:
            return "not a segctl probe (no switch/port)"
        if stamp is None:
            return "unauthenticated LLDP (no segctl signature)"
        sent, digest = stamp
        if not hmac.compare_digest(digest, self._digest(chassis, port, sent)):
            return "forged LLDP (bad signature)"
        if not -1.0 <= now - sent <= MAX_AGE:
            return f"replayed LLDP (sent {now - sent:.1f} s ago)"
        return chassis, port
