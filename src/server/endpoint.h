/* Endpoint URLs: one validator, built on libcurl's URL parser. */
#ifndef DSI_ENDPOINT_H
#define DSI_ENDPOINT_H

#include <stddef.h>

#define DSI_ENDPOINT_MAX 2048

/*
 * The schemes endpoints may use (endpoint_schemes), as bits. 0 stands for
 * all three; DSI_SCHEMES_PRODUCTION marks the production profile's
 * https-only default, so that a refusal can say where the rule came from.
 */
#define DSI_SCHEME_HTTP        1u
#define DSI_SCHEME_HTTPS       2u
#define DSI_SCHEME_TCP         4u
#define DSI_SCHEMES_ANY        (DSI_SCHEME_HTTP | DSI_SCHEME_HTTPS | DSI_SCHEME_TCP)
#define DSI_SCHEMES_PRODUCTION 0x100u

/*
 * Accepts absolute http://, https:// and tcp://host:port URLs of at most
 * DSI_ENDPOINT_MAX bytes, with a host, a port in 1-65535 when given, no
 * user-info, no fragment and no control characters or spaces. tcp:// URLs
 * take a port and nothing after it.
 * Returns 0, or DSC_EINVAL with the reason in why.
 */
int dsi_endpoint_validate(const char *url, char *why, size_t why_len);

/*
 * Copies the host of a valid endpoint into host (IPv6 in brackets, as in
 * the URL). Returns 0, or DSC_EINVAL when it does not fit or parse.
 */
int dsi_endpoint_host(const char *url, char *host, size_t len);

/* The DSI_SCHEME_* bit for a scheme name ("https", any case), or 0 for none. */
unsigned dsi_endpoint_scheme_bit(const char *name);

/* "https:// and tcp://": the schemes in mask, for messages; returns buf. */
const char *dsi_endpoint_schemes_text(unsigned mask, char *buf, size_t len);

/*
 * Whether url's scheme is one of schemes (0: any). Returns 0, or
 * DSC_EINVAL with why saying which schemes are accepted and which setting
 * changes them (the endpoint itself is the caller's to name).
 */
int dsi_endpoint_scheme_check(unsigned schemes, const char *url, char *why, size_t why_len);

#endif
