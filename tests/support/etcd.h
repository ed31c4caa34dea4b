/*
 * Debian's etcd as a child process for tests and benchmarks: a single member
 * on free loopback ports with its own data directory, started, waited for and
 * stopped. Shared by tests/ and bench/ (the test kit; no cmocka here).
 */
#ifndef TEST_ETCD_H
#define TEST_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* ctest's SKIP_RETURN_CODE for suites that need etcd when it is not installed. */
#define TE_SKIP 77

/* A running etcd member started by te_etcd_start. */
typedef struct te_etcd {
	pid_t pid;           /* 0 once stopped */
	char  url[64];       /* client URL, http://127.0.0.1:PORT (the JSON gateway too) */
	char  dir[400];      /* holds data/ and etcd.log */
	char  data_dir[448]; /* dir/data */
	char  log_path[448]; /* dir/etcd.log: etcd's stdout and stderr */
	char  version[32];   /* "3.4.23", from its log; "" if not found */
	bool  own_dir;       /* dir is a scratch directory te_etcd_remove deletes */
} te_etcd;

/*
 * The etcd binary: $DISCOVERY_ETCD if set, else /usr/bin/etcd (Debian's
 * etcd-server); NULL when it is not executable.
 */
const char *te_etcd_path(void);

/*
 * A free loopback port: bound to port 0, read, released; -1 on failure.
 * etcd must bind it itself, so another process may take it first; a start
 * then fails with "address already in use" and is retried on new ones.
 */
int te_free_port(void);

/*
 * Starts etcd_path as a single member with default settings plus extra
 * (NULL-terminated, may be NULL), client and peer URLs on free loopback
 * ports (found by binding port 0; a start that loses a port to another
 * process is retried on new ones), in dir (NULL: a fresh scratch directory),
 * and waits up to bound_ms for "ready to serve client requests". Returns 0,
 * or -1 after printing why and the log to stderr (nothing left running).
 */
int te_etcd_start(
    te_etcd *e, const char *etcd_path, const char *dir, const char *const *extra, int bound_ms);

/* SIGTERM, up to 10 s, then SIGKILL; reaps it. Returns its wait status, or -1 if not running. */
int te_etcd_stop(te_etcd *e);

/*
 * SIGSTOP, and waits (up to 5 s) until every thread of it is stopped, so no
 * request already on its way is still answered. te_etcd_resume: SIGCONT.
 * Returns 0, or -1 if it did not stop in time.
 */
int  te_etcd_pause(te_etcd *e);
void te_etcd_resume(te_etcd *e);

/* Removes the data directory (and a scratch dir) after te_etcd_stop. */
void te_etcd_remove(te_etcd *e);

/*
 * A stand-in for a member that lost quorum, which a single real member cannot
 * play: a loopback HTTP server that answers every request as etcd's gateway
 * does with Grpc-Metadata-hasleader and no leader ("etcdserver: no leader",
 * gRPC UNAVAILABLE: the unary error shape, or the stream shape on /v3/watch),
 * then closes the connection. Its URL goes into url.
 */
typedef struct te_noleader te_noleader;
int                        te_noleader_start(te_noleader **out, char *url, size_t len);
int                        te_noleader_hits(te_noleader *n); /* requests answered so far */
void                       te_noleader_stop(te_noleader *n);

#endif
