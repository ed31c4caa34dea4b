"""The client's exceptions: a server's refusal, no answer, services not ready."""

from discovery_client._pb import pb

# nng's numbers (nng.h), for the few the client tells apart.
NNG_ETIMEDOUT = 5
NNG_ECONNREFUSED = 6
NNG_ECLOSED = 7
NNG_EPROTO = 13


class DiscoveryError(Exception):
    """The server answered with a status other than STATUS_OK.

    status is the discovery.v1.StatusCode number (gRPC's numbering: 3
    INVALID_ARGUMENT, 5 NOT_FOUND, 14 UNAVAILABLE, ...), status_name its
    name, and message the server's reason.
    """

    def __init__(self, status, message=""):
        self.status = status
        self.message = message
        text = self.status_name + (": " + message if message else "")
        super().__init__(text)

    @property
    def status_name(self):
        try:
            return pb.StatusCode.Name(self.status)
        except ValueError:
            return "STATUS_%d" % self.status


class TransportError(Exception):
    """No usable answer: nng failed, the call timed out, or the reply was malformed.

    nng_error is nng's error number (0 for a malformed reply); timed_out is
    true when the server did not answer in time, which is also what a server
    that is down looks like, since the client dials in the background.
    """

    def __init__(self, message, nng_error=0):
        self.nng_error = nng_error
        super().__init__(message)

    @property
    def timed_out(self):
        return self.nng_error == NNG_ETIMEDOUT


class ServicesNotReady(TimeoutError):
    """wait_for_services ran out of time.

    missing: names the server does not know; unhealthy: names with no
    healthy instance; unreachable: names that could not be checked because
    the server did not answer.
    """

    def __init__(self, timeout, missing, unhealthy, unreachable):
        self.missing = missing
        self.unhealthy = unhealthy
        self.unreachable = unreachable
        parts = []
        if missing:
            parts.append("missing: " + ", ".join(missing))
        if unhealthy:
            parts.append("not healthy: " + ", ".join(unhealthy))
        if unreachable:
            parts.append("server did not answer for: " + ", ".join(unreachable))
        super().__init__("services not ready after %g s (%s)" % (timeout, "; ".join(parts)))
