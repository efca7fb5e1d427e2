"""A throwaway certificate authority for TLS tests, made with the `openssl` command.

The CA signs a server certificate for 127.0.0.1 and a client certificate (for servers that
check clients). Keys are P-256, so making them takes milliseconds.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

_LEAF_EXTENSIONS = """\
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
"""


class TlsUnavailableError(RuntimeError):
    """The `openssl` command is missing or failed."""


@dataclass(frozen=True)
class TlsFiles:
    """PEM files: a CA, a server certificate and key, a client certificate and key."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path

    def client_context(self) -> ssl.SSLContext:
        """A context that trusts the CA and presents the client certificate."""
        context = ssl.create_default_context(cafile=str(self.ca_cert))
        context.load_cert_chain(str(self.client_cert), str(self.client_key))
        return context


def _openssl(*args: str | Path) -> None:
    try:
        subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, timeout=30)
    except subprocess.CalledProcessError as exc:
        raise TlsUnavailableError(f"openssl {args[0]} failed: {exc.stderr.decode()}") from exc


def _leaf(directory: Path, name: str, ca_cert: Path, ca_key: Path) -> tuple[Path, Path]:
    cert, key, request = (directory / f"{name}.{ext}" for ext in ("crt", "key", "csr"))
    _openssl("req", "-new", "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-keyout", key, "-out", request, "-subj", f"/CN={name}")  # fmt: skip
    extensions = directory / f"{name}.ext"
    extensions.write_text(_LEAF_EXTENSIONS)
    _openssl("x509", "-req", "-in", request, "-CA", ca_cert, "-CAkey", ca_key,
             "-CAcreateserial", "-days", "2", "-out", cert, "-extfile", extensions)  # fmt: skip
    return cert, key


def make_tls_files(directory: Path) -> TlsFiles:
    """Create a CA and certificates signed by it in `directory`."""
    if shutil.which("openssl") is None:
        raise TlsUnavailableError("the openssl command is needed to make test certificates")
    ca_cert, ca_key = directory / "ca.crt", directory / "ca.key"
    _openssl("req", "-x509", "-new", "-nodes", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:P-256", "-keyout", ca_key, "-out", ca_cert, "-days", "2",
             "-subj", "/CN=recommender test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    server_cert, server_key = _leaf(directory, "server", ca_cert, ca_key)
    client_cert, client_key = _leaf(directory, "client", ca_cert, ca_key)
    return TlsFiles(ca_cert, server_cert, server_key, client_cert, client_key)
