/*
 * What HTTP(S) health checks trust, present and send beyond their URL: a
 * CA file, a client certificate and key (services with mutual TLS), and
 * configured headers, some with values read from files. Checked and built
 * once per checker (and again whenever its options are swapped); every
 * probe then borrows the result. Header values are secrets: no message
 * here or in callers ever holds one.
 */
#ifndef DSI_CHECKHTTP_H
#define DSI_CHECKHTTP_H

#include <curl/curl.h>
#include <stddef.h>

#include "server/options.h"

/* The settings as configured; every string is the caller's. */
typedef struct dsi_check_http_options {
	const char        *ca_file; /* PEM CAs instead of the system bundle; NULL: system */
	const char        *cert;    /* PEM client certificate; NULL: none */
	const char        *key;     /* its key; set exactly when cert is */
	const char *const *headers; /* "Name: value" */
	size_t             n_headers;
	const char *const *header_files; /* "Name: path": the value is the file's one line */
	size_t             n_header_files;
} dsi_check_http_options;

/* The built form a probe uses; owns everything in it. */
typedef struct dsi_check_http {
	char              *ca_file; /* NULL: curl's default store */
	char              *cert;    /* NULL: no client certificate */
	char              *key;
	struct curl_slist *headers; /* NULL: none */
} dsi_check_http;

/* The settings o holds, borrowed from it. */
dsi_check_http_options dsi_check_http_options_from(const dsi_server_options *o);

/*
 * Splits one "Name: value" item: the name must be an HTTP token, the value
 * (spaces after the colon skipped) non-empty visible ASCII, spaces or tabs.
 * Returns 0 with the name's length and the value, or DSC_EINVAL with why
 * (which names the header, never its value).
 */
int dsi_check_header_parse(
    const char *item, size_t *name_len, const char **value, char *why, size_t why_len);

/*
 * Checks the settings and builds h from them: the certificate and key come
 * together, the files are readable regular files, the key and the header
 * files are readable by no one but the owner (as the token file), and each
 * header file holds one clean line. Returns 0, or DSC_EINVAL / DSC_ENOMEM
 * with why, h then empty. dsi_check_http_free releases h in every case.
 */
int dsi_check_http_build(
    dsi_check_http *h, const dsi_check_http_options *o, char *why, size_t why_len);

void dsi_check_http_free(dsi_check_http *h);

#endif
