/*
 * The intrusive hash table: chains per bucket, doubled at a load of one.
 */
#include "common/hash.h"

#include <stdlib.h>

#include "common/error.h"

uint64_t
dsi_hash_mix(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++) {
		h = (h ^ b[i]) * 1099511628211ull;
	}
	return h;
}

uint64_t
dsi_hash_str(const char *s)
{
	uint64_t h = DSI_HASH_SEED;
	for (; *s; s++) {
		h = (h ^ (unsigned char) *s) * 1099511628211ull;
	}
	return h;
}

int
dsi_hash_init(dsi_hash *h, size_t nbuckets, dsi_hash_match_fn *match)
{
	size_t nb = 1;
	while (nb < nbuckets) {
		nb *= 2;
	}
	h->alloc   = calloc;
	h->match   = match;
	h->count   = 0;
	h->buckets = h->alloc(nb, sizeof(*h->buckets));
	if (h->buckets == NULL) {
		h->nbuckets = 0;
		return DSC_ENOMEM;
	}
	h->nbuckets = nb;
	return 0;
}

void
dsi_hash_fini(dsi_hash *h)
{
	free(h->buckets);
	h->buckets  = NULL;
	h->nbuckets = 0;
	h->count    = 0;
}

size_t
dsi_hash_count(const dsi_hash *h)
{
	return h->count;
}

dsi_hash_node *
dsi_hash_find(const dsi_hash *h, uint64_t hash, const void *key)
{
	dsi_hash_node *n = h->buckets[hash & (h->nbuckets - 1)];
	while (n != NULL && (n->hash != hash || !h->match(n, key))) {
		n = n->next;
	}
	return n;
}

static void
grow(dsi_hash *h)
{
	size_t          nb = h->nbuckets * 2;
	dsi_hash_node **b  = h->alloc(nb, sizeof(*b));
	if (b == NULL) {
		return; /* longer chains, still correct */
	}
	for (size_t i = 0; i < h->nbuckets; i++) {
		for (dsi_hash_node *n = h->buckets[i], *next; n != NULL; n = next) {
			next     = n->next;
			size_t j = n->hash & (nb - 1);
			n->next  = b[j];
			b[j]     = n;
		}
	}
	free(h->buckets);
	h->buckets  = b;
	h->nbuckets = nb;
}

void
dsi_hash_insert(dsi_hash *h, dsi_hash_node *n, uint64_t hash)
{
	size_t i      = hash & (h->nbuckets - 1);
	n->hash       = hash;
	n->next       = h->buckets[i];
	h->buckets[i] = n;
	if (++h->count > h->nbuckets) {
		grow(h);
	}
}

void
dsi_hash_remove(dsi_hash *h, dsi_hash_node *n)
{
	dsi_hash_node **pp = &h->buckets[n->hash & (h->nbuckets - 1)];
	while (*pp != n) {
		pp = &(*pp)->next;
	}
	*pp     = n->next;
	n->next = NULL;
	h->count--;
}

void
dsi_hash_iter_init(dsi_hash_iter *it, const dsi_hash *h)
{
	it->h      = h;
	it->bucket = 0;
	it->next   = h->nbuckets > 0 ? h->buckets[0] : NULL;
}

dsi_hash_node *
dsi_hash_iter_next(dsi_hash_iter *it)
{
	while (it->next == NULL) {
		if (++it->bucket >= it->h->nbuckets) {
			it->bucket = it->h->nbuckets; /* stays done */
			return NULL;
		}
		it->next = it->h->buckets[it->bucket];
	}
	dsi_hash_node *n = it->next;
	it->next         = n->next; /* read before the caller may unlink n */
	return n;
}
