/*
 * A single-threaded epoll HTTP/1.1 server on 127.0.0.1 for the health
 * sweep: one server answering many paths, /i/<index>/..., over many
 * keep-alive connections. It logs the time of every request per index, so
 * the bench can tell when each instance was checked. An index can hang:
 * its requests are read and logged but never answered.
 */
#ifndef BENCH_HTTPD_H
#define BENCH_HTTPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct bh_server bh_server;

/*
 * Starts serving paths /i/0 .. /i/(n_paths-1) (any suffix; other paths get
 * 404), keeping up to max_hits request times per path. hang[i] (may be
 * NULL) makes path i hang. Returns 0 and *out, or an errno value.
 */
int bh_start(bh_server **out, size_t n_paths, size_t max_hits, const bool *hang);

int bh_port(const bh_server *s);

/* Stops the thread, closes every connection and frees everything; NULL is a no-op. */
void bh_stop(bh_server *s);

/*
 * The request times of path i, in ms since the server started (monotonic),
 * oldest first: *n of them (at most max_hits; later ones are dropped but
 * counted in bh_total). Safe to call while serving.
 */
const uint32_t *bh_hits(bh_server *s, size_t i, size_t *n);

/* The server's clock: ms since it started, the same origin as the hit times. */
uint32_t bh_now_ms(const bh_server *s);

uint64_t bh_total(bh_server *s);     /* requests for known paths */
uint64_t bh_unknown(bh_server *s);   /* requests for other paths */
size_t   bh_max_conns(bh_server *s); /* connections open at once, at most */

#endif
