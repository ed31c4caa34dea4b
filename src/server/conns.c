/*
 * An open-addressing hash of pipe ids (linear probing, backward-shift
 * deletion), sized twice the cap so it never fills. One mutex: every
 * operation is a few probes.
 */
#include "server/conns.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

/* One connection; id 0 is an empty slot (nng never hands out pipe id 0). */
typedef struct slot {
	uint32_t id;
	uint32_t inflight; /* requests in the work pool */
	int64_t  last;     /* monotonic ms of its last complete request or reply */
} slot;

struct dsi_conns {
	pthread_mutex_t mtx; /* guards everything below */
	slot           *slots;
	size_t          mask; /* slots - 1, a power of two minus one */
	size_t          max;
	size_t          count;
};

dsi_conns *
dsi_conns_create(size_t max)
{
	dsi_conns *c;
	size_t     n = 2;

	if (max == 0 || max > DSI_CONNS_MAX || (c = calloc(1, sizeof(*c))) == NULL) {
		return NULL;
	}
	while (n < 2 * max) {
		n *= 2;
	}
	if ((c->slots = calloc(n, sizeof(*c->slots))) == NULL) {
		free(c);
		return NULL;
	}
	c->mask = n - 1;
	c->max  = max;
	pthread_mutex_init(&c->mtx, NULL);
	return c;
}

void
dsi_conns_destroy(dsi_conns *c)
{
	if (c != NULL) {
		pthread_mutex_destroy(&c->mtx);
		free(c->slots);
		free(c);
	}
}

static size_t
home(const dsi_conns *c, uint32_t id)
{
	return (size_t) ((id * UINT32_C(2654435761)) & c->mask);
}

/* The slot holding id, or NULL; the caller holds mtx. */
static slot *
find_locked(dsi_conns *c, uint32_t id)
{
	for (size_t i = home(c, id);; i = (i + 1) & c->mask) {
		if (c->slots[i].id == id) {
			return &c->slots[i];
		}
		if (c->slots[i].id == 0) {
			return NULL;
		}
	}
}

int
dsi_conns_add(dsi_conns *c, uint32_t id, int64_t now)
{
	int rv = -1;
	pthread_mutex_lock(&c->mtx);
	if (id != 0 && c->count < c->max && find_locked(c, id) == NULL) {
		size_t i = home(c, id);
		while (c->slots[i].id != 0) {
			i = (i + 1) & c->mask;
		}
		c->slots[i] = (slot) { id, 0, now };
		c->count++;
		rv = 0;
	}
	pthread_mutex_unlock(&c->mtx);
	return rv;
}

void
dsi_conns_remove(dsi_conns *c, uint32_t id)
{
	pthread_mutex_lock(&c->mtx);
	slot *s = id != 0 ? find_locked(c, id) : NULL;
	if (s != NULL) {
		/* Backward shift: pull later entries of the run into the hole. */
		size_t hole = (size_t) (s - c->slots);
		for (size_t j = (hole + 1) & c->mask; c->slots[j].id != 0; j = (j + 1) & c->mask) {
			size_t h = home(c, c->slots[j].id);
			/* Movable unless its home lies cyclically in (hole, j]. */
			bool stays = hole <= j ? (h > hole && h <= j) : (h > hole || h <= j);
			if (!stays) {
				c->slots[hole] = c->slots[j];
				hole           = j;
			}
		}
		c->slots[hole].id = 0;
		c->count--;
	}
	pthread_mutex_unlock(&c->mtx);
}

size_t
dsi_conns_begin(dsi_conns *c, uint32_t id, int64_t now)
{
	size_t n = 0;
	pthread_mutex_lock(&c->mtx);
	slot *s = id != 0 ? find_locked(c, id) : NULL;
	if (s != NULL) {
		s->last = now;
		n       = ++s->inflight;
	}
	pthread_mutex_unlock(&c->mtx);
	return n;
}

void
dsi_conns_end(dsi_conns *c, uint32_t id, int64_t now)
{
	pthread_mutex_lock(&c->mtx);
	slot *s = id != 0 ? find_locked(c, id) : NULL;
	if (s != NULL && s->inflight > 0) {
		s->inflight--;
		s->last = now;
	}
	pthread_mutex_unlock(&c->mtx);
}

size_t
dsi_conns_idle(dsi_conns *c, int64_t now, int64_t idle_ms, uint32_t *ids, size_t cap)
{
	size_t n = 0;
	pthread_mutex_lock(&c->mtx);
	for (size_t i = 0; i <= c->mask && n < cap; i++) {
		const slot *s = &c->slots[i];
		if (s->id != 0 && s->inflight == 0 && now - s->last >= idle_ms) {
			ids[n++] = s->id;
		}
	}
	pthread_mutex_unlock(&c->mtx);
	return n;
}

size_t
dsi_conns_count(dsi_conns *c)
{
	pthread_mutex_lock(&c->mtx);
	size_t n = c->count;
	pthread_mutex_unlock(&c->mtx);
	return n;
}
