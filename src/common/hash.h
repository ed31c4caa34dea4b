/*
 * An intrusive chained hash table, keyed by whatever the caller compares,
 * hashed by the caller (dsi_hash_str / dsi_hash_mix: FNV-1a).
 *
 * Ownership: the caller embeds a dsi_hash_node in its struct and keeps
 * owning it; the table allocates only its bucket array (power-of-two
 * sized, doubled when the nodes outnumber the buckets) and frees only that.
 * Not thread-safe: the owner's lock guards it. No global state.
 */
#ifndef DSI_HASH_H
#define DSI_HASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/container_of.h"

/* The link a hashed struct embeds. The table keeps the hash, so growing never calls back. */
typedef struct dsi_hash_node {
	struct dsi_hash_node *next;
	uint64_t              hash;
} dsi_hash_node;

/* Whether node's key equals key (what dsi_hash_find was given). */
typedef bool dsi_hash_match_fn(const dsi_hash_node *node, const void *key);

/* The table; its fields are the module's, read them only through the calls below. */
typedef struct dsi_hash {
	dsi_hash_node    **buckets;
	size_t             nbuckets; /* a power of two */
	size_t             count;
	dsi_hash_match_fn *match;
	/* calloc, set by dsi_hash_init; a test replaces it to make growth fail */
	void *(*alloc)(size_t n, size_t size);
} dsi_hash;

/* A walk over every node; see dsi_hash_iter_next. */
typedef struct dsi_hash_iter {
	const dsi_hash *h;
	size_t          bucket;
	dsi_hash_node  *next;
} dsi_hash_iter;

/* FNV-1a: the seed, one step over n bytes (to hash composite keys), and a C string. */
#define DSI_HASH_SEED 1469598103934665603ull
uint64_t dsi_hash_mix(uint64_t h, const void *p, size_t n);
uint64_t dsi_hash_str(const char *s);

/*
 * Starts an empty table with nbuckets buckets (rounded up to a power of
 * two, at least 1). Returns 0 or DSC_ENOMEM (then h holds nothing).
 */
int dsi_hash_init(dsi_hash *h, size_t nbuckets, dsi_hash_match_fn *match);
/* Frees the bucket array; the nodes still linked stay the caller's. */
void dsi_hash_fini(dsi_hash *h);

size_t dsi_hash_count(const dsi_hash *h);

/* The node with this hash that match says equals key, or NULL. */
dsi_hash_node *dsi_hash_find(const dsi_hash *h, uint64_t hash, const void *key);

/*
 * Links n (not in any table) under hash; the caller checks for a duplicate
 * key first if it must. Never fails: when the table would grow and the
 * doubled array cannot be allocated, it keeps its array (longer chains,
 * still correct) and tries again at the next insert.
 */
void dsi_hash_insert(dsi_hash *h, dsi_hash_node *n, uint64_t hash);

/* Unlinks n, which must be in h. Never shrinks the array. */
void dsi_hash_remove(dsi_hash *h, dsi_hash_node *n);

/*
 * Walks every node once, in no particular order: init, then next until it
 * returns NULL. The node just returned may be removed (even freed) during
 * the walk; any other removal or any insert ends the walk's validity.
 */
void           dsi_hash_iter_init(dsi_hash_iter *it, const dsi_hash *h);
dsi_hash_node *dsi_hash_iter_next(dsi_hash_iter *it);

#endif
