/*
 * discoveryd nodes in cluster mode for tests and benchmarks: n nodes on one
 * etcd (its client URLs), on a key prefix of their own, each on loopback
 * ports it bound itself (port 0), with a 0.2 s SYNC period.
 */
#ifndef TC_CLUSTER_H
#define TC_CLUSTER_H

#include <stdbool.h>

#include "support/daemon.h"

#define TC_MAX_NODES 5

typedef struct tc_cluster {
	int       n;
	td_daemon d[TC_MAX_NODES]; /* pid 0: not running */
	char      prefix[64];      /* "/t<pid>-<seq>/" */
	char      cluster[512];    /* the --cluster value, etcd://HOST:PORT,... */
	char      urls[1024];      /* every node's REQ/REP URL, comma-separated: a failover list */
	const char *const *extra;  /* more arguments for every node; NULL-terminated, borrowed */
	/* More for node i alone (set before tc_cluster_start: it keeps them); borrowed. */
	const char *const *node_extra[TC_MAX_NODES];
} tc_cluster;

/*
 * Starts n nodes (node0, node1, ...) on the etcd members whose client URLs
 * etcd_urls lists ("http://127.0.0.1:P,http://..."; https:// ones give an
 * etcds:// --cluster, the TLS settings being the caller's extra), on a fresh prefix,
 * each with extra (NULL-terminated, may be NULL; kept for restarts) appended.
 * Returns 0, or -1 after printing why (the nodes started are stopped).
 */
int tc_cluster_start(tc_cluster *c, int n, const char *etcd_urls, const char *const *extra);

/*
 * (Re)starts node i on the REQ/REP and PUB URLs it had before, if any (a
 * node killed with td_daemon_kill keeps them in d[i]), so failover lists
 * stay valid. 0 or -1 after printing why.
 */
int tc_node_start(tc_cluster *c, int i);

/* SIGTERM to every running node; returns the number that did not exit 0. */
int tc_cluster_stop(tc_cluster *c);

#endif
