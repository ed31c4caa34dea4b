/*
 * The etcd side of scenario 7 as processes: Debian's etcd on held loopback
 * ports with its data directory in the output folder, and runs of the
 * etcdload Go tool (etcd's clientv3), whose one line of figures is parsed.
 */
#ifndef BENCH_ETCD_PROCS_H
#define BENCH_ETCD_PROCS_H

#include <stddef.h>

#include "common.h"

/* An etcd member started by bn_etcd_start; stop it with bn_child_stop. */
typedef struct bn_etcd {
	bn_child child;         /* child.url is the client URL, http://127.0.0.1:PORT */
	char     data_dir[512]; /* OUT/etcd: data/ (bn_etcd_remove) and etcd.log */
	char     version[32];   /* "3.4.23", from its log; "" if not found */
} bn_etcd;

/*
 * Starts `etcd_path` as a single member with default settings through the
 * test kit's te_etcd_start (tests/support/etcd.h: free loopback ports, retried
 * when lost), its data and log under OUT/etcd, and waits up to 30 s for it to
 * be ready. Returns 0, or -1 after printing why and the log.
 */
int bn_etcd_start(bn_etcd *e, const char *etcd_path, const char *out_dir);

/* Removes the data directory (after bn_child_stop). */
void bn_etcd_remove(bn_etcd *e);

/* The figures etcdload prints for one run of put or range. */
typedef struct bn_go_result {
	double ok, bad, errors, seconds, rps, p50_us, p99_us, server_cpu_s;
} bn_go_result;

/*
 * Runs argv (NULL-terminated; argv[0] the etcdload binary), its stderr
 * appended to log_path, and parses its stdout into *r when r is non-NULL.
 * Returns 0, or -1 after printing why (a failed exit, no figures).
 */
int bn_go_run(const char *const *argv, const char *log_path, bn_go_result *r);

#endif
