"""OpenFlow over mutually authenticated TLS, and the REST API over HTTPS, in Mininet: the
switches connect with certificates from the lab CA; anything without one is turned away."""

import socket
import ssl
import struct
import time
import urllib.error
import urllib.request

import pytest

from lab.certs import LabPki


def tls_hello(context, port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=3) as raw:
        tls = context.wrap_socket(raw, server_hostname="127.0.0.1")
        tls.sendall(struct.pack("!BBHI", 4, 0, 8, 1))
        if not tls.recv(8):
            raise ConnectionResetError("closed after the handshake")


def test_switches_over_tls_and_the_api_over_https(make_lab, tmp_path):
    lab = make_lab("linear", tls=True)
    assert "listening for OpenFlow over TLS" in lab.controller.log()
    assert lab.reaches("web1", "app1", "tcp", 8080)
    assert not lab.reaches("app1", "web1", "tcp", 8080)
    port = lab.of_port

    # A plain OpenFlow hello gets no OpenFlow back: the port speaks only TLS.
    with socket.create_connection(("127.0.0.1", port), timeout=3) as plain:
        plain.sendall(struct.pack("!BBHI", 4, 0, 8, 1))
        plain.settimeout(3)
        try:
            answer = plain.recv(8)
        except (TimeoutError, ConnectionResetError):
            answer = b""
        assert not answer.startswith(b"\x04\x00")

    # TLS with a certificate from another CA: refused during the handshake.
    stranger = LabPki(str(tmp_path / "stranger"), name="not the lab CA")
    cert, key = stranger.issue("impostor-switch")
    context = ssl.create_default_context(cafile=lab.tls["ca"])
    context.load_cert_chain(cert, key)
    with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
        tls_hello(context, port)
    time.sleep(0.5)
    assert "handshake with 127.0.0.1" in lab.controller.log()

    # The API: HTTPS with the lab CA works; plain HTTP does not.
    hosts = lab.controller.cli("hosts")
    assert hosts.returncode == 0 and "web1" in hosts.stdout, hosts.stderr
    with pytest.raises(OSError) as plain_http:
        urllib.request.urlopen(lab.controller.api.replace("https", "http") + "/v1/health", timeout=3)
    why = getattr(plain_http.value, "reason", plain_http.value)
    assert not isinstance(why, ConnectionRefusedError), "nothing listened there: that proves nothing about TLS"
    assert lab.controller.running()
    assert lab.reaches("web2", "app1", "tcp", 8080)  # still serving after the intruders
