/* Benchmark support: clocks, statistics, child processes (discoveryd through the test kit), /proc,
 * result files. */
#include "common.h"

#include "support/daemon.h"
#include "support/testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef BENCH_DISCOVERYD_PATH
#define BENCH_DISCOVERYD_PATH "discoveryd"
#endif
#ifndef BENCH_ECHO_PATH
#define BENCH_ECHO_PATH "bench_echo"
#endif

/* ---- clocks ---- */

int64_t
bn_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void
bn_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) { }
}

void
bn_sleep_until_ns(int64_t t_ns)
{
	struct timespec ts = { (time_t) (t_ns / 1000000000), (long) (t_ns % 1000000000) };
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) { }
}

/* ---- statistics ---- */

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
	return x < y ? -1 : x > y;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *) a, y = *(const double *) b;
	return x < y ? -1 : x > y;
}

void
bn_sort_u32(uint32_t *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_u32);
}

double
bn_pct_u32(const uint32_t *sorted, size_t n, double p)
{
	if (n == 0) {
		return NAN;
	}
	size_t rank = (size_t) ceil(p / 100.0 * (double) n);
	rank        = rank == 0 ? 1 : (rank > n ? n : rank);
	return sorted[rank - 1];
}

double
bn_median(double *v, size_t n)
{
	if (n == 0) {
		return NAN;
	}
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- options ---- */

int
bn_opts_parse(bn_opts *o, int argc, char **argv, const char *prog)
{
	o->smoke      = false;
	o->reps       = 0;
	o->out_dir    = ".";
	o->discoveryd = BENCH_DISCOVERYD_PATH;
	o->echo       = BENCH_ECHO_PATH;
	o->duration_s = 0;
	o->clients    = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a    = argv[i];
		bool        more = i + 1 < argc;
		if (strcmp(a, "--smoke") == 0) {
			o->smoke = true;
		} else if (strcmp(a, "--reps") == 0 && more) {
			o->reps = atoi(argv[++i]);
		} else if (strcmp(a, "--out") == 0 && more) {
			o->out_dir = argv[++i];
		} else if (strcmp(a, "--discoveryd") == 0 && more) {
			o->discoveryd = argv[++i];
		} else if (strcmp(a, "--echo") == 0 && more) {
			o->echo = argv[++i];
		} else if (strcmp(a, "--duration") == 0 && more) {
			o->duration_s = atof(argv[++i]);
		} else if (strcmp(a, "--clients") == 0 && more) {
			o->clients = argv[++i];
		} else {
			fprintf(stderr,
			    "usage: %s [--smoke] [--reps N] [--out DIR] [--discoveryd PATH] "
			    "[--echo PATH] [--duration SECONDS] [--clients N,N,...]\n",
			    prog);
			return -1;
		}
	}
	if (o->reps <= 0) {
		o->reps = o->smoke ? 1 : 3;
	}
	return 0;
}

/* ---- child servers ---- */

/* The whole file (the test kit's reader), or NULL. */
static char *
slurp(const char *path)
{
	size_t len;
	return tu_slurp(path, &len);
}

static void
dump_log(const bn_child *c)
{
	char *log = slurp(c->log_path);
	fprintf(stderr, "---- %s ----\n%s----\n", c->log_path, log != NULL ? log : "");
	free(log);
}

int
bn_child_start(
    bn_child *c, const char *const *argv, bool want_pub, const char *out_dir, const char *tag)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->log_path, sizeof(c->log_path), "%s/%s.log", out_dir, tag);
	/* A log left by an earlier run must not be read as this child's. */
	int fd = open(c->log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		fprintf(stderr, "cannot create %s: %s\n", c->log_path, strerror(errno));
		return -1;
	}
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		close(fd);
		return -1;
	}
	if (pid == 0) {
		dup2(fd, 2);
		close(fd);
		execv(argv[0], (char *const *) argv);
		fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(fd);
	c->pid = pid;
	for (int i = 0; i < 1500; i++) {
		char *log = slurp(c->log_path);
		char *at  = log != NULL ? strstr(log, "listening on ") : NULL;
		char *pub = log != NULL ? strstr(log, "publishing on ") : NULL;
		if (at != NULL && (pub != NULL || !want_pub)) {
			sscanf(at + strlen("listening on "), "%127s", c->url);
			if (pub != NULL) {
				sscanf(pub + strlen("publishing on "), "%127s", c->pub_url);
			}
			free(log);
			return 0;
		}
		free(log);
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			fprintf(stderr, "%s exited early (status %d)\n", argv[0], st);
			dump_log(c);
			c->pid = 0;
			return -1;
		}
		bn_sleep_ms(10);
	}
	fprintf(stderr, "%s did not report its address within 15 s\n", argv[0]);
	dump_log(c);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	c->pid = 0;
	return -1;
}

int
bn_child_stop(bn_child *c)
{
	int st = 0;
	if (c->pid <= 0) {
		return -1;
	}
	kill(c->pid, SIGTERM);
	for (int i = 0; i < 1000; i++) {
		if (waitpid(c->pid, &st, WNOHANG) == c->pid) {
			c->pid = 0;
			return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
		}
		bn_sleep_ms(10);
	}
	fprintf(stderr, "pid %d ignored SIGTERM for 10 s; killing it\n", (int) c->pid);
	kill(c->pid, SIGKILL);
	waitpid(c->pid, NULL, 0);
	c->pid = 0;
	return -1;
}

int
bn_discoveryd_start(bn_child *c, const bn_opts *o, const char *const *extra, const char *tag)
{
	const char *argv[48];
	char        log_path[sizeof(c->log_path)];
	td_daemon   d;
	int         n = 0;
	argv[n++]     = o->discoveryd;
	argv[n++]     = "--listen";
	argv[n++]     = "tcp://127.0.0.1:0";
	argv[n++]     = "--publish";
	argv[n++]     = "tcp://127.0.0.1:0";
	argv[n++]     = "--admin"; /* never the default port: a running server may hold it */
	argv[n++]     = "http://127.0.0.1:0";
	argv[n++]     = "--log-level";
	argv[n++]     = "info";
	bool own_data = false;
	for (int i = 0; extra != NULL && extra[i] != NULL && n < 44; i++) {
		own_data  = own_data || strcmp(extra[i], "--data") == 0;
		argv[n++] = extra[i];
	}
	if (!own_data) {
		/* Scenarios measure serving; the durable-register scenario asks for its file. */
		argv[n++] = "--data";
		argv[n++] = ":memory:";
	}
	argv[n] = NULL;
	memset(c, 0, sizeof(*c));
	snprintf(log_path, sizeof(log_path), "%s/%s.log", o->out_dir, tag);
	/* The test kit learns the bound URLs from --ready-fd, not from the log. */
	if (td_spawn(&d, argv, log_path, 15000) != 0) {
		return -1;
	}
	c->pid = d.pid;
	snprintf(c->url, sizeof(c->url), "%s", d.url);
	snprintf(c->pub_url, sizeof(c->pub_url), "%s", d.pub_url);
	snprintf(c->log_path, sizeof(c->log_path), "%s", d.log_path);
	const char *admin = strstr(d.ready, "admin ");
	if (admin != NULL && (admin == d.ready || admin[-1] == '\n')) {
		sscanf(admin + 6, "%159s", c->admin_url);
	}
	return 0;
}

/* ---- /proc ---- */

int64_t
bn_proc_cpu_ns(pid_t pid)
{
	char path[64], buf[2048];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		return -1;
	}
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n]  = 0;
	char *p = strrchr(buf, ')'); /* the command name may hold spaces */
	if (p == NULL) {
		return -1;
	}
	/* After ") ": state is field 3; utime and stime are fields 14 and 15. */
	unsigned long long utime = 0, stime = 0;
	int                field = 2;
	for (char *tok = strtok(p + 1, " "); tok != NULL; tok = strtok(NULL, " ")) {
		field++;
		if (field == 14) {
			utime = strtoull(tok, NULL, 10);
		} else if (field == 15) {
			stime = strtoull(tok, NULL, 10);
			break;
		}
	}
	long hz = sysconf(_SC_CLK_TCK);
	return (int64_t) ((utime + stime) * (1000000000ull / (unsigned long long) hz));
}

long
bn_proc_rss_kib(pid_t pid, const char *field)
{
	char path[64], line[256];
	long kib = -1;
	snprintf(path, sizeof(path), "/proc/%d/status", (int) pid);
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		return -1;
	}
	size_t flen = strlen(field);
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, field, flen) == 0) {
			kib = strtol(line + flen, NULL, 10);
			break;
		}
	}
	fclose(f);
	return kib;
}

int64_t
bn_proc_rchar(pid_t pid)
{
	char    path[64], line[128];
	int64_t v = -1;
	snprintf(path, sizeof(path), "/proc/%d/io", (int) pid);
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "rchar:", 6) == 0) {
			v = strtoll(line + 6, NULL, 10);
			break;
		}
	}
	fclose(f);
	return v;
}

int64_t
bn_proc_ctxsw(pid_t pid)
{
	char           path[64], file[352], line[128];
	int64_t        total = 0;
	struct dirent *de;
	snprintf(path, sizeof(path), "/proc/%d/task", (int) pid);
	DIR *dir = opendir(path);
	if (dir == NULL) {
		return -1;
	}
	while ((de = readdir(dir)) != NULL) {
		if (de->d_name[0] == '.') {
			continue;
		}
		snprintf(file, sizeof(file), "%s/%s/status", path, de->d_name);
		FILE *f = fopen(file, "r");
		while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
			if (strncmp(line, "voluntary_ctxt_switches:", 24) == 0) {
				total += strtoll(line + 24, NULL, 10);
			} else if (strncmp(line, "nonvoluntary_ctxt_switches:", 27) == 0) {
				total += strtoll(line + 27, NULL, 10);
			}
		}
		if (f != NULL) {
			fclose(f);
		}
	}
	closedir(dir);
	return total;
}

long
bn_raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
		return -1;
	}
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	return (long) rl.rlim_cur;
}

/* ---- results ---- */

FILE *
bn_out_file(const bn_opts *o, const char *name, const char *mode)
{
	char path[768];
	snprintf(path, sizeof(path), "%s/%s", o->out_dir, name);
	FILE *f = fopen(path, mode);
	if (f == NULL) {
		fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno));
	}
	return f;
}

/* Opens a CSV for appending and writes its header when it is new. */
static FILE *
csv_open(const bn_opts *o, const char *name, const char *header)
{
	FILE *f = bn_out_file(o, name, "a");
	if (f != NULL && ftell(f) == 0) {
		fprintf(f, "%s\n", header);
	}
	return f;
}

static void
fmt_num(char *buf, size_t n, double v)
{
	if (isnan(v)) {
		buf[0] = 0;
	} else if (fabs(v) >= 1000 || v == floor(v)) {
		snprintf(buf, n, "%.0f", v);
	} else if (fabs(v) >= 10) {
		snprintf(buf, n, "%.1f", v);
	} else {
		snprintf(buf, n, "%.3g", v);
	}
}

void
bn_emit(const bn_opts *o, const bn_row *r)
{
	char   v[32], b[32], q[32];
	double ratio = r->ratio;
	if (isnan(ratio) && r->baseline_name != NULL && !isnan(r->baseline) && r->baseline != 0) {
		ratio = r->value / r->baseline;
	}
	fmt_num(v, sizeof(v), r->value);
	fmt_num(b, sizeof(b), r->baseline_name != NULL ? r->baseline : NAN);
	if (isnan(ratio)) {
		q[0] = 0;
	} else if (ratio != 0 && fabs(ratio) < 0.01) {
		snprintf(q, sizeof(q), "%.2g", ratio);
	} else {
		snprintf(q, sizeof(q), "%.3f", ratio);
	}
	printf("%-16s %-28s n=%-6ld %12s %-8s | %-28s %12s | ratio %-7s | %s: %s\n", r->scenario,
	    r->measure, r->n, v, r->unit, r->baseline_name ? r->baseline_name : "-", b,
	    q[0] ? q : "-", r->target ? r->target : "-", r->verdict);
	fflush(stdout);
	FILE *f = csv_open(o, "bench.csv",
	    "scenario,measure,n,unit,value,baseline,baseline_value,ratio,target,verdict");
	if (f == NULL) {
		return;
	}
	fprintf(f, "%s,%s,%ld,%s,%s,%s,%s,%s,%s,%s\n", r->scenario, r->measure, r->n, r->unit, v,
	    r->baseline_name ? r->baseline_name : "", b, q, r->target ? r->target : "", r->verdict);
	fclose(f);
}

void
bn_raw(const bn_opts *o, const char *scenario, const char *server, long n, int rep,
    const char *metric, double value)
{
	FILE *f = csv_open(o, "bench-raw.csv", "scenario,server,n,rep,metric,value");
	if (f != NULL) {
		fprintf(f, "%s,%s,%ld,%d,%s,%.6g\n", scenario, server, n, rep, metric, value);
		fclose(f);
	}
}

void
bn_note(const bn_opts *o, const char *fmt, ...)
{
	va_list ap;
	char    buf[2048];
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	printf("note: %s\n", buf);
	fflush(stdout);
	FILE *f = bn_out_file(o, "notes.txt", "a");
	if (f != NULL) {
		fprintf(f, "%s\n", buf);
		fclose(f);
	}
}
