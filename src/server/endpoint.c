/* Endpoint validation: a real URL parser, never a pattern match. */
#include "server/endpoint.h"

#include <curl/curl.h>
#include <discovery/discovery.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/text.h"

/* Reads one URL part; absent parts come back as NULL. */
static char *
url_part(CURLU *u, CURLUPart part)
{
	char *v = NULL;
	if (curl_url_get(u, part, &v, 0) != CURLUE_OK) {
		return NULL;
	}
	return v;
}

static bool
has_part(CURLU *u, CURLUPart part)
{
	char *v    = url_part(u, part);
	bool  here = v != NULL;
	curl_free(v);
	return here;
}

int
dsi_endpoint_validate(const char *url, char *why, size_t why_len)
{
	char   esc[96];
	int    rv     = DSC_EINVAL;
	CURLU *u      = NULL;
	char  *scheme = NULL, *host = NULL, *port = NULL, *path = NULL;
	size_t len = url == NULL ? 0 : strlen(url);

	if (len == 0) {
		snprintf(why, why_len, "endpoint is empty");
		return DSC_EINVAL;
	}
	if (len > DSI_ENDPOINT_MAX) {
		snprintf(why, why_len, "endpoint is %zu bytes, more than the %d allowed", len,
		    DSI_ENDPOINT_MAX);
		return DSC_EINVAL;
	}
	dsi_text_escape(url, esc, sizeof(esc));
	for (const unsigned char *p = (const unsigned char *) url; *p; p++) {
		if (*p <= 0x20 || *p >= 0x7f) {
			snprintf(why, why_len,
			    "endpoint \"%s\" contains a space, control or non-ASCII byte", esc);
			return DSC_EINVAL;
		}
	}
	if (strstr(url, "://") == NULL) {
		snprintf(why, why_len,
		    "endpoint \"%s\" must be an absolute URL starting with http://, https:// or "
		    "tcp://",
		    esc);
		return DSC_EINVAL;
	}
	if ((u = curl_url()) == NULL) {
		snprintf(why, why_len, "out of memory");
		return DSC_ENOMEM;
	}
	/* tcp:// is not a curl scheme, so allow unknown schemes and check below. */
	CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME);
	if (uc != CURLUE_OK) {
		snprintf(why, why_len, "endpoint \"%s\" is not an absolute URL: %s", esc,
		    curl_url_strerror(uc));
		goto out;
	}
	scheme = url_part(u, CURLUPART_SCHEME);
	if (scheme == NULL
	    || (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0
	        && strcasecmp(scheme, "tcp") != 0)) {
		snprintf(why, why_len, "endpoint \"%s\" must use http://, https:// or tcp://", esc);
		goto out;
	}
	/* curl lowercases the scheme; insist the caller's text is an absolute URL. */
	if (strncasecmp(url, scheme, strlen(scheme)) != 0
	    || strncmp(url + strlen(scheme), "://", 3) != 0) {
		snprintf(why, why_len, "endpoint \"%s\" is not an absolute URL", esc);
		goto out;
	}
	if (has_part(u, CURLUPART_USER) || has_part(u, CURLUPART_PASSWORD)
	    || has_part(u, CURLUPART_OPTIONS)) {
		snprintf(why, why_len, "endpoint \"%s\" must not carry user-info", esc);
		goto out;
	}
	if (has_part(u, CURLUPART_FRAGMENT) || strchr(url, '#') != NULL) {
		snprintf(why, why_len, "endpoint \"%s\" must not have a fragment", esc);
		goto out;
	}
	host = url_part(u, CURLUPART_HOST);
	if (host == NULL || host[0] == 0) {
		snprintf(why, why_len, "endpoint \"%s\" has no host", esc);
		goto out;
	}
	port = url_part(u, CURLUPART_PORT);
	if (port != NULL) {
		char *end = NULL;
		long  p   = strtol(port, &end, 10);
		if (*end != 0 || p < 1 || p > 65535) {
			snprintf(why, why_len, "endpoint \"%s\" has a port outside 1-65535", esc);
			goto out;
		}
	}
	if (strcasecmp(scheme, "tcp") == 0) {
		path = url_part(u, CURLUPART_PATH);
		if (port == NULL) {
			snprintf(why, why_len, "endpoint \"%s\" must be tcp://host:port", esc);
			goto out;
		}
		if ((path != NULL && strcmp(path, "/") != 0) || has_part(u, CURLUPART_QUERY)) {
			snprintf(why, why_len,
			    "endpoint \"%s\": a tcp:// endpoint has no path or query", esc);
			goto out;
		}
	}
	rv = 0;
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(path);
	curl_url_cleanup(u);
	return rv;
}

int
dsi_endpoint_host(const char *url, char *host, size_t len)
{
	CURLU *u  = curl_url();
	char  *h  = NULL;
	int    rv = DSC_EINVAL;
	if (u != NULL && curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK
	    && curl_url_get(u, CURLUPART_HOST, &h, 0) == CURLUE_OK && dsi_strlcpy(host, h, len)) {
		rv = 0;
	}
	curl_free(h);
	curl_url_cleanup(u);
	return rv;
}

static const struct {
	const char *name;
	unsigned    bit;
} schemes[]
    = { { "http", DSI_SCHEME_HTTP }, { "https", DSI_SCHEME_HTTPS }, { "tcp", DSI_SCHEME_TCP } };

unsigned
dsi_endpoint_scheme_bit(const char *name)
{
	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		if (strcasecmp(name, schemes[i].name) == 0) {
			return schemes[i].bit;
		}
	}
	return 0;
}

const char *
dsi_endpoint_schemes_text(unsigned mask, char *buf, size_t len)
{
	size_t count = 0, used = 0, k = 0;
	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		count += (mask & schemes[i].bit) != 0;
	}
	buf[0] = 0;
	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		if ((mask & schemes[i].bit) != 0) {
			k++;
			int n = snprintf(buf + used, len - used, "%s%s://",
			    k == 1 ? "" : (k == count ? " and " : ", "), schemes[i].name);
			if (n < 0 || (size_t) n >= len - used) {
				break; /* cut short */
			}
			used += (size_t) n;
		}
	}
	return buf;
}

int
dsi_endpoint_scheme_check(unsigned schemes_ok, const char *url, char *why, size_t why_len)
{
	const char *sep = strstr(url, "://");
	char        name[8], list[64];
	unsigned    mask = schemes_ok & DSI_SCHEMES_ANY;

	if (mask == 0) {
		return 0;
	}
	if (sep != NULL && (size_t) (sep - url) < sizeof(name)) {
		snprintf(name, sizeof(name), "%.*s", (int) (sep - url), url);
		if ((dsi_endpoint_scheme_bit(name) & mask) != 0) {
			return 0;
		}
	}
	dsi_endpoint_schemes_text(mask, list, sizeof(list));
	snprintf(why, why_len,
	    "%s accepts only %s endpoints; endpoint_schemes (--endpoint-schemes, "
	    "SERVICE_DISCOVERY_ENDPOINT_SCHEMES) sets the schemes it accepts, for example "
	    "https,tcp",
	    (schemes_ok & DSI_SCHEMES_PRODUCTION) != 0 ? "the production profile" : "this server",
	    list);
	return DSC_EINVAL;
}
