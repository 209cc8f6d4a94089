"""TLS for the gRPC port: the server's certificate and, for mutual TLS, the clients' CA."""

from __future__ import annotations

import ssl
from dataclasses import dataclass

import grpc

from hyperdial_server.security._tokens import SecurityConfigError


@dataclass(frozen=True)
class TlsConfig:
    """PEM files of the server's TLS identity.

    Attributes:
        cert: The server's certificate chain (leaf first).
        key: The private key of that certificate, unencrypted.
        client_ca: CA certificates that sign client certificates; set, every client must
            present a certificate signed by one of them (mutual TLS).
    """

    cert: str
    key: str
    client_ca: str = ""


def check_tls_paths(cert: str, key: str, client_ca: str) -> TlsConfig | None:
    """The TLS settings a server was given, or ``None`` for plaintext.

    Raises:
        SecurityConfigError: Only one of ``cert`` and ``key`` is set, or ``client_ca``
            without them.
    """
    if not cert and not key:
        if client_ca:
            raise SecurityConfigError(
                "a client CA (mutual TLS) needs the server's own certificate and key too"
            )
        return None
    if not cert or not key:
        missing = "certificate" if not cert else "private key"
        raise SecurityConfigError(
            f"TLS needs both a certificate and a private key; the {missing} is missing"
        )
    return TlsConfig(cert=cert, key=key, client_ca=client_ca)


def server_credentials(config: TlsConfig) -> grpc.ServerCredentials:
    """gRPC server credentials for ``config``, checked before the server starts.

    The certificate must match the key, the key must not be encrypted, and the client CA file
    must hold at least one certificate; otherwise the server would start and fail every
    handshake.

    Raises:
        SecurityConfigError: A file cannot be read or is not what it should be. The message
            names the file, never its contents.
    """
    cert = _read(config.cert, "TLS certificate")
    key = _read(config.key, "TLS private key")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(config.cert, config.key, password=_no_password)
    except _EncryptedKey:
        raise SecurityConfigError(
            f"the TLS private key {config.key!r} is encrypted; give the server an unencrypted "
            "key (readable only by the server's user)"
        ) from None
    except ssl.SSLError:
        raise SecurityConfigError(
            f"the TLS certificate {config.cert!r} and private key {config.key!r} are not a PEM "
            "certificate chain and its matching PEM private key"
        ) from None
    if not config.client_ca:
        return grpc.ssl_server_credentials([(key, cert)])
    client_ca = _read(config.client_ca, "TLS client CA")
    try:
        context.load_verify_locations(cafile=config.client_ca)
    except ssl.SSLError:
        raise SecurityConfigError(
            f"the TLS client CA file {config.client_ca!r} holds no PEM certificate"
        ) from None
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=client_ca, require_client_auth=True
    )


class _EncryptedKey(Exception):
    pass


def _no_password() -> bytes:
    # Called by ssl only for an encrypted key; the server has no way to ask for a passphrase.
    raise _EncryptedKey


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise SecurityConfigError(
            f"cannot read the {what} {path!r}: {e.strerror or type(e).__name__}"
        ) from None
