/* Weighted round-robin: a ticket walks the cumulative weights. */
#include "common/pick.h"

#include <discovery/discovery.h>

static uint64_t
eff_weight(const dsi_pick_src *src, size_t i)
{
	uint32_t w = src->weight(src->items, i);
	return w == 0 ? 1 : w;
}

int
dsi_pick(const dsi_pick_src *src, _Atomic uint64_t *cursor, bool healthy_only, size_t *index)
{
	uint64_t healthy = 0, all = 0, n_healthy = 0;

	for (size_t i = 0; i < src->n; i++) {
		all += eff_weight(src, i);
		if (src->healthy(src->items, i)) {
			healthy += eff_weight(src, i);
			n_healthy++;
		}
	}
	if (all == 0) {
		return DSC_ENOTFOUND;
	}
	bool protect = n_healthy * UINT64_C(1000000) < (uint64_t) src->protect_ppm * src->n;
	if (healthy == 0 && healthy_only && !protect) {
		return DSC_EUNAVAILABLE;
	}
	bool     only_healthy = healthy > 0 && !protect;
	uint64_t t            = atomic_fetch_add_explicit(cursor, 1, memory_order_relaxed)
	    % (only_healthy ? healthy : all);
	for (size_t i = 0; i < src->n; i++) {
		if (only_healthy && !src->healthy(src->items, i)) {
			continue;
		}
		if (t < eff_weight(src, i)) {
			*index = i;
			return 0;
		}
		t -= eff_weight(src, i);
	}
	return DSC_ENOTFOUND; /* unreachable: t < the total walked */
}
