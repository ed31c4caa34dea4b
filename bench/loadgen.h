/*
 * The closed-loop REQ load generator every request/reply scenario uses, so
 * discoveryd and its baseline are driven by exactly the same code: N
 * threads, each with its own nng REQ socket (resend off), each sending the
 * next prepared request as soon as the previous reply arrives.
 */
#ifndef BENCH_LOADGEN_H
#define BENCH_LOADGEN_H

#include <stddef.h>
#include <stdint.h>

typedef struct bn_load_opts {
	const char        *url;
	size_t             clients;
	double             warmup_s;   /* sent but not counted */
	double             duration_s; /* counted */
	const void *const *reqs;       /* requests, used round-robin from a per-thread offset */
	const size_t      *req_lens;
	size_t             n_reqs;
	size_t             expect_len; /* a reply of another length counts as bad; 0: any */
	int                server_pid; /* > 0: its CPU time over the counted window is measured */
} bn_load_opts;

typedef struct bn_load_result {
	uint64_t ok;      /* replies of the expected length, completed in the window */
	uint64_t bad;     /* replies of another length */
	uint64_t errors;  /* send or receive failures (timeouts included) */
	double   seconds; /* the counted window */
	double   rps;     /* ok / seconds */
	double   p50_us, p99_us, p999_us, max_us;
	double   server_cpu_s; /* the server's user + system time in the window, when asked */
	double   server_ctxsw; /* the server's context switches in the window, when asked */
} bn_load_result;

/*
 * Dials o->clients sockets (waiting for each connection), runs the load,
 * closes the sockets. Returns 0, or -1 after printing why (nothing dialled).
 */
int bn_load_run(const bn_load_opts *o, bn_load_result *r);

#endif
