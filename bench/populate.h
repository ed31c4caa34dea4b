/* Fills a running discoveryd with instances, over several parallel clients. */
#ifndef BENCH_POPULATE_H
#define BENCH_POPULATE_H

#include <discovery/discovery.h>
#include <stdbool.h>
#include <stddef.h>

/* One instance to register; the fill callback writes the buffers. */
typedef struct bn_reg_item {
	char     service[64];
	char     endpoint[192];
	char     health_path[96]; /* "" for the server's default */
	char     keys[2][24];
	char     vals[2][40];
	size_t   n_meta; /* entries of keys/vals used, at most 2 */
	uint32_t ttl_ms;
	bool     heartbeat; /* send one Heartbeat after registering (TTL instances) */
} bn_reg_item;

/* Describes instance i of n into *it (zeroed by the caller). Called from many threads. */
typedef void (*bn_reg_fill)(void *arg, size_t i, bn_reg_item *it);

/*
 * Registers instances 0..n-1 with `threads` clients, each on its own
 * connection. Returns 0, or -1 after printing the first failure.
 * *elapsed_s (may be NULL) is the wall time the registration took.
 */
int bn_register_all(
    const char *url, size_t n, size_t threads, bn_reg_fill fill, void *arg, double *elapsed_s);

#endif
