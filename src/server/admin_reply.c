/* The admin endpoint's responses (see admin_reply.h). */
#include "server/admin_reply.h"

#include <nng/supplemental/http/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Fills res; 0 or an nng error. */
static int
fill(nng_http_res *res, uint16_t status, const char *ctype, const char *body, bool with_rev,
    uint64_t rev, const char *csp)
{
	char revtext[32];
	int  rv;

	snprintf(revtext, sizeof(revtext), "%llu", (unsigned long long) rev);
	if ((rv = nng_http_res_set_status(res, status)) != 0
	    || (rv = nng_http_res_set_header(res, "Content-Type", ctype)) != 0
	    || (rv = nng_http_res_set_header(res, "Cache-Control", "no-store")) != 0
	    || (rv = nng_http_res_set_header(res, "X-Content-Type-Options", "nosniff")) != 0
	    || (with_rev
	        && (rv = nng_http_res_set_header(res, "X-Discovery-Revision", revtext)) != 0)
	    || (status == 401
	        && (rv = nng_http_res_set_header(res, "WWW-Authenticate", "Bearer")) != 0)
	    || (csp != NULL
	        && ((rv = nng_http_res_set_header(res, "Content-Security-Policy", csp)) != 0
	            || (rv = nng_http_res_set_header(res, "X-Frame-Options", "DENY")) != 0
	            || (rv = nng_http_res_set_header(res, "Referrer-Policy", "no-referrer"))
	                != 0))) {
		return rv;
	}
	return nng_http_res_copy_data(res, body, strlen(body));
}

static void
send_reply(nng_aio *aio, uint16_t status, const char *ctype, const char *body, bool with_rev,
    uint64_t rev, const char *csp)
{
	nng_http_res *res;
	int           rv;

	if ((rv = nng_http_res_alloc(&res)) != 0) {
		nng_aio_finish(aio, rv);
		return;
	}
	if ((rv = fill(res, status, ctype, body, with_rev, rev, csp)) != 0) {
		nng_http_res_free(res);
		nng_aio_finish(aio, rv);
		return;
	}
	nng_aio_set_output(aio, 0, res);
	nng_aio_finish(aio, 0);
}

void
dsi_admin_reply(
    nng_aio *aio, uint16_t status, const char *ctype, const char *body, bool with_rev, uint64_t rev)
{
	send_reply(aio, status, ctype, body, with_rev, rev, NULL);
}

void
dsi_admin_reply_json(nng_aio *aio, uint16_t status, json_t *o, uint64_t rev)
{
	char *body = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (body == NULL) {
		nng_aio_finish(aio, NNG_ENOMEM);
		return;
	}
	dsi_admin_reply(aio, status, "application/json", body, true, rev);
	free(body);
}

char *
dsi_admin_error_body(const char *message, uint64_t rev)
{
	json_t *o = json_pack("{s:s, s:I}", "error", message, "revision", (json_int_t) rev);
	char   *s = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	return s;
}

void
dsi_admin_reply_error(nng_aio *aio, uint16_t status, const char *message, uint64_t rev)
{
	char *body = dsi_admin_error_body(message, rev);
	if (body == NULL) {
		nng_aio_finish(aio, NNG_ENOMEM);
		return;
	}
	dsi_admin_reply(aio, status, "application/json", body, true, rev);
	free(body);
}

void
dsi_admin_reply_page(nng_aio *aio, const char *html, const char *csp)
{
	send_reply(aio, 200, "text/html; charset=utf-8", html, false, 0, csp);
}
