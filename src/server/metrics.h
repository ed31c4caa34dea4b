/*
 * Counters and histograms for GET /metrics, and the Prometheus text they
 * are written in.
 *
 * Hot paths (every request, check, event) add to one of DSI_METRICS_SHARDS
 * cache-line-sized shards, picked once per thread, with relaxed atomics:
 * no request shares a cache line with another thread's unless more threads
 * than shards map to the same one. A scrape sums the shards. Every hook
 * takes a NULL dsi_metrics and then does nothing, so modules work without.
 */
#ifndef DSI_METRICS_H
#define DSI_METRICS_H

#include <nng/nng.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct dsi_metrics dsi_metrics;

/* A growing text buffer for rendering; free buf when done. */
typedef struct dsi_textbuf {
	char  *buf;
	size_t len;
	size_t cap;
	bool   failed; /* an allocation failed: the text is incomplete */
} dsi_textbuf;

void dsi_textbuf_printf(dsi_textbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

int  dsi_metrics_create(dsi_metrics **out);
void dsi_metrics_destroy(dsi_metrics *m);

/* CLOCK_MONOTONIC in nanoseconds: the start stamp the hooks below take. */
int64_t dsi_metrics_now_ns(void);

/*
 * One REQ/REP request answered: call is the Request oneof number (0: none
 * could be decoded), status the wire StatusCode.
 */
void dsi_metrics_request(dsi_metrics *m, unsigned call, unsigned status, int64_t start_ns);

/* One health check finished, passed or not, after duration_ns. */
void dsi_metrics_check(dsi_metrics *m, bool passed, int64_t duration_ns);

/* One store commit (the transaction with its fsync) that began at start_ns. */
void dsi_metrics_commit(dsi_metrics *m, int64_t start_ns);

/* One event handed to the PUB socket. */
void dsi_metrics_event(dsi_metrics *m);

/*
 * A PUB subscriber connected (+1) or gone (-1). The publisher calls it from
 * its own pipe callbacks: nng keeps one callback per pipe event and socket.
 */
void dsi_metrics_subscribers(dsi_metrics *m, int delta);

/* Appends every counter and histogram above, summed over the shards. */
void dsi_metrics_render(dsi_metrics *m, dsi_textbuf *b);

/*
 * Appends the process metrics read from /proc/self: resident memory, open
 * descriptors, start time, CPU seconds (standard process_* names).
 */
void dsi_metrics_render_process(dsi_textbuf *b);

#endif
