/* The one load-balancing rule, shared by discoveryd and libdiscovery views. */
#ifndef DSI_PICK_H
#define DSI_PICK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A caller's array of instances, seen through two accessors. */
typedef struct dsi_pick_src {
	const void *items;
	size_t      n;
	uint32_t (*weight)(const void *items, size_t i); /* 0 counts as 1 */
	bool (*healthy)(const void *items, size_t i);
	/* The protection threshold in parts per million of items (0: off). */
	uint32_t protect_ppm;
} dsi_pick_src;

/*
 * Weighted round-robin over the healthy items, or over all of them when none
 * is healthy, unless healthy_only (then DSC_EUNAVAILABLE). When fewer than
 * protect_ppm of the items (by count, as Nacos counts) are healthy, over
 * all of them, healthy_only or not. cursor is the
 * caller's counter, bumped once per pick, so concurrent readers under a read
 * lock each get their own turn. Returns 0 with *index, or DSC_ENOTFOUND for
 * an empty array.
 */
int dsi_pick(const dsi_pick_src *src, _Atomic uint64_t *cursor, bool healthy_only, size_t *index);

#endif
