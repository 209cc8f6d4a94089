"""Transport security and authentication: TLS credentials and the bearer tokens file.

See ``docs/security.md`` for the operator's view. ``python -m hyperdial_server.security``
hashes and makes tokens for the tokens file.
"""

from hyperdial_server.security._tls import TlsConfig, check_tls_paths, server_credentials
from hyperdial_server.security._tokens import (
    Principal,
    Role,
    SecurityConfigError,
    TokenRegistry,
    check_label,
    check_namespace,
    check_token,
    hash_token,
    new_token,
    parse_tokens,
    read_tokens_file,
)

__all__ = [
    "Principal",
    "Role",
    "SecurityConfigError",
    "TlsConfig",
    "TokenRegistry",
    "check_label",
    "check_namespace",
    "check_token",
    "check_tls_paths",
    "hash_token",
    "new_token",
    "parse_tokens",
    "read_tokens_file",
    "server_credentials",
]
