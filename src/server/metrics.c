/* Sharded counters and histograms, and their Prometheus text. */
#include "server/metrics.h"

#include <dirent.h>
#include <discovery/discovery.h>
#include <discovery/v1/discovery.pb-c.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DSI_METRICS_SHARDS 16
#define CALLS              24 /* Request oneof numbers below this; others count as 0 */
#define STATUSES           17 /* wire StatusCode values 0..16 */
#define CACHE_LINE         64

/* Upper bounds in seconds, shared by every histogram; +Inf follows. */
static const double bounds[] = { 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5, 10 };
#define NBOUNDS (sizeof(bounds) / sizeof(bounds[0]))

typedef struct histo {
	atomic_uint_fast64_t bucket[NBOUNDS + 1]; /* not cumulative; the last is +Inf */
	atomic_uint_fast64_t sum_ns;
} histo;

/* One thread group's counters: a scrape sums them all. */
typedef struct shard {
	_Alignas(CACHE_LINE) atomic_uint_fast64_t requests[CALLS][STATUSES];
	histo                request_time[CALLS];
	atomic_uint_fast64_t checks[2]; /* failed, passed */
	histo                check_time;
	histo                commit_time;
	atomic_uint_fast64_t events;
	char                 pad[CACHE_LINE]; /* the next shard starts on its own line */
} shard;

struct dsi_metrics {
	shard               shards[DSI_METRICS_SHARDS];
	atomic_int_fast64_t pipes; /* PUB subscribers connected */
};

/* Which shard this thread adds to: a hash of its id, computed once. */
static _Thread_local unsigned my_shard = DSI_METRICS_SHARDS;

static shard *
shard_of(dsi_metrics *m)
{
	if (my_shard == DSI_METRICS_SHARDS) {
		uint64_t h = (uint64_t) (uintptr_t) pthread_self() * 0x9E3779B97F4A7C15ull;
		my_shard   = (unsigned) (h >> 60) % DSI_METRICS_SHARDS;
	}
	return &m->shards[my_shard];
}

#define ADD(ctr, n) atomic_fetch_add_explicit(&(ctr), (n), memory_order_relaxed)
#define GET(ctr)    atomic_load_explicit(&(ctr), memory_order_relaxed)

int
dsi_metrics_create(dsi_metrics **out)
{
	dsi_metrics *m = aligned_alloc(CACHE_LINE, sizeof(*m));
	if (m == NULL) {
		return DSC_ENOMEM;
	}
	memset(m, 0, sizeof(*m));
	*out = m;
	return 0;
}

void
dsi_metrics_destroy(dsi_metrics *m)
{
	free(m);
}

int64_t
dsi_metrics_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void
observe(histo *h, int64_t ns)
{
	size_t i = 0;
	double s = (double) ns / 1e9;
	while (i < NBOUNDS && s > bounds[i]) {
		i++;
	}
	ADD(h->bucket[i], 1);
	ADD(h->sum_ns, (uint64_t) (ns > 0 ? ns : 0));
}

void
dsi_metrics_request(dsi_metrics *m, unsigned call, unsigned status, int64_t start_ns)
{
	if (m == NULL) {
		return;
	}
	shard *s = shard_of(m);
	call     = call < CALLS ? call : 0;
	status   = status < STATUSES ? status : DISCOVERY__V1__STATUS_CODE__STATUS_INTERNAL;
	ADD(s->requests[call][status], 1);
	observe(&s->request_time[call], dsi_metrics_now_ns() - start_ns);
}

void
dsi_metrics_check(dsi_metrics *m, bool passed, int64_t duration_ns)
{
	if (m == NULL) {
		return;
	}
	shard *s = shard_of(m);
	ADD(s->checks[passed ? 1 : 0], 1);
	observe(&s->check_time, duration_ns);
}

void
dsi_metrics_commit(dsi_metrics *m, int64_t start_ns)
{
	if (m != NULL) {
		observe(&shard_of(m)->commit_time, dsi_metrics_now_ns() - start_ns);
	}
}

void
dsi_metrics_event(dsi_metrics *m)
{
	if (m != NULL) {
		ADD(shard_of(m)->events, 1);
	}
}

void
dsi_metrics_subscribers(dsi_metrics *m, int delta)
{
	if (m != NULL) {
		ADD(m->pipes, delta);
	}
}

void
dsi_textbuf_printf(dsi_textbuf *b, const char *fmt, ...)
{
	va_list ap;
	for (int tries = 0; !b->failed && tries < 2; tries++) {
		size_t room = b->cap - b->len;
		va_start(ap, fmt);
		int n = vsnprintf(b->buf != NULL ? b->buf + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->failed = true;
		} else if ((size_t) n < room) {
			b->len += (size_t) n;
			return;
		} else {
			size_t cap = b->cap * 2 + (size_t) n + 256;
			char  *nb  = realloc(b->buf, cap);
			if (nb == NULL) {
				b->failed = true;
			} else {
				b->buf = nb;
				b->cap = cap;
			}
		}
	}
}

/* A histogram summed over the shards, cumulative as Prometheus wants it. */
static void
render_histo(dsi_textbuf *b, const char *name, const char *labels, histo *const *hs)
{
	uint64_t cum = 0, sum_ns = 0;
	for (size_t i = 0; i <= NBOUNDS; i++) {
		for (size_t k = 0; k < DSI_METRICS_SHARDS; k++) {
			cum += GET(hs[k]->bucket[i]);
		}
		if (i < NBOUNDS) {
			dsi_textbuf_printf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels,
			    labels[0] ? "," : "", bounds[i], (unsigned long long) cum);
		} else {
			dsi_textbuf_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels,
			    labels[0] ? "," : "", (unsigned long long) cum);
		}
	}
	for (size_t k = 0; k < DSI_METRICS_SHARDS; k++) {
		sum_ns += GET(hs[k]->sum_ns);
	}
	const char *open = labels[0] ? "{" : "", *close = labels[0] ? "}" : "";
	dsi_textbuf_printf(
	    b, "%s_sum%s%s%s %.9f\n", name, open, labels, close, (double) sum_ns / 1e9);
	dsi_textbuf_printf(
	    b, "%s_count%s%s%s %llu\n", name, open, labels, close, (unsigned long long) cum);
}

static const char *
call_name(unsigned call)
{
	const ProtobufCFieldDescriptor *f = call == 0
	    ? NULL
	    : protobuf_c_message_descriptor_get_field(&discovery__v1__request__descriptor, call);
	return f != NULL ? f->name : "unknown";
}

static const char *
status_name(unsigned status)
{
	const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
	    &discovery__v1__status_code__descriptor, (int) status);
	return v != NULL ? v->name : "STATUS_UNKNOWN";
}

void
dsi_metrics_render(dsi_metrics *m, dsi_textbuf *b)
{
	histo *hs[DSI_METRICS_SHARDS];
	char   labels[96];

	dsi_textbuf_printf(b,
	    "# HELP discovery_requests_total REQ/REP requests answered, by call and status.\n"
	    "# TYPE discovery_requests_total counter\n");
	for (unsigned c = 0; c < CALLS; c++) {
		for (unsigned st = 0; st < STATUSES; st++) {
			uint64_t n = 0;
			for (size_t k = 0; k < DSI_METRICS_SHARDS; k++) {
				n += GET(m->shards[k].requests[c][st]);
			}
			if (n > 0) {
				dsi_textbuf_printf(b,
				    "discovery_requests_total{call=\"%s\",status=\"%s\"} %llu\n",
				    call_name(c), status_name(st), (unsigned long long) n);
			}
		}
	}
	dsi_textbuf_printf(b,
	    "# HELP discovery_request_duration_seconds Time from receipt to reply, by call.\n"
	    "# TYPE discovery_request_duration_seconds histogram\n");
	for (unsigned c = 0; c < CALLS; c++) {
		uint64_t n = 0;
		for (size_t k = 0; k < DSI_METRICS_SHARDS; k++) {
			hs[k] = &m->shards[k].request_time[c];
			for (size_t i = 0; i <= NBOUNDS; i++) {
				n += GET(hs[k]->bucket[i]);
			}
		}
		if (n > 0) {
			snprintf(labels, sizeof(labels), "call=\"%s\"", call_name(c));
			render_histo(b, "discovery_request_duration_seconds", labels, hs);
		}
	}
	uint64_t checks[2] = { 0, 0 }, events = 0;
	for (size_t k = 0; k < DSI_METRICS_SHARDS; k++) {
		checks[0] += GET(m->shards[k].checks[0]);
		checks[1] += GET(m->shards[k].checks[1]);
		events += GET(m->shards[k].events);
		hs[k] = &m->shards[k].check_time;
	}
	dsi_textbuf_printf(b,
	    "# HELP discovery_health_checks_total Health checks finished, by result.\n"
	    "# TYPE discovery_health_checks_total counter\n"
	    "discovery_health_checks_total{result=\"pass\"} %llu\n"
	    "discovery_health_checks_total{result=\"fail\"} %llu\n"
	    "# HELP discovery_health_check_duration_seconds Time one health check took.\n"
	    "# TYPE discovery_health_check_duration_seconds histogram\n",
	    (unsigned long long) checks[1], (unsigned long long) checks[0]);
	render_histo(b, "discovery_health_check_duration_seconds", "", hs);
	for (size_t k = 0; k < DSI_METRICS_SHARDS; k++) {
		hs[k] = &m->shards[k].commit_time;
	}
	dsi_textbuf_printf(b,
	    "# HELP discovery_store_commit_duration_seconds One commit to the data file, fsync "
	    "included.\n"
	    "# TYPE discovery_store_commit_duration_seconds histogram\n");
	render_histo(b, "discovery_store_commit_duration_seconds", "", hs);
	int64_t pipes = GET(m->pipes);
	dsi_textbuf_printf(b,
	    "# HELP discovery_events_published_total Events handed to the PUB socket.\n"
	    "# TYPE discovery_events_published_total counter\n"
	    "discovery_events_published_total %llu\n"
	    "# HELP discovery_subscribers Connections to the PUB socket now.\n"
	    "# TYPE discovery_subscribers gauge\n"
	    "discovery_subscribers %lld\n",
	    (unsigned long long) events, (long long) (pipes > 0 ? pipes : 0));
}

/* Field n (1-based, as proc(5) counts) of /proc/self/stat, after the command. */
static int
stat_fields(unsigned long long *utime, unsigned long long *stime, unsigned long long *start)
{
	char  buf[1024];
	FILE *f = fopen("/proc/self/stat", "r");
	if (f == NULL) {
		return -1;
	}
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n]  = 0;
	char *p = strrchr(buf, ')'); /* the command may hold spaces and parentheses */
	if (p == NULL) {
		return -1;
	}
	/* After ")": field 3 (state) onwards; utime is 14, stime 15, starttime 22. */
	int got = sscanf(p + 2,
	    "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d %llu",
	    utime, stime, start);
	return got == 3 ? 0 : -1;
}

static long long
boot_time(void)
{
	char      line[256];
	long long btime = 0;
	FILE     *f     = fopen("/proc/stat", "r");
	if (f == NULL) {
		return 0;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "btime %lld", &btime) == 1) {
			break;
		}
	}
	fclose(f);
	return btime;
}

void
dsi_metrics_render_process(dsi_textbuf *b)
{
	long               tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	unsigned long long ut, st, start, size, resident;
	FILE              *f = fopen("/proc/self/statm", "r");
	if (f != NULL) {
		if (fscanf(f, "%llu %llu", &size, &resident) == 2) {
			dsi_textbuf_printf(b,
			    "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
			    "# TYPE process_resident_memory_bytes gauge\n"
			    "process_resident_memory_bytes %llu\n"
			    "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
			    "# TYPE process_virtual_memory_bytes gauge\n"
			    "process_virtual_memory_bytes %llu\n",
			    resident * (unsigned long long) page, size * (unsigned long long) page);
		}
		fclose(f);
	}
	DIR *d = opendir("/proc/self/fd");
	if (d != NULL) {
		long           fds = -1; /* the directory's own descriptor is not the process's */
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			fds += e->d_name[0] != '.';
		}
		closedir(d);
		dsi_textbuf_printf(b,
		    "# HELP process_open_fds Number of open file descriptors.\n"
		    "# TYPE process_open_fds gauge\n"
		    "process_open_fds %ld\n",
		    fds);
	}
	if (tick > 0 && stat_fields(&ut, &st, &start) == 0) {
		dsi_textbuf_printf(b,
		    "# HELP process_cpu_seconds_total User and system CPU time spent in seconds.\n"
		    "# TYPE process_cpu_seconds_total counter\n"
		    "process_cpu_seconds_total %.2f\n"
		    "# HELP process_start_time_seconds Start time of the process since the Unix "
		    "epoch in seconds.\n"
		    "# TYPE process_start_time_seconds gauge\n"
		    "process_start_time_seconds %.2f\n",
		    (double) (ut + st) / (double) tick,
		    (double) boot_time() + (double) start / (double) tick);
	}
}
