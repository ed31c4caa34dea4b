/*
 * A min-heap of entries by due time, for a thread that wakes for the
 * earliest one (the checker's targets). Entries are embedded in the
 * caller's items and know their place, so removal is O(log n). Not
 * thread-safe: one owner.
 */
#ifndef DSI_DUEHEAP_H
#define DSI_DUEHEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DSI_DUE_NONE SIZE_MAX /* idx of an entry not in a heap */

/* One entry; embed it in the item and set idx to DSI_DUE_NONE before first use. */
typedef struct dsi_due {
	int64_t at;  /* the due time, in the owner's clock */
	size_t  idx; /* place in the heap, or DSI_DUE_NONE */
} dsi_due;

typedef struct dsi_dueheap {
	dsi_due **v; /* the heap array; entries are the callers' */
	size_t    n, cap;
} dsi_dueheap;

/* Queues d (not queued yet) at time at. false: out of memory, d stays out. */
bool dsi_dueheap_push(dsi_dueheap *h, dsi_due *d, int64_t at);

/* Takes d out; nothing when it is not queued. */
void dsi_dueheap_remove(dsi_dueheap *h, dsi_due *d);

/* The earliest entry, or NULL when the heap is empty. */
dsi_due *dsi_dueheap_top(const dsi_dueheap *h);

/* Forgets every entry (their idx is left as is) and frees the array. */
void dsi_dueheap_free(dsi_dueheap *h);

#endif
