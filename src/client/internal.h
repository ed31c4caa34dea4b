/*
 * libdiscovery internals shared by client.c, instance.c, watch.c, view.c
 * and wait.c: instance copies, and the extra handles the client and the
 * watch give the view and the wait. Dialing is client/dial.h; failure
 * reports are client/error.h. Nothing here is public; names use dsi_.
 */
#ifndef DSC_CLIENT_INTERNAL_H
#define DSC_CLIENT_INTERNAL_H

#include <discovery/discovery.h>
#include <discovery/v1/discovery.pb-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- instances (instance.c) ---- */

/*
 * Fills dst with a deep copy of the wire instance src; src NULL gives an
 * instance whose strings are all "". Returns 0, or DSC_ENOMEM with dst
 * zeroed and nothing leaked.
 */
int dsi_inst_from_pb(dsc_instance *dst, const Discovery__V1__Instance *src);

/* Deep copy of src into dst. Returns 0, or DSC_ENOMEM with dst zeroed. */
int dsi_inst_copy(dsc_instance *dst, const dsc_instance *src);

/* Frees what x owns (not x itself) and zeroes it; a zeroed x is a no-op. */
void dsi_inst_clear(dsc_instance *x);

/* ---- events (event.c), for the watch ---- */

/*
 * Decodes one published message: 0 and *out (free with dsc_event_free),
 * with the SYNC's sync_interval_ms in *interval_ms; DSC_EPROTO for bytes
 * that are not a valid Event (the caller skips them); or DSC_ENOMEM.
 */
int dsi_event_decode(const void *buf, size_t len, dsc_event **out, uint32_t *interval_ms);

/*
 * What makes a change the same change on another node of one registry
 * (type, service, endpoint, health): not its time, which each node stamps,
 * nor its reason text.
 */
uint64_t dsi_event_digest(const dsc_event *ev);

/* ---- the REQ client (client.c), for the view and the wait ---- */

/* The client's timeout in milliseconds, after defaults. */
int32_t dsi_client_timeout(const dsc_client *c);

/* The index of the server of its list calls start with; set_current moves it (a view's switch). */
size_t dsi_client_current(const dsc_client *c);
void   dsi_client_set_current(dsc_client *c, size_t i);

/*
 * Closes the client's socket so that calls in flight on other threads end
 * at once with DSC_ECLOSED, and later calls fail the same way. The client
 * must still be released with dsc_client_close. Idempotent.
 */
void dsi_client_shutdown(dsc_client *c);

/*
 * The one round trip every call makes (calls.c's and status.c's), failing
 * over along the client's list: on success *resp is the server's OK
 * answer (free with protobuf_c_message_free_unpacked); otherwise err says
 * why, naming every server tried. Sets req->auth_token.
 */
int dsi_client_roundtrip(
    dsc_client *c, Discovery__V1__Request *req, Discovery__V1__Response **resp, dsc_error *err);

/* ---- watches (watch.c), for the view ---- */

/*
 * dsc_watch_open with a SUB receive queue of recv_buffer messages
 * (<= 0: 1024), and TLS options (may be NULL) for a tls+ URL. probe_ms > 0
 * makes one handshake first, within probe_ms, so that a refused
 * certificate fails the open with DSC_ETLS; a server that is down or slow
 * is left to the background dial.
 */
int dsi_watch_open(dsc_watch **out, const char *publish_url, const char *const *services,
    size_t n_services, int32_t recv_buffer, const dsc_tls_options *tls, int32_t probe_ms);

/*
 * How many times the watch's SUB pipe has connected. A change tells a
 * reconnect, after which events may have been lost (or the server
 * restarted). 0 until the first connection.
 */
uint64_t dsi_watch_connects(dsc_watch *w);

/* Waits up to timeout_ms for a connected pipe; true when there is one. */
bool dsi_watch_wait_connected(dsc_watch *w, int32_t timeout_ms);

/* Writes the publish URL into buf (for messages). */
const char *dsi_watch_url(const dsc_watch *w);

/*
 * With a list of publish URLs (client/follow.h): the node whose events are
 * delivered (0 with one URL; SIZE_MAX before the first event), and how many
 * switches so far were gaps, forced ones included (0 with one URL). Only
 * from the thread that calls dsc_watch_next.
 */
size_t   dsi_watch_node(const dsc_watch *w);
uint64_t dsi_watch_gaps(const dsc_watch *w);

/* Follows node from now on, forgetting what it sent before: a snapshot from it comes next. */
void dsi_watch_follow(dsc_watch *w, size_t node);

/* How many times node's pipe has connected (any thread). */
uint64_t dsi_watch_node_connects(dsc_watch *w, size_t node);

/* Waits up to timeout_ms for node's pipe; true when it is connected. */
bool dsi_watch_wait_node(dsc_watch *w, size_t node, int32_t timeout_ms);

#endif
