"""A throwaway certificate authority for the lab and the tests (TLS to LDAP, OpenFlow and the
API), made with the openssl command: a CA and leaf certificates for 127.0.0.1/localhost."""

from __future__ import annotations

import os
import subprocess


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


class LabPki:
    def __init__(self, folder: str, name: str = "segctl lab CA"):
        self.folder = os.path.abspath(folder)
        os.makedirs(self.folder, exist_ok=True)
        self.ca_cert = os.path.join(self.folder, "ca.pem")
        self.ca_key = os.path.join(self.folder, "ca.key")
        if not os.path.exists(self.ca_cert):
            _openssl(
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                "-subj", f"/CN={name}", "-keyout", self.ca_key, "-out", self.ca_cert,
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            )  # fmt: skip

    def issue(self, name: str) -> tuple[str, str]:
        """(certificate, key) for `name`, valid for 127.0.0.1 and localhost, signed by the CA."""
        cert, key, csr = (os.path.join(self.folder, f"{name}.{ext}") for ext in ("pem", "key", "csr"))
        extensions = os.path.join(self.folder, f"{name}.ext")
        with open(extensions, "w", encoding="utf-8") as handle:
            handle.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n")
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", key, "-out", csr)
        _openssl(
            "x509", "-req", "-in", csr, "-CA", self.ca_cert, "-CAkey", self.ca_key, "-CAcreateserial",
            "-days", "2", "-out", cert, "-extfile", extensions,
        )  # fmt: skip
        os.chmod(key, 0o600)
        return cert, key
