/* nng TLS configurations built from PEM files, for discoveryd and libdiscovery alike. */
#ifndef DSI_TLS_H
#define DSI_TLS_H

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>
#include <stdbool.h>
#include <stddef.h>

/* True for the URLs nng serves over TLS: tls+tcp://, tls+tcp4://, tls+tcp6://. */
bool dsi_url_is_tls(const char *url);

/* The files behind one configuration; paths, all PEM. */
typedef struct dsi_tls_files {
	const char *ca;          /* CAs that sign the peer's certificate */
	const char *cert;        /* our own certificate (chain) */
	const char *key;         /* its private key, unencrypted */
	const char *server_name; /* client: the name the server's certificate must carry */
} dsi_tls_files;

/*
 * Builds a configuration for one side.
 * - Server: cert and key are required. With ca, every client must present
 *   a certificate that ca signed (mutual TLS); without, none is asked for.
 * - Client: ca and server_name are required, and the server's certificate
 *   must be signed by ca and carry server_name. cert and key are optional,
 *   for servers that require a client certificate.
 * The files are read and checked here, the key against the certificate
 * included, so that a mistake shows at start-up rather than as failed
 * handshakes. Returns 0 and *out (the caller drops it with
 * nng_tls_config_free), or DSC_EINVAL or DSC_ENOMEM with why naming the
 * file and the problem.
 */
int dsi_tls_config(
    nng_tls_config **out, nng_tls_mode mode, const dsi_tls_files *f, char *why, size_t why_len);

#endif
