/*
 * Server lists for client failover: one parser, so that every entry point
 * (client, watch, view, wait, discoveryctl) refuses the same mistakes with
 * the same words.
 */
#include "client/urllist.h"

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/error.h"
#include "common/nngutil.h"

static bool
is_blank(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

/* True for "scheme://rest" with a scheme of letters, digits, '+', '-' and '.'. */
static bool
has_scheme(const char *s, size_t len)
{
	size_t i = 0;
	while (i < len
	    && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')
	        || (s[i] >= '0' && s[i] <= '9') || s[i] == '+' || s[i] == '-' || s[i] == '.')) {
		i++;
	}
	return i > 0 && len - i > 3 && strncmp(s + i, "://", 3) == 0;
}

/* Checks one trimmed entry (number k, from 1); 0 or DSC_EINVAL with why. */
static int
entry_check(const char *s, size_t len, size_t k, char *why, size_t why_len)
{
	if (len == 0) {
		snprintf(why, why_len, "server URL %zu of the list is empty", k);
		return DSC_EINVAL;
	}
	if (len > DSI_URL_MAX) {
		snprintf(why, why_len, "server URL %zu is longer than %d bytes", k, DSI_URL_MAX);
		return DSC_EINVAL;
	}
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char) s[i] <= ' ' || s[i] == 0x7f) {
			snprintf(why, why_len,
			    "server URL %zu (\"%.*s\") contains a blank or control byte", k,
			    (int) len, s);
			return DSC_EINVAL;
		}
	}
	if (!has_scheme(s, len)) {
		snprintf(why, why_len,
		    "server URL %zu (\"%.*s\") is not a URL: expected scheme://address, "
		    "as tcp://127.0.0.1:7700",
		    k, (int) len, s);
		return DSC_EINVAL;
	}
	return 0;
}

int
dsi_url_list_parse(dsi_url_list *out, const char *text, char *why, size_t why_len)
{
	dsi_url_list l = { 0 };
	const char  *p = text;
	int          rv;

	memset(out, 0, sizeof(*out));
	if (text == NULL || text[strspn(text, " \t\r\n")] == 0) {
		snprintf(why, why_len, "no server URL given");
		return DSC_EINVAL;
	}
	for (size_t k = 1;; k++) {
		const char *end = strchr(p, ',');
		size_t      len = end != NULL ? (size_t) (end - p) : strlen(p);
		while (len > 0 && is_blank(*p)) {
			p++;
			len--;
		}
		while (len > 0 && is_blank(p[len - 1])) {
			len--;
		}
		if ((rv = entry_check(p, len, k, why, why_len)) != 0) {
			goto fail;
		}
		if (l.n == DSC_MAX_SERVERS) {
			snprintf(
			    why, why_len, "more than %d server URLs in the list", DSC_MAX_SERVERS);
			rv = DSC_EINVAL;
			goto fail;
		}
		for (size_t i = 0; i < l.n; i++) {
			if (strlen(l.url[i]) == len && strncmp(l.url[i], p, len) == 0) {
				snprintf(why, why_len, "server URL %zu (\"%s\") is listed twice", k,
				    l.url[i]);
				rv = DSC_EINVAL;
				goto fail;
			}
		}
		if ((l.url[l.n] = strndup(p, len)) == NULL) {
			snprintf(why, why_len, "%s", dsc_strerror(DSC_ENOMEM));
			rv = DSC_ENOMEM;
			goto fail;
		}
		l.n++;
		if (end == NULL) {
			break;
		}
		p = end + 1;
	}
	*out = l;
	return 0;

fail:
	dsi_url_list_free(&l);
	return rv;
}

void
dsi_url_list_free(dsi_url_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->url[i]);
	}
	memset(l, 0, sizeof(*l));
}

int
dsc_url_list_check(const char *urls, size_t *count, dsc_error *err)
{
	dsi_url_list l;
	nng_socket   s;
	char         why[sizeof(err->message)];
	int          rv;

	if ((rv = dsi_url_list_parse(&l, urls, why, sizeof(why))) != 0) {
		return dsi_fail(err, rv, "%s", why);
	}
	/* nng judges what it can dial (scheme, host, port) when a dialer is made; none starts. */
	if ((rv = nng_req0_open(&s)) != 0) {
		dsi_url_list_free(&l);
		return dsi_fail(err, dsi_err_from_nng(rv), "%s", nng_strerror(rv));
	}
	for (size_t i = 0; i < l.n && rv == 0; i++) {
		nng_dialer d;
		int        nrv = nng_dialer_create(&d, s, l.url[i]);
		if (nrv == 0) {
			nng_dialer_close(d);
		} else {
			rv = dsi_fail(err, nrv == NNG_ENOMEM ? DSC_ENOMEM : DSC_EINVAL,
			    "server URL %zu (\"%s\") cannot be dialed: %s", i + 1, l.url[i],
			    nng_strerror(nrv));
		}
	}
	nng_close(s);
	if (rv == 0 && count != NULL) {
		*count = l.n;
	}
	dsi_url_list_free(&l);
	return rv;
}
