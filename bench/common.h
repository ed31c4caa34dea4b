/*
 * Benchmark support shared by every bench program: clocks, statistics,
 * child servers on loopback, /proc figures, command-line options and the
 * result rows every scenario writes. Benchmarks report; they never assert.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/* ---- clocks ---- */

int64_t bn_now_ns(void); /* CLOCK_MONOTONIC */
void    bn_sleep_ms(long ms);
void    bn_sleep_until_ns(int64_t t_ns); /* CLOCK_MONOTONIC, absolute */

/* ---- statistics ---- */

/* Sorts v in place; then bn_pct_u32 reads the p-th percentile (0..100) by nearest rank. */
void   bn_sort_u32(uint32_t *v, size_t n);
double bn_pct_u32(const uint32_t *sorted, size_t n, double p);

/* The median of n values (n > 0); v is reordered. */
double bn_median(double *v, size_t n);

/* ---- options every program takes ---- */

typedef struct bn_opts {
	bool        smoke;      /* tiny sizes and durations: exercises the code only */
	int         reps;       /* repetitions; medians are over these */
	const char *out_dir;    /* where bench.csv and bench-raw.csv are appended */
	const char *discoveryd; /* the server binary */
	const char *echo;       /* the bench_echo binary (baselines) */
	double      duration_s; /* > 0: overrides a scenario's measuring time per run */
	const char *clients;    /* non-NULL: a comma-separated list overriding client counts */
} bn_opts;

/*
 * Parses --smoke, --reps N, --out DIR, --discoveryd PATH, --echo PATH,
 * --duration SECONDS and --clients LIST from argv; anything else is an error. Defaults: 3 reps (1
 * in smoke mode), out ".", the paths compiled in. Returns 0 or -1 after printing usage.
 */
int bn_opts_parse(bn_opts *o, int argc, char **argv, const char *prog);

/* ---- child servers ---- */

/* A server process on loopback, its stderr in log_path. */
typedef struct bn_child {
	pid_t pid;
	char  url[128];       /* its (first) REQ/REP URL */
	char  pub_url[128];   /* its PUB URL, when it has one */
	char  admin_url[160]; /* its admin URL (discoveryd's --ready-fd "admin" line), or "" */
	char  log_path[512];
} bn_child;

/*
 * For bench_echo, which tells its URLs in its log only; discoveryd starts
 * through bn_discoveryd_start. Starts argv[0] with argv (NULL-terminated), stderr into a log file
 * under out_dir named after tag, and waits (up to 15 s) until the log says "listening on URL" and,
 * when want_pub, "publishing on URL". Returns 0, or -1 after printing why and the log.
 */
int bn_child_start(
    bn_child *c, const char *const *argv, bool want_pub, const char *out_dir, const char *tag);

/* SIGTERM, then up to 10 s, then SIGKILL. Returns the exit status or -1. */
int bn_child_stop(bn_child *c);

/*
 * Starts discoveryd on ephemeral loopback ports with extra args (NULL-terminated,
 * may be NULL), its log in out_dir/tag.log, through the test kit's td_spawn
 * (tests/support/daemon.h), which learns the URLs from --ready-fd within 15 s.
 */
int bn_discoveryd_start(bn_child *c, const bn_opts *o, const char *const *extra, const char *tag);

/* ---- /proc ---- */

int64_t bn_proc_cpu_ns(pid_t pid); /* utime + stime of every thread; -1 on error */
long    bn_proc_rss_kib(pid_t pid, const char *field); /* "VmRSS:", "VmHWM:"; -1 on error */
int64_t bn_proc_rchar(pid_t pid); /* bytes read through read(2)-like calls; -1 on error */
int64_t bn_proc_ctxsw(pid_t pid); /* context switches of every thread; -1 on error */

/* Raises the open-file limit to its hard limit; children inherit it. Returns the new soft limit. */
long bn_raise_nofile(void);

/* ---- results ---- */

/*
 * One summary row of bench.csv (and one line on stdout). value and
 * baseline are medians; ratio is value / baseline unless given (NAN: none).
 * verdict is "met", "missed", "reported" or "skipped".
 */
typedef struct bn_row {
	const char *scenario;
	const char *measure;
	long        n; /* clients, subscribers, instances: the scenario's size */
	const char *unit;
	double      value;
	const char *baseline_name; /* NULL: no baseline */
	double      baseline;
	double      ratio;
	const char *target; /* NULL: none */
	const char *verdict;
} bn_row;

void bn_emit(const bn_opts *o, const bn_row *r);

/* One raw figure of one repetition, into bench-raw.csv. */
void bn_raw(const bn_opts *o, const char *scenario, const char *server, long n, int rep,
    const char *metric, double value);

/* A free-form note into notes.txt (and stdout), for the report. */
void bn_note(const bn_opts *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Opens out_dir/name for writing ("w") or appending ("a"). */
FILE *bn_out_file(const bn_opts *o, const char *name, const char *mode);

#endif
