/*
 * The REP socket's connections (nng pipes) as the server sees them: how
 * many there are against the cap, how many requests each has in the work
 * pool, and when each last completed a request or a reply. It is what
 * lets transport.c refuse connections past the cap, close a connection
 * that floods the pool, and close one that has been silent too long.
 */
#ifndef DSI_CONNS_H
#define DSI_CONNS_H

#include <stddef.h>
#include <stdint.h>

typedef struct dsi_conns dsi_conns;

/* A table for at most max connections (1 .. DSI_CONNS_MAX). NULL when out of memory. */
#define DSI_CONNS_MAX 65536
dsi_conns *dsi_conns_create(size_t max);
void       dsi_conns_destroy(dsi_conns *c);

/* Admits pipe id at monotonic time now. 0, or -1 when the table is at its cap. */
int dsi_conns_add(dsi_conns *c, uint32_t id, int64_t now);

/* Forgets pipe id (a no-op for one never admitted). */
void dsi_conns_remove(dsi_conns *c, uint32_t id);

/*
 * A complete request from id entered the pool: counts it and marks the
 * activity. Returns the requests id now has in the pool (0 for an unknown id).
 */
size_t dsi_conns_begin(dsi_conns *c, uint32_t id, int64_t now);

/* Its reply was handed to nng, or dropped: one fewer in the pool. */
void dsi_conns_end(dsi_conns *c, uint32_t id, int64_t now);

/*
 * Writes up to cap ids of connections with nothing in the pool and no
 * complete message since now - idle_ms; returns how many were written.
 */
size_t dsi_conns_idle(dsi_conns *c, int64_t now, int64_t idle_ms, uint32_t *ids, size_t cap);

size_t dsi_conns_count(dsi_conns *c);

#endif
