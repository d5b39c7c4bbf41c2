"""A throwaway OpenLDAP server (Debian's slapd) on loopback, for the lab and the tests.

It keeps everything in one folder: a slapd.conf, an mdb database seeded from LDIF files with
slapadd, the pid file and the log. Stopping and starting it again keeps the data, which is how
the tests take the directory down and bring it back."""

from __future__ import annotations

import os
import socket
import subprocess
import time

from .proc import stop_process

SLAPD = "/usr/sbin/slapd"
SLAPADD = "/usr/sbin/slapadd"
SCHEMAS = ("core", "cosine", "nis", "inetorgperson")
ADMIN_PASSWORD = "lab-admin-password"


class Slapd:
    def __init__(
        self,
        folder: str,
        port: int,
        ldifs: list[str],
        suffix: str = "dc=example,dc=org",
        reader: str | None = None,
        tls: tuple[str, str, str] | None = None,
        tls_port: int | None = None,
    ):
        """`reader` is the DN allowed to read the tree (None: anonymous may read). `tls` is
        (CA file, certificate, key) for StartTLS and, with `tls_port`, LDAPS."""
        self.folder = os.path.abspath(folder)
        self.port, self.tls_port = port, tls_port
        self.suffix = suffix
        self.admin_dn = f"cn=admin,{suffix}"
        self.conf = os.path.join(self.folder, "slapd.conf")
        self.log_path = os.path.join(self.folder, "slapd.log")
        self.process: subprocess.Popen | None = None
        self._write_conf(reader, tls)
        self._seed(ldifs)

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    def _write_conf(self, reader: str | None, tls) -> None:
        os.makedirs(os.path.join(self.folder, "db"), exist_ok=True)
        lines = [f"include /etc/ldap/schema/{name}.schema" for name in SCHEMAS]
        lines += [
            f"pidfile {self.folder}/slapd.pid",
            f"argsfile {self.folder}/slapd.args",
            "modulepath /usr/lib/ldap",
            "moduleload back_mdb",
        ]
        if tls:
            ca, cert, key = tls
            lines += [f"TLSCACertificateFile {ca}", f"TLSCertificateFile {cert}", f"TLSCertificateKeyFile {key}"]
        who = f'dn.exact="{reader}"' if reader else "*"
        lines += [
            "database mdb",
            "maxsize 104857600",
            f'suffix "{self.suffix}"',
            f'rootdn "{self.admin_dn}"',
            f"rootpw {ADMIN_PASSWORD}",
            f"directory {self.folder}/db",
            "access to attrs=userPassword by anonymous auth by * none",
            f"access to * by {who} read by * none",
        ]
        with open(self.conf, "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")

    def _seed(self, ldifs: list[str]) -> None:
        for ldif in ldifs:
            result = subprocess.run(
                [SLAPADD, "-q", "-f", self.conf, "-l", ldif], capture_output=True, text=True, check=False
            )
            if result.returncode != 0:
                raise RuntimeError(f"slapadd {ldif} failed: {result.stderr.strip()}")

    def start(self, timeout: float = 10.0) -> None:
        urls = self.url + "/"
        if self.tls_port:
            urls += f" ldaps://127.0.0.1:{self.tls_port}/"
        with open(self.log_path, "a", encoding="utf-8") as log:
            # -d 0 keeps slapd in the foreground, so it is our child and dies with the lab.
            self.process = subprocess.Popen(
                [SLAPD, "-f", self.conf, "-h", urls, "-d", "0"], stdout=log, stderr=log, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"slapd exited with {self.process.returncode}; see {self.log_path}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"slapd did not listen on port {self.port} within {timeout} s; see {self.log_path}")

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None

    def admin(self):
        """An ldap3 connection bound as the tree's administrator, to change entries."""
        import ldap3

        connection = ldap3.Connection(
            ldap3.Server(self.url, get_info=ldap3.NONE), self.admin_dn, ADMIN_PASSWORD, auto_bind=True
        )
        return connection

    def __enter__(self) -> Slapd:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
