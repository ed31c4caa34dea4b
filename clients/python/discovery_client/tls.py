"""TLS options for tls+tcp:// URLs, the same four as libdiscovery's dsc_tls_options."""


class TLSOptions:
    """ca_file (required) verifies the server; cert_file and key_file (both
    or neither, PEM) are the client's own certificate for servers that
    require one; server_name is the name the server's certificate must
    carry (default: the URL's host). mbedTLS does not match IP addresses
    against subjectAltName, so dialing tls+tcp://127.0.0.1:... needs
    server_name set to a DNS name in the certificate."""

    def __init__(self, ca_file, cert_file=None, key_file=None, server_name=None):
        self.ca_file = ca_file
        self.cert_file = cert_file
        self.key_file = key_file
        self.server_name = server_name

    def check(self):
        if not self.ca_file:
            # Without it, anyone on the path could pose as the server.
            raise ValueError("a TLS client needs a CA file to verify the server with")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("a certificate needs its private key, and a key its certificate")

    def __repr__(self):
        return "TLSOptions(ca_file=%r, cert_file=%r, key_file=%r, server_name=%r)" % (
            self.ca_file, self.cert_file, self.key_file, self.server_name)
