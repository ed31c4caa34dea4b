/* Endpoint URLs: one validator, built on libcurl's URL parser. */
#ifndef DSI_ENDPOINT_H
#define DSI_ENDPOINT_H

#include <stddef.h>

#define DSI_ENDPOINT_MAX 2048

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

#endif
