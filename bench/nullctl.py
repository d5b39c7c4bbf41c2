"""The cheapest possible controller: it answers every TCP packet-in with a packet-out of the
same packet and does nothing else. Run against it, the emulator shows how many flow setups per
second it can generate, i.e. that it is not what bounds the real controllers' figures."""

from __future__ import annotations

import asyncio
import struct
import sys

from . import ofwire as of


class NullController(asyncio.Protocol):
    def connection_made(self, transport) -> None:
        self.transport = transport
        self.buffer = b""
        transport.write(
            of.message(of.HELLO)
            + of.message(of.FEATURES_REQUEST, xid=1)
            + of.message(of.MULTIPART_REQUEST, struct.pack("!HH4x", of.MP_PORT_DESC, 0), xid=2)
        )

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data
        offset, size, out = 0, len(buffer), []
        while size - offset >= 8:
            length = (buffer[offset + 2] << 8) | buffer[offset + 3]
            if length < 8 or size - offset < length:
                break
            if buffer[offset + 1] == of.PACKET_IN:
                msg = buffer[offset : offset + length]
                match_len = struct.unpack_from("!H", msg, 26)[0]
                frame = msg[24 + (match_len + 7) // 8 * 8 + 2 :]
                if of.frame_key(frame) is not None:
                    body = struct.pack("!IIH6x", of.NO_BUFFER, 0xFFFFFFFD, 0) + frame
                    out.append(of.message(of.PACKET_OUT, body))
            offset += length
        self.buffer = buffer[offset:]
        if out:
            self.transport.write(b"".join(out))


async def serve(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(NullController, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
