/* The checker's target table: a dsi_hash on FNV-1a of service "\n" endpoint. */
#include "server/targets.h"

#include <stdlib.h>
#include <string.h>

#include "common/error.h"

/* A target's key, as dsi_hash_find hands it to target_match. */
typedef struct target_key {
	const char *service;
	const char *endpoint;
} target_key;

/* The newline cannot occur in a service name, so (a, bc) and (ab, c) differ. */
static uint64_t
key_hash(const char *svc, const char *ep)
{
	uint64_t h = dsi_hash_mix(DSI_HASH_SEED, svc, strlen(svc));
	h          = dsi_hash_mix(h, "\n", 1);
	return dsi_hash_mix(h, ep, strlen(ep));
}

static bool
target_match(const dsi_hash_node *n, const void *key)
{
	const dsi_target *t = DSI_CONTAINER_OF(n, dsi_target, node);
	const target_key *k = key;
	return strcmp(t->service, k->service) == 0 && strcmp(t->endpoint, k->endpoint) == 0;
}

static dsi_target *
target_of(dsi_hash_node *n)
{
	return n != NULL ? DSI_CONTAINER_OF(n, dsi_target, node) : NULL;
}

int
dsi_targets_init(dsi_targets *ts)
{
	ts->popping = false;
	return dsi_hash_init(&ts->table, 64, target_match);
}

void
dsi_targets_free(dsi_targets *ts)
{
	dsi_hash_fini(&ts->table);
	ts->popping = false;
}

size_t
dsi_targets_count(const dsi_targets *ts)
{
	return dsi_hash_count(&ts->table);
}

dsi_target *
dsi_targets_find(const dsi_targets *ts, const char *svc, const char *ep)
{
	target_key k = { svc, ep };
	return target_of(dsi_hash_find(&ts->table, key_hash(svc, ep), &k));
}

dsi_target *
dsi_targets_insert(dsi_targets *ts, const char *svc, const char *ep)
{
	size_t      ls = strlen(svc) + 1, le = strlen(ep) + 1;
	dsi_target *t = calloc(1, sizeof(*t) + ls + le);
	if (t == NULL) {
		return NULL;
	}
	t->service  = memcpy((char *) (t + 1), svc, ls);
	t->endpoint = memcpy(t->service + ls, ep, le);
	dsi_sched_item_init(&t->s);
	ts->popping = false;
	dsi_hash_insert(&ts->table, &t->node, key_hash(svc, ep));
	return t;
}

void
dsi_targets_remove(dsi_targets *ts, dsi_target *t)
{
	ts->popping = false;
	dsi_hash_remove(&ts->table, &t->node);
}

dsi_target *
dsi_targets_pop(dsi_targets *ts)
{
	/* The walk resumes where the last pop left it, so emptying the table stays linear. */
	if (!ts->popping) {
		dsi_hash_iter_init(&ts->pop_it, &ts->table);
		ts->popping = true;
	}
	dsi_target *t = target_of(dsi_hash_iter_next(&ts->pop_it));
	if (t != NULL) {
		dsi_hash_remove(
		    &ts->table, &t->node); /* the node just returned: the walk stays valid */
	}
	return t;
}

void
dsi_target_free(dsi_target *t)
{
	dsi_probe_clear(&t->probe);
	free(t->url);
	free(t->deferred_reason);
	free(t);
}
