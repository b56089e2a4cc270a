"""Running the node's ASGI app under uvicorn, over HTTPS when given a certificate.

TAXII 2.1 §1.6.6 and §8.2.2 ask a server to accept TLS 1.2 (MUST), to accept
TLS 1.3 (SHOULD), never to use TLS 1.3 0-RTT (MUST NOT), and not to offer the
TLS 1.2 cipher suites that RFC 7540 Appendix A blacklists (SHOULD NOT). What
`hardened` enforces on the server's context:

- protocol: TLS 1.2 minimum (SSLv3, TLS 1.0 and 1.1 refused); TLS 1.3 allowed;
- TLS 1.2 suites: only ephemeral key exchange with an AEAD cipher
  (ECDHE/DHE with AES-GCM or ChaCha20-Poly1305), which is exactly what the
  RFC 7540 blacklist leaves; uvicorn's own default ("TLSv1") would re-admit
  CBC and SHA-1 suites, so the list is set after uvicorn built the context;
- TLS 1.3 suites: OpenSSL's defaults (all AEAD);
- no TLS compression, no renegotiation, the server's suite order wins;
- 0-RTT: Python's `ssl` module has no way to enable TLS 1.3 early data, and
  OpenSSL accepts none unless asked to (its max_early_data is 0), so early
  data is never accepted.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import uvicorn

# TLS 1.2 suites outside the RFC 7540 Appendix A blacklist: forward secrecy and AEAD only.
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL:!eNULL:!PSK:!SRP"


def hardened(context: ssl.SSLContext) -> ssl.SSLContext:
    """The server context restricted as the module docstring says (changed in place, and returned)."""
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION | ssl.OP_CIPHER_SERVER_PREFERENCE
    return context


def run_server(
    app: Any, *, host: str, port: int, tls_cert: Path | None = None, tls_key: Path | None = None
) -> None:
    """Serve `app` until interrupted; HTTPS with a hardened context when a certificate is given."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        ssl_certfile=str(tls_cert) if tls_cert else None,
        ssl_keyfile=str(tls_key) if tls_key else None,
    )
    # Loading builds uvicorn's SSL context; restricting it before the server
    # starts works with every uvicorn version (the server does not load twice).
    config.load()
    if config.ssl is not None:
        hardened(config.ssl)
    uvicorn.Server(config).run()
