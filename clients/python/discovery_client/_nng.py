"""The system nng library (Debian's libnng1) through ctypes, and the few
socket helpers every part of the client shares: open, dial (TLS included),
receive one message."""

import ctypes
import os

from discovery_client.errors import NNG_ETIMEDOUT, TransportError

_NNG_FLAG_ALLOC = 1
_NNG_FLAG_NONBLOCK = 2
NNG_DURATION_INFINITE = -1
_NNG_BAD_URL = (3, 9, 15)  # EINVAL, ENOTSUP, EADDRINVAL
_NNG_TLS_MODE_CLIENT = 0
_NNG_TLS_AUTH_MODE_REQUIRED = 2

__all__ = ["lib", "Socket", "check", "nng_error", "set_ms", "open_socket", "dial", "recv", "recv_from",
           "NNG_DURATION_INFINITE", "NNG_ETIMEDOUT"]


class Socket(ctypes.Structure):
    """nng_socket: a struct holding one id, passed by value."""

    _fields_ = [("id", ctypes.c_uint32)]


class _Dialer(ctypes.Structure):
    """nng_dialer: one id, passed by value."""

    _fields_ = [("id", ctypes.c_uint32)]


class _Pipe(ctypes.Structure):
    """nng_pipe: one id, passed by value."""

    _fields_ = [("id", ctypes.c_uint32)]


def _load():
    name = os.environ.get("DISCOVERY_LIBNNG", "libnng.so.1")
    try:
        nng = ctypes.CDLL(name)
    except OSError as exc:
        raise ImportError(
            "discovery_client cannot load %s (Debian: apt-get install libnng1)" % name
        ) from exc
    sock_p = ctypes.POINTER(Socket)
    vp, cp, i = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
    protos = {
        "nng_req0_open": ([sock_p], i),
        "nng_sub0_open": ([sock_p], i),
        "nng_close": ([Socket], i),
        "nng_socket_set": ([Socket, cp, vp, ctypes.c_size_t], i),
        "nng_socket_set_int": ([Socket, cp, i], i),
        "nng_socket_set_ms": ([Socket, cp, ctypes.c_int32], i),
        "nng_send": ([Socket, vp, ctypes.c_size_t, i], i),
        "nng_recv": ([Socket, vp, ctypes.POINTER(ctypes.c_size_t), i], i),
        "nng_free": ([vp, ctypes.c_size_t], None),
        "nng_strerror": ([i], cp),
        "nng_dialer_create": ([ctypes.POINTER(_Dialer), Socket, cp], i),
        "nng_dialer_set_ptr": ([_Dialer, cp, vp], i),
        "nng_dialer_start": ([_Dialer, i], i),
        "nng_dialer_close": ([_Dialer], i),
        "nng_tls_config_alloc": ([ctypes.POINTER(vp), i], i),
        "nng_tls_config_free": ([vp], None),
        "nng_tls_config_ca_chain": ([vp, cp, cp], i),
        "nng_tls_config_own_cert": ([vp, cp, cp, cp], i),
        "nng_tls_config_server_name": ([vp, cp], i),
        "nng_tls_config_auth_mode": ([vp, i], i),
        "nng_recvmsg": ([Socket, ctypes.POINTER(vp), i], i),
        "nng_msg_body": ([vp], vp),
        "nng_msg_len": ([vp], ctypes.c_size_t),
        "nng_msg_free": ([vp], None),
        "nng_msg_get_pipe": ([vp], _Pipe),
        "nng_pipe_dialer": ([_Pipe], _Dialer),
    }
    for fn, (args, res) in protos.items():
        f = getattr(nng, fn)
        f.argtypes = args
        f.restype = res
    return nng


lib = _load()


def strerror(rv):
    return lib.nng_strerror(rv).decode("utf-8", "replace")


def nng_error(what, rv):
    return TransportError("%s: %s" % (what, strerror(rv)), rv)


def check(what, rv):
    if rv != 0:
        raise nng_error(what, rv)


def set_ms(sock, opt, ms):
    check("nng_socket_set_ms %s" % opt.decode(), lib.nng_socket_set_ms(sock, opt, ms))


def open_socket(opener, what):
    """Opens a socket that redials quickly; the caller owns (and closes) it."""
    sock = Socket()
    check(what, opener(ctypes.byref(sock)))
    try:
        # Redial soon after a server restart (nng's default backs off to ~1 min).
        set_ms(sock, b"reconnect-time-min", 50)
        set_ms(sock, b"reconnect-time-max", 1000)
    except BaseException:
        lib.nng_close(sock)
        raise
    return sock


def is_tls(url):
    return url.startswith("tls+")


def _tls_config(url, tls):
    """A client nng_tls_config for url from TLSOptions; the caller frees it."""
    tls.check()
    server_name = tls.server_name or _url_host(url)
    cfg = ctypes.c_void_p()
    check("nng_tls_config_alloc", lib.nng_tls_config_alloc(ctypes.byref(cfg), _NNG_TLS_MODE_CLIENT))
    try:
        if tls.cert_file is not None:
            cert, key = _read_pem("certificate", tls.cert_file), _read_pem("private key", tls.key_file)
            rv = lib.nng_tls_config_own_cert(cfg, cert, key, None)
            if rv != 0:
                raise ValueError("certificate %s: %s" % (tls.cert_file, strerror(rv)))
        ca = _read_pem("CA file", tls.ca_file)
        # As nng_tls_config_ca_file does: a CRL, if any, is in the same file.
        rv = lib.nng_tls_config_ca_chain(cfg, ca, ca if b"-----BEGIN X509 CRL-----" in ca else None)
        if rv != 0:
            raise ValueError("CA file %s: no usable certificate: %s" % (tls.ca_file, strerror(rv)))
        check("nng_tls_config_auth_mode", lib.nng_tls_config_auth_mode(cfg, _NNG_TLS_AUTH_MODE_REQUIRED))
        check("nng_tls_config_server_name",
              lib.nng_tls_config_server_name(cfg, server_name.encode("utf-8")))
    except BaseException:
        lib.nng_tls_config_free(cfg)
        raise
    return cfg


def _url_host(url):
    rest = url.split("://", 1)[-1]
    if rest.startswith("["):
        return rest[1:rest.index("]")]
    return rest.rsplit(":", 1)[0]


def _read_pem(what, path):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ValueError("%s %s: %s" % (what, path, exc.strerror)) from None
    if b"-----BEGIN " not in data:
        raise ValueError("%s %s: not a PEM file" % (what, path))
    return data


def dial(sock, url, tls=None):
    """Dials in the background: opening works while the server is down.

    tls (TLSOptions) applies to tls+tcp:// URLs, where it is required.
    Returns the dialer's id (messages tell their dialer: recv_from).
    """
    cfg = None
    if is_tls(url):
        if tls is None:
            raise ValueError("%s needs TLS options (tls=TLSOptions(ca_file=...))" % url)
        cfg = _tls_config(url, tls)
    d = _Dialer()
    try:
        rv = lib.nng_dialer_create(ctypes.byref(d), sock, url.encode("utf-8"))
        if rv in _NNG_BAD_URL:
            raise ValueError("cannot dial %r: %s" % (url, strerror(rv)))
        check("nng_dialer_create %s" % url, rv)
        # The dialer holds its own reference to the configuration.
        if cfg is not None:
            rv = lib.nng_dialer_set_ptr(d, b"tls-config", cfg)
        if rv == 0:
            rv = lib.nng_dialer_start(d, _NNG_FLAG_NONBLOCK)
        if rv != 0:
            lib.nng_dialer_close(d)
            check("nng_dial %s" % url, rv)
    finally:
        if cfg is not None:
            lib.nng_tls_config_free(cfg)
    return d.id


def recv(sock):
    """One message as bytes, or raises TransportError (with nng's number)."""
    ptr = ctypes.c_void_p()
    size = ctypes.c_size_t()
    rv = lib.nng_recv(sock, ctypes.byref(ptr), ctypes.byref(size), _NNG_FLAG_ALLOC)
    if rv != 0:
        raise nng_error("nng_recv", rv)
    try:
        return ctypes.string_at(ptr, size.value)
    finally:
        lib.nng_free(ptr, size.value)


def recv_from(sock):
    """One message as (bytes, pipe id, dialer id), or raises TransportError.

    The dialer id is that of the dialer whose connection (pipe) brought the
    message; 0xFFFFFFFF when that pipe has closed meanwhile.
    """
    msg = ctypes.c_void_p()
    rv = lib.nng_recvmsg(sock, ctypes.byref(msg), 0)
    if rv != 0:
        raise nng_error("nng_recvmsg", rv)
    try:
        data = ctypes.string_at(lib.nng_msg_body(msg), lib.nng_msg_len(msg))
        pipe = lib.nng_msg_get_pipe(msg)
        return data, pipe.id, lib.nng_pipe_dialer(pipe).id
    finally:
        lib.nng_msg_free(msg)
