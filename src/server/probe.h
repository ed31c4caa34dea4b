/*
 * One health probe with libcurl: the URL a check fetches, the easy handle
 * that fetches it (no redirects, no proxy, a capped body, every socket
 * asked of the endpoint policy), and what its result means. The checker
 * schedules probes and runs them on its multi handle; this module knows
 * nothing of targets, timing or the registry.
 */
#ifndef DSI_PROBE_H
#define DSI_PROBE_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>

#include "server/checkhttp.h"
#include "server/netpolicy.h"

#define DSI_CHECK_URL_MAX  3200 /* endpoint (2048) + health_path (1024) + slack */
#define DSI_PROBE_BODY_CAP 4096 /* bytes of a health response read; the status is what counts */
_Static_assert(DSI_PROBE_BODY_CAP < UINT16_MAX, "dsi_probe.body counts to DSI_PROBE_BODY_CAP + 1");

/* One probe's state while its easy handle runs; embedded in the caller's target. */
/* Embedded in every checked instance: kept small (bench scenario 5 counts it). */
typedef struct dsi_probe {
	char                *refused; /* why the policy refused the address; owned */
	const dsi_netpolicy *policy;  /* addresses it may connect to; NULL: any */
	uint16_t             body;    /* response bytes seen, up to DSI_PROBE_BODY_CAP + 1 */
	int16_t local_errno; /* why this process could not open a socket (EMFILE...); 0: it could */
	bool    connect_only; /* tcp://: a connect is the whole check */
	bool    capped;       /* past DSI_PROBE_BODY_CAP: curl was stopped */
} dsi_probe;

/*
 * What a finished probe says. Only OK, FAILED and TIMED_OUT are verdicts
 * on the target; LOCAL_ERROR means this server could not run the check
 * (no descriptor, no memory, curl could not start), which says nothing
 * about the target and must not move its health.
 */
typedef enum dsi_probe_verdict {
	DSI_PROBE_OK,          /* the target passed */
	DSI_PROBE_FAILED,      /* the target answered badly, refused, or was refused us */
	DSI_PROBE_TIMED_OUT,   /* the target failed by not answering within the timeout */
	DSI_PROBE_LOCAL_ERROR, /* no verdict: the server's own problem */
} dsi_probe_verdict;

/*
 * The URL a check fetches: endpoint's path joined with health_path (one
 * slash between them, the endpoint's query kept). For tcp:// endpoints,
 * http://host:port for a connect-only check (*connect_only set).
 * Returns 0, or DSC_EINVAL / DSC_ENOMEM.
 */
int dsi_check_url(
    const char *endpoint, const char *health_path, char *out, size_t out_len, bool *connect_only);

/*
 * A new easy handle that fetches url (connect only if p->connect_only),
 * with p reset for this run and the caller's private pointer set as
 * CURLINFO_PRIVATE. An HTTP(S) fetch trusts, presents and sends what http
 * says (NULL: curl's defaults, no headers). p and http must stay put until
 * the handle is cleaned up. Returns NULL when curl has no memory; the
 * caller owns the handle.
 */
CURL *dsi_probe_start(dsi_probe *p, const char *url, int timeout_ms, CURLSH *share,
    const dsi_netpolicy *policy, const dsi_check_http *http, void *private_data);

/*
 * Called when the transfer ends, before dsi_probe_result. For a failure
 * that may be ours rather than the target's (no connection, no name
 * resolution: curl's resolver thread needs descriptors too), it opens and
 * closes a socket of its own, and notes in p->local_errno when this
 * process has no descriptor or memory left for one.
 */
void dsi_probe_ended(dsi_probe *p, CURLcode res);

/*
 * What a finished probe means. res is the transfer's result, code the
 * HTTP status (0 for none); reason says why, for the log and the registry.
 */
dsi_probe_verdict dsi_probe_result(
    const dsi_probe *p, CURLcode res, long code, int timeout_ms, char *reason, size_t reason_len);

/* True for the errno values that mean this process ran out of something (EMFILE, ENOMEM...). */
bool dsi_probe_errno_is_local(int err);

/* Frees what the probe owns (the refusal text). */
void dsi_probe_clear(dsi_probe *p);

#endif
