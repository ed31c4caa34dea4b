/*
 * Throwaway certificates for TLS tests, made with the openssl command line
 * tool (scripts/deps.sh installs it): a self-signed CA and leaves it signs,
 * EC P-256, valid two days, as DIR/NAME.crt and DIR/NAME.key.
 */
#ifndef TCERT_CERTS_H
#define TCERT_CERTS_H

/* A self-signed CA. 0, or -1 after printing openssl's output. */
int tcert_make_ca(const char *dir, const char *name);

/* A leaf signed by CA, with subjectAltName san ("DNS:x,IP:127.0.0.1"); its key 0600. */
int tcert_make_leaf(const char *dir, const char *name, const char *ca, const char *san);

#endif
