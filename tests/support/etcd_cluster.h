/*
 * An n-member etcd cluster on loopback for tests and benchmarks: every member
 * a child process with its own client and peer ports (free ports, never
 * fixed ones) and data directory under one scratch directory, started
 * together, and faults on one member at a time (kill -9, restart, SIGSTOP).
 *
 * Settings every member gets, and why:
 *   --pre-vote=true       a member that comes back (restart, SIGCONT) does
 *                         not force an election with a raised term: the
 *                         setting the operator guide recommends
 *                         (docs/cluster-operations.md), tested as run.
 *   --heartbeat-interval 100, --election-timeout 1500 (ms)
 *                         etcd's default heartbeat; an election timeout
 *                         raised from 1000 so that a member starved of CPU
 *                         for a second (a 2-core machine with parallel
 *                         builds) does not start spurious elections, while
 *                         a dead leader is still replaced within about 3 s
 *                         (1.5 to 3 s randomized, plus a pre-vote round),
 *                         which keeps fault suites short.
 *   --experimental-watch-progress-notify-interval 500ms
 *                         as the single-member suites: an idle watch learns
 *                         the revision quickly.
 * Needs curl_global_init (tu_curl_setup) before te_cluster_start: the leader
 * is asked through cluster/etcd's dsi_etcd_status.
 */
#ifndef TEST_ETCD_CLUSTER_H
#define TEST_ETCD_CLUSTER_H

#include <stdint.h>

#include "support/etcd.h"

/* At most this many members. */
#define TE_CLUSTER_MAX 7

/* A running cluster (opaque): te_cluster_start, te_cluster_stop. */
typedef struct te_cluster te_cluster;

/*
 * TLS on the members' client URLs (https://127.0.0.1:P; peers stay plain
 * http on loopback): file paths, borrowed for the cluster's whole life.
 * Members verify every client's certificate (--client-cert-auth).
 */
typedef struct te_tls {
	const char *ca;          /* --trusted-ca-file: the CA that signs clients (and cert) */
	const char *cert;        /* the members' certificate, subjectAltName IP:127.0.0.1 */
	const char *key;         /* its key */
	const char *client_cert; /* what the kit's own status clients present, signed by ca */
	const char *client_key;
} te_tls;

/*
 * te_cluster_start with TLS (tls NULL: as te_cluster_start): the client
 * URLs, te_cluster_endpoints and te_cluster_member_url are https://.
 */
int te_cluster_start_tls(te_cluster **out, int n, const te_tls *tls);

/*
 * Starts n members (1 to TE_CLUSTER_MAX) of a new cluster with the settings
 * above, and waits (within TU_LIVENESS_MS) until every member is ready to
 * serve client requests and a leader exists. A start that loses a port to
 * another process is retried on new ports (the whole cluster: the peer list
 * is fixed at birth). Returns 0 with *out the caller's (te_cluster_stop),
 * or -1 after printing why and the members' logs (nothing left running).
 */
int te_cluster_start(te_cluster **out, int n);

/* How many members it has. */
int te_cluster_size(const te_cluster *cl);

/* "http://127.0.0.1:P0,http://127.0.0.1:P1,...": every member's client URL (owned by cl). */
const char *te_cluster_endpoints(const te_cluster *cl);

/* Member i's client URL, "http://127.0.0.1:P" (owned by cl); i in [0, n). */
const char *te_cluster_member_url(const te_cluster *cl, int i);

/* Member i's etcd member ID (learned at start; the same after a restart). */
uint64_t te_cluster_member_id(const te_cluster *cl, int i);

/*
 * The index of the leader, or -1 when there is none now: the member that
 * every running, unpaused member names as leader when asked (maintenance
 * status), and that is itself running, unpaused and names itself. A killed
 * or paused leader is therefore never returned, even while its followers
 * have not noticed yet. Each member is asked with a short timeout.
 */
int te_cluster_leader(te_cluster *cl);

/*
 * Waits until te_cluster_leader is a member other than not (-1: any), within
 * bound_ms; returns its index, or -1.
 */
int te_cluster_wait_leader(te_cluster *cl, int not, int bound_ms);

/* SIGKILL member i and reap it (its data directory stays). 0, or -1 if not running. */
int te_cluster_kill(te_cluster *cl, int i);

/*
 * Starts member i again after te_cluster_kill, with the same name, ports and
 * data directory, and waits (within TU_LIVENESS_MS) until it is ready to
 * serve client requests, which etcd says only once it has rejoined a
 * cluster with a leader. -1 if it is running, or after printing why (for
 * example: another process took one of its ports meanwhile).
 */
int te_cluster_restart(te_cluster *cl, int i);

/*
 * SIGSTOP member i and wait until all its threads have stopped (te_etcd_pause);
 * te_cluster_resume: SIGCONT. 0, or -1 if it is not running or did not stop.
 */
int te_cluster_pause(te_cluster *cl, int i);
int te_cluster_resume(te_cluster *cl, int i);

/* Prints every member's log to stderr (for a failing test). */
void te_cluster_dump_logs(const te_cluster *cl);

/* Stops every member (SIGTERM, then SIGKILL), removes the scratch directory, frees cl. */
void te_cluster_stop(te_cluster *cl);

#endif
