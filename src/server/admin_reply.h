/*
 * How the admin endpoint answers: one HTTP response onto a handler's aio,
 * with the headers every reply carries. Used by admin.c and admin_probes.c;
 * it knows nothing of either.
 */
#ifndef DSI_ADMIN_REPLY_H
#define DSI_ADMIN_REPLY_H

#include <jansson.h>
#include <nng/nng.h>
#include <stdbool.h>
#include <stdint.h>

/*
 * Completes aio with a response: status, Content-Type ctype, body (copied),
 * and the revision header when with_rev. On failure the aio fails instead.
 */
void dsi_admin_reply(nng_aio *aio, uint16_t status, const char *ctype, const char *body,
    bool with_rev, uint64_t rev);

/* dsi_admin_reply with o as compact JSON; takes o (NULL: out of memory). */
void dsi_admin_reply_json(nng_aio *aio, uint16_t status, json_t *o, uint64_t rev);

/* {"error": message, "revision": rev} as JSON text; the caller frees it (NULL: no memory). */
char *dsi_admin_error_body(const char *message, uint64_t rev);

/* A JSON {"error": message, "revision": rev} reply. */
void dsi_admin_reply_error(nng_aio *aio, uint16_t status, const char *message, uint64_t rev);

/*
 * A 200 HTML page (html: borrowed, copied) with csp as its
 * Content-Security-Policy, and frames and referrers refused.
 */
void dsi_admin_reply_page(nng_aio *aio, const char *html, const char *csp);

#endif
