/* Rendezvous hashing for health-check ownership (shard.h). */
#include "cluster/shard.h"

#include <string.h>

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME  0x100000001b3ULL

/* FNV-1a over s and its terminating NUL, continuing from h. */
static uint64_t
fnv1a(uint64_t h, const char *s)
{
	const unsigned char *p = (const unsigned char *) s;
	do {
		h ^= *p;
		h *= FNV_PRIME;
	} while (*p++ != '\0');
	return h;
}

uint64_t
dsi_shard_weight(const char *member, const char *service, const char *endpoint)
{
	uint64_t h = fnv1a(fnv1a(fnv1a(FNV_OFFSET, member), service), endpoint);
	/* splitmix64's finalizer: FNV's low bits mix poorly on their own. */
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return h;
}

size_t
dsi_shard_owner(const char *const *names, size_t n, const char *service, const char *endpoint)
{
	size_t   best   = DSI_SHARD_NONE;
	uint64_t best_w = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t w = dsi_shard_weight(names[i], service, endpoint);
		if (best == DSI_SHARD_NONE || w > best_w
		    || (w == best_w && strcmp(names[i], names[best]) < 0)) {
			best   = i;
			best_w = w;
		}
	}
	return best;
}
