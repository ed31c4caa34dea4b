/* The checker's target table: chained hashing on FNV-1a of (service, endpoint). */
#include "server/targets.h"

#include <stdlib.h>
#include <string.h>

#include "common/error.h"

static uint64_t
key_hash(const char *svc, const char *ep)
{
	uint64_t h = 1469598103934665603ull;
	for (const char *p = svc; *p; p++) {
		h = (h ^ (unsigned char) *p) * 1099511628211ull;
	}
	h = (h ^ '\n') * 1099511628211ull;
	for (const char *p = ep; *p; p++) {
		h = (h ^ (unsigned char) *p) * 1099511628211ull;
	}
	return h;
}

int
dsi_targets_init(dsi_targets *ts)
{
	ts->n        = 0;
	ts->pop_at   = 0;
	ts->nbuckets = 64;
	ts->buckets  = calloc(ts->nbuckets, sizeof(*ts->buckets));
	return ts->buckets != NULL ? 0 : DSC_ENOMEM;
}

void
dsi_targets_free(dsi_targets *ts)
{
	free(ts->buckets);
	ts->buckets = NULL;
	ts->n       = 0;
}

dsi_target **
dsi_targets_slot(dsi_targets *ts, const char *svc, const char *ep)
{
	dsi_target **pp = &ts->buckets[key_hash(svc, ep) & (ts->nbuckets - 1)];
	while (
	    *pp != NULL && (strcmp((*pp)->service, svc) != 0 || strcmp((*pp)->endpoint, ep) != 0)) {
		pp = &(*pp)->hnext;
	}
	return pp;
}

/* Twice the buckets; when that memory is missing, longer chains do. */
static void
grow(dsi_targets *ts)
{
	size_t       nb = ts->nbuckets * 2;
	dsi_target **b  = calloc(nb, sizeof(*b));
	if (b == NULL) {
		return;
	}
	for (size_t i = 0; i < ts->nbuckets; i++) {
		for (dsi_target *t = ts->buckets[i], *next; t != NULL; t = next) {
			next     = t->hnext;
			size_t j = key_hash(t->service, t->endpoint) & (nb - 1);
			t->hnext = b[j];
			b[j]     = t;
		}
	}
	free(ts->buckets);
	ts->buckets  = b;
	ts->nbuckets = nb;
}

dsi_target *
dsi_targets_insert(dsi_targets *ts, dsi_target **slot, const char *svc, const char *ep)
{
	dsi_target *t = calloc(1, sizeof(*t));
	if (t == NULL || (t->service = strdup(svc)) == NULL || (t->endpoint = strdup(ep)) == NULL) {
		if (t != NULL) {
			dsi_target_free(t);
		}
		return NULL;
	}
	dsi_sched_item_init(&t->s);
	*slot      = t;
	ts->pop_at = 0;
	if (++ts->n > ts->nbuckets) {
		grow(ts);
	}
	return t;
}

void
dsi_targets_unlink(dsi_targets *ts, dsi_target **slot)
{
	dsi_target *t = *slot;
	*slot         = t->hnext;
	t->hnext      = NULL;
	ts->n--;
}

dsi_target *
dsi_targets_pop(dsi_targets *ts)
{
	for (size_t i = ts->pop_at; ts->buckets != NULL && i < ts->nbuckets; i++) {
		ts->pop_at = i;
		if (ts->buckets[i] != NULL) {
			dsi_target *t = ts->buckets[i];
			dsi_targets_unlink(ts, &ts->buckets[i]);
			return t;
		}
	}
	return NULL;
}

void
dsi_target_free(dsi_target *t)
{
	dsi_probe_clear(&t->probe);
	free(t->service);
	free(t->endpoint);
	free(t->url);
	free(t);
}
