/* The due-time heap: a binary min-heap whose entries carry their index. */
#include "server/dueheap.h"

#include <stdlib.h>

static void
swap(dsi_dueheap *h, size_t i, size_t j)
{
	dsi_due *t   = h->v[i];
	h->v[i]      = h->v[j];
	h->v[j]      = t;
	h->v[i]->idx = i;
	h->v[j]->idx = j;
}

static void
up(dsi_dueheap *h, size_t i)
{
	while (i > 0 && h->v[(i - 1) / 2]->at > h->v[i]->at) {
		swap(h, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void
down(dsi_dueheap *h, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < h->n && h->v[l]->at < h->v[m]->at) {
			m = l;
		}
		if (r < h->n && h->v[r]->at < h->v[m]->at) {
			m = r;
		}
		if (m == i) {
			return;
		}
		swap(h, i, m);
		i = m;
	}
}

bool
dsi_dueheap_push(dsi_dueheap *h, dsi_due *d, int64_t at)
{
	if (h->n == h->cap) {
		size_t    ncap = h->cap == 0 ? 64 : h->cap * 2;
		dsi_due **nv   = realloc(h->v, ncap * sizeof(*nv));
		if (nv == NULL) {
			return false;
		}
		h->v   = nv;
		h->cap = ncap;
	}
	d->at        = at;
	d->idx       = h->n;
	h->v[h->n++] = d;
	up(h, d->idx);
	return true;
}

void
dsi_dueheap_remove(dsi_dueheap *h, dsi_due *d)
{
	size_t i = d->idx;
	if (i == DSI_DUE_NONE) {
		return;
	}
	h->n--;
	if (i != h->n) {
		h->v[i]      = h->v[h->n];
		h->v[i]->idx = i;
		down(h, i);
		up(h, i);
	}
	d->idx = DSI_DUE_NONE;
}

dsi_due *
dsi_dueheap_top(const dsi_dueheap *h)
{
	return h->n > 0 ? h->v[0] : NULL;
}

void
dsi_dueheap_free(dsi_dueheap *h)
{
	free(h->v);
	h->v   = NULL;
	h->n   = 0;
	h->cap = 0;
}
