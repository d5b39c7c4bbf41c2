"""Hand-made frames an attacker on a Mininet host would send: TCP segments with any flags, ICMP
messages of any type, lone fragments. Checksums are right, so the receiving kernel would take
them; the tests look for them on the receiver's wire."""

from __future__ import annotations

import socket
import struct


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4(src_mac, dst_mac, src_ip, dst_ip, proto: int, payload: bytes, flags_fragment: int = 0, ident: int = 1):
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, flags_fragment, 64, proto, 0,
        socket.inet_aton(src_ip), socket.inet_aton(dst_ip),
    )  # fmt: skip
    header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
    mac = lambda text: bytes.fromhex(text.replace(":", ""))  # noqa: E731
    return mac(dst_mac) + mac(src_mac) + b"\x08\x00" + header + payload


def tcp(src_mac, dst_mac, src_ip, dst_ip, sport: int, dport: int, flags: int, seq: int = 1000, ack: int = 1) -> bytes:
    segment = struct.pack("!HHIIBBHHH", sport, dport, seq, ack if flags & 0x10 else 0, 5 << 4, flags, 64240, 0, 0)
    pseudo = socket.inet_aton(src_ip) + socket.inet_aton(dst_ip) + struct.pack("!BBH", 0, 6, len(segment))
    segment = segment[:16] + struct.pack("!H", _checksum(pseudo + segment)) + segment[18:]
    return ipv4(src_mac, dst_mac, src_ip, dst_ip, 6, segment)


def icmp(src_mac, dst_mac, src_ip, dst_ip, icmp_type: int, code: int = 0, body: bytes = b"\0\1\0\1") -> bytes:
    message = bytes([icmp_type, code, 0, 0]) + body + b"segctl" * 4
    message = message[:2] + struct.pack("!H", _checksum(message)) + message[4:]
    return ipv4(src_mac, dst_mac, src_ip, dst_ip, 1, message)


def fragments(src_mac, dst_mac, src_ip, dst_ip, proto: int, payload: bytes, ident: int = 777, size: int = 512):
    """`payload` (a transport header and what follows) cut into fragments of `size` bytes."""
    pieces = []
    for offset in range(0, len(payload), size):
        more = 0x2000 if offset + size < len(payload) else 0
        chunk = payload[offset : offset + size]
        pieces.append(
            ipv4(src_mac, dst_mac, src_ip, dst_ip, proto, chunk, flags_fragment=more | offset // 8, ident=ident)
        )
    return pieces


def icmp_payload(icmp_type: int, code: int = 0, length: int = 1000) -> bytes:
    """A whole ICMP message of `length` bytes with its checksum, ready to be fragmented."""
    message = bytes([icmp_type, code, 0, 0]) + b"\0\7\0\1" + b"q" * (length - 8)
    return message[:2] + struct.pack("!H", _checksum(message)) + message[4:]


def later_fragment(src_mac, dst_mac, src_ip, dst_ip, proto: int, ident: int = 4242) -> bytes:
    """A fragment at offset 1480 of a datagram whose first fragment never comes."""
    return ipv4(src_mac, dst_mac, src_ip, dst_ip, proto, b"f" * 200, flags_fragment=1480 // 8, ident=ident)


def save(frame_list: list[bytes], folder, stem: str = "frame") -> list[str]:
    """Each frame into its own file under `folder` (for `traffic.py inject`); their paths."""
    paths = []
    for number, frame in enumerate(frame_list):
        path = folder / f"{stem}-{number}.bin"
        path.write_bytes(frame)
        paths.append(str(path))
    return paths
