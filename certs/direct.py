"""Give a leaf and the shared leaf key to an ``ssl.SSLContext`` without PEM files.

``SSLContext.load_cert_chain`` only reads files, and OpenSSL 3.0 decodes the private
key in them again for every context: ~0.4 ms of a ~1 ms mint goes to decoding the
same key. Here the key is decoded once and each context takes a reference to it,
and the leaf goes in as DER, through the libssl the ``ssl`` module itself uses.

That needs the ``SSL_CTX`` behind a Python ``SSLContext``, which the ``ssl`` module
does not expose: it is the first field after the object header in CPython's
``_ssl`` module. ``DirectLoader.create`` checks that on a probe context (options
written through Python must read back through the pointer, and a leaf loaded this
way must read back whole) and returns None whenever anything does not hold, so the
caller keeps ``load_cert_chain``.
"""

from __future__ import annotations

import ctypes
import ssl
import sys
import weakref

_PTR = ctypes.c_void_p
_BYTES = ctypes.c_char_p
_SIGNATURES = {
    "SSL_CTX_get_options": (ctypes.c_uint64, [_PTR]),
    "SSL_CTX_use_certificate_ASN1": (ctypes.c_int, [_PTR, ctypes.c_int, _BYTES]),
    "SSL_CTX_use_PrivateKey": (ctypes.c_int, [_PTR, _PTR]),
    "SSL_CTX_check_private_key": (ctypes.c_int, [_PTR]),
    "SSL_CTX_get0_certificate": (_PTR, [_PTR]),
    "d2i_AutoPrivateKey": (_PTR, [_PTR, ctypes.POINTER(_BYTES), ctypes.c_long]),
    "i2d_X509": (ctypes.c_int, [_PTR, ctypes.POINTER(ctypes.POINTER(ctypes.c_ubyte))]),
    "EVP_PKEY_free": (None, [_PTR]),
    "ERR_clear_error": (None, []),
}


class DirectLoader:
    """Loads leaves into contexts with one pre-decoded private key; see the module doc."""

    def __init__(self, lib: ctypes.CDLL, pkey: int) -> None:
        self._lib = lib
        self._pkey = pkey
        # Contexts hold their own references to the key; this one is the loader's.
        weakref.finalize(self, lib.EVP_PKEY_free, pkey)

    @classmethod
    def create(cls, key_der: bytes, probe_cert_der: bytes) -> DirectLoader | None:
        """A loader for the key (DER), or None when this interpreter cannot be used so.

        ``probe_cert_der`` is a certificate for that key, loaded once as a check.
        """
        lib = _libssl()
        if lib is None:
            return None
        data = _BYTES(key_der)
        pkey = lib.d2i_AutoPrivateKey(None, ctypes.byref(data), len(key_der))
        if not pkey:
            lib.ERR_clear_error()
            return None
        loader = cls(lib, pkey)
        try:
            ok = loader._works(probe_cert_der)
        except (OSError, ValueError, ssl.SSLError):
            ok = False
        return loader if ok else None

    def load(self, ctx: ssl.SSLContext, cert_der: bytes) -> None:
        """Make ``ctx`` present ``cert_der`` with the loader's key; ssl.SSLError if refused."""
        lib, raw = self._lib, _ctx_pointer(ctx)
        if lib.SSL_CTX_use_certificate_ASN1(raw, len(cert_der), cert_der) != 1:
            lib.ERR_clear_error()
            raise ssl.SSLError("OpenSSL refused the minted certificate")
        # Checks the key against the certificate just set, and takes a reference.
        if lib.SSL_CTX_use_PrivateKey(raw, self._pkey) != 1:
            lib.ERR_clear_error()
            raise ssl.SSLError("OpenSSL refused the leaf key for the minted certificate")

    def _works(self, cert_der: bytes) -> bool:
        probe = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        raw = _ctx_pointer(probe)
        if not raw or self._lib.SSL_CTX_get_options(raw) != probe.options:
            return False
        probe.options ^= ssl.OP_NO_TICKET  # a change made through Python shows through raw
        if self._lib.SSL_CTX_get_options(raw) != probe.options:
            return False
        self.load(probe, cert_der)
        return self._lib.SSL_CTX_check_private_key(raw) == 1 and self._loaded(raw) == cert_der

    def _loaded(self, raw: int) -> bytes:
        """The DER of the certificate the SSL_CTX at ``raw`` presents."""
        x509 = self._lib.SSL_CTX_get0_certificate(raw)
        if not x509:
            return b""
        size = self._lib.i2d_X509(x509, None)
        if size <= 0:
            return b""
        out = (ctypes.c_ubyte * size)()
        cursor = ctypes.cast(out, ctypes.POINTER(ctypes.c_ubyte))
        self._lib.i2d_X509(x509, ctypes.byref(cursor))
        return bytes(out)


def _ctx_pointer(ctx: ssl.SSLContext) -> int:
    """The ``SSL_CTX *`` of a CPython ``SSLContext``: the field after the object header."""
    return _PTR.from_address(id(ctx) + object.__basicsize__).value or 0


def _libssl() -> ctypes.CDLL | None:
    """The libssl/libcrypto the ``ssl`` module is linked with, with typed functions."""
    if sys.implementation.name != "cpython" or ssl.OPENSSL_VERSION_INFO < (1, 1, 1):
        return None
    try:
        # Symbols looked up through _ssl's own handle come from the very libraries
        # it was linked against, not from any other OpenSSL in the process.
        lib = ctypes.CDLL(ssl._ssl.__file__)  # type: ignore[attr-defined]
        for name, (restype, argtypes) in _SIGNATURES.items():
            func = getattr(lib, name)
            func.restype, func.argtypes = restype, argtypes
    except (OSError, AttributeError):
        return None
    return lib
