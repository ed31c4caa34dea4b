"""The token convention every client follows (docs/clients.md).

The token comes from code (token=), from a file (token_file=), or from the
environment variable SERVICE_DISCOVERY_API_KEY, never from a command line.
A token file is read with the rules of the server's own reader
(src/common/tokenfile.c): a regular file that neither group nor others can
read, at most 4095 bytes after one trailing newline (or CRLF) is stripped,
no NUL byte, not empty.
"""

import os
import stat

TOKEN_ENV = "SERVICE_DISCOVERY_API_KEY"
TOKEN_MAX = 4095


def read_token_file(path):
    """The token in path, as str; raises ValueError saying what is wrong."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as exc:
        raise ValueError("%s: cannot read the token file: %s" % (path, exc.strerror)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError("%s: the token file is not a regular file" % path)
        if st.st_mode & 0o077:
            raise ValueError(
                "%s: the token file is readable by group or others (mode %03o); chmod 600 it"
                % (path, st.st_mode & 0o777)
            )
        data = b""
        while len(data) < TOKEN_MAX + 3:
            chunk = os.read(fd, TOKEN_MAX + 3 - len(data))
            if not chunk:
                break
            data += chunk
    finally:
        os.close(fd)
    if data.endswith(b"\n"):
        data = data[:-1]
        if data.endswith(b"\r"):
            data = data[:-1]
    if len(data) > TOKEN_MAX:
        raise ValueError(
            "%s: the token file is too large: a token has at most %d bytes" % (path, TOKEN_MAX)
        )
    if b"\0" in data:
        raise ValueError("%s: the token file holds a NUL byte" % path)
    if not data:
        raise ValueError("%s: the token file is empty" % path)
    return data.decode("utf-8", "surrogateescape")


def resolve_token(token=None, token_file=None):
    """token, else the token in token_file, else $SERVICE_DISCOVERY_API_KEY, else None."""
    if token is not None and token_file is not None:
        raise ValueError("give token or token_file, not both")
    if token is not None:
        return token or None
    if token_file is not None:
        return read_token_file(token_file)
    return os.environ.get(TOKEN_ENV) or None
