/* Timestamped, levelled log lines, written at once or through a log queue. */
#define _GNU_SOURCE /* memrchr */
#include "common/log.h"

#include <discovery/discovery.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/timeutil.h"

#define LINE_MAX_BYTES 1024
/*
 * PIPE_BUF on Linux: once poll says a pipe is writable, a write of this
 * much does not block, so the drainer can always notice a stop.
 */
#define CHUNK_MAX 4096
#define POLL_MS   100

static const char *const level_names[] = { "error", "warn", "info", "debug" };
static const char *const level_tags[]  = { "ERROR", "WARN", "INFO", "DEBUG" };

/* The queue's bytes and counters are protected by mtx; buf is a ring. */
struct dsi_logq {
	pthread_mutex_t   mtx;
	pthread_cond_t    wake;    /* to the drainer: lines were queued, or stop */
	pthread_cond_t    drained; /* from the drainer: the queue is empty */
	pthread_t         thread;
	int               fd; /* the caller's */
	char             *buf;
	size_t            cap;
	size_t            head;       /* first byte not yet written */
	size_t            used;       /* bytes queued from head on, wrapping at cap */
	uint64_t          unreported; /* lines dropped since the last report */
	uint64_t          dropped;    /* lines dropped in all */
	bool              broken;     /* a write failed: the output is gone for good */
	dsi_log_formatter format;     /* of the drop report; NULL: text */
	bool              stop;
};

int
dsi_log_level_parse(const char *s, dsi_log_level *out)
{
	for (int i = 0; i <= DSI_LOG_DEBUG; i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (dsi_log_level) i;
			return 0;
		}
	}
	return DSC_EINVAL;
}

int
dsi_log_format_parse(const char *s, dsi_log_format *out)
{
	if (strcmp(s, "text") == 0) {
		*out = DSI_LOG_TEXT;
	} else if (strcmp(s, "json") == 0) {
		*out = DSI_LOG_JSON;
	} else {
		return DSC_EINVAL;
	}
	return 0;
}

const char *
dsi_log_level_name(dsi_log_level level)
{
	return (unsigned) level <= DSI_LOG_DEBUG ? level_names[level] : "info";
}

void
dsi_log_timestamp(char *buf, size_t cap, const struct timespec *ts)
{
	struct tm tm;
	gmtime_r(&ts->tv_sec, &tm);
	size_t n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, cap - n, ".%03ldZ", ts->tv_nsec / 1000000);
}

size_t
dsi_log_format_text(char *line, size_t cap, const struct timespec *ts, dsi_log_level level,
    const char *msg, const dsi_log_field *fields, size_t n_fields)
{
	char stamp[40];
	(void) fields;
	(void) n_fields;
	dsi_log_timestamp(stamp, sizeof(stamp), ts);
	int    m = snprintf(line, cap - 1, "%s %-5s %s", stamp,
	       level_tags[(unsigned) level <= DSI_LOG_DEBUG ? level : DSI_LOG_INFO], msg);
	size_t n = m < 0 ? 0 : (size_t) m;
	if (n > cap - 2) {
		n = cap - 2;
	}
	line[n++] = '\n';
	return n;
}

/* Formats one line in format (NULL: text) into line[LINE_MAX_BYTES]; returns its length. */
static size_t
format_line(char *line, dsi_log_formatter format, dsi_log_level level, const dsi_log_field *fields,
    size_t n_fields, const char *fmt, va_list ap)
{
	struct timespec ts;
	char            msg[LINE_MAX_BYTES];

	clock_gettime(CLOCK_REALTIME, &ts);
	if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0) {
		msg[0] = 0;
	}
	if (format == NULL) {
		format = dsi_log_format_text;
	}
	return format(line, LINE_MAX_BYTES, &ts, level, msg, fields, n_fields);
}

static size_t format_linef(char *line, dsi_log_formatter format, dsi_log_level level,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static size_t
format_linef(char *line, dsi_log_formatter format, dsi_log_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	size_t n = format_line(line, format, level, NULL, 0, fmt, ap);
	va_end(ap);
	return n;
}

static void
log_line(const dsi_log *log, dsi_log_level level, const dsi_log_field *fields, size_t n_fields,
    const char *fmt, va_list ap)
{
	char   line[LINE_MAX_BYTES];
	size_t n = format_line(line, log->format, level, fields, n_fields, fmt, ap);
	if (n == 0) {
		return;
	}
	if (log->queue != NULL) {
		dsi_logq_push(log->queue, line, n);
		return;
	}
	fwrite(line, 1, n, log->out);
	fflush(log->out);
}

static bool
enabled(const dsi_log *log, dsi_log_level level)
{
	return log != NULL && (log->out != NULL || log->queue != NULL) && level <= log->level;
}

void
dsi_logf(const dsi_log *log, dsi_log_level level, const char *fmt, ...)
{
	va_list ap;

	if (!enabled(log, level)) {
		return;
	}
	va_start(ap, fmt);
	log_line(log, level, NULL, 0, fmt, ap);
	va_end(ap);
}

void
dsi_logf_fields(const dsi_log *log, dsi_log_level level, const dsi_log_field *fields,
    size_t n_fields, const char *fmt, ...)
{
	va_list ap;

	if (!enabled(log, level)) {
		return;
	}
	va_start(ap, fmt);
	log_line(log, level, fields, n_fields, fmt, ap);
	va_end(ap);
}

/* ---- the queue ---- */

/* Copies the line in after what is queued; false when it does not fit. */
static bool
append_locked(dsi_logq *q, const char *line, size_t n)
{
	if (q->cap - q->used < n) {
		return false;
	}
	size_t tail  = (q->head + q->used) % q->cap;
	size_t first = q->cap - tail < n ? q->cap - tail : n;
	memcpy(q->buf + tail, line, first);
	memcpy(q->buf, line + first, n - first);
	q->used += n;
	return true;
}

void
dsi_logq_push(dsi_logq *q, const char *line, size_t n)
{
	pthread_mutex_lock(&q->mtx);
	if (q->broken || !append_locked(q, line, n)) {
		q->unreported++;
		q->dropped++;
	} else {
		pthread_cond_signal(&q->wake);
	}
	pthread_mutex_unlock(&q->mtx);
}

/* Once half the queue is free again, says how many lines were dropped. */
static void
report_locked(dsi_logq *q)
{
	char   line[LINE_MAX_BYTES];
	size_t n;

	if (q->unreported == 0 || q->broken || q->cap - q->used < q->cap / 2) {
		return;
	}
	n = format_linef(line, q->format, DSI_LOG_WARN,
	    "%llu log lines dropped: the log output did not keep up",
	    (unsigned long long) q->unreported);
	if (n > 0 && append_locked(q, line, n)) {
		q->unreported = 0;
	}
}

/* The next bytes to write: contiguous, at most CHUNK_MAX, whole lines when it can. */
static size_t
chunk_locked(const dsi_logq *q)
{
	size_t n = q->used;
	if (n > q->cap - q->head) {
		n = q->cap - q->head;
	}
	if (n > CHUNK_MAX) {
		n = CHUNK_MAX;
	}
	if (n < q->used) {
		const char *nl = memrchr(q->buf + q->head, '\n', n);
		if (nl != NULL) {
			n = (size_t) (nl - (q->buf + q->head)) + 1;
		}
	}
	return n;
}

/* Writes some of at[0..n): bytes written, 0 to try again later, -1 when the output is gone. */
static ssize_t
write_some(int fd, const char *at, size_t n)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT, .revents = 0 };
	int           r = poll(&p, 1, POLL_MS);

	if (r == 0 || (r < 0 && errno == EINTR)) {
		return 0;
	}
	if (r < 0 || (p.revents & (POLLERR | POLLNVAL)) != 0) {
		return -1;
	}
	ssize_t w = write(fd, at, n);
	if (w < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) {
		return 0;
	}
	return w;
}

static size_t
count_lines_locked(const dsi_logq *q)
{
	size_t lines = 0;
	for (size_t i = 0; i < q->used; i++) {
		lines += q->buf[(q->head + i) % q->cap] == '\n';
	}
	return lines;
}

static void *
drain(void *arg)
{
	dsi_logq *q = arg;

	pthread_mutex_lock(&q->mtx);
	for (;;) {
		report_locked(q);
		if (q->used == 0 || q->broken) {
			pthread_cond_broadcast(&q->drained);
			if (q->stop) {
				break;
			}
			pthread_cond_wait(&q->wake, &q->mtx);
			continue;
		}
		if (q->stop) {
			break; /* dsi_logq_destroy gave up waiting on the output */
		}
		/* Pushes only append after used: these bytes stay put while unlocked. */
		size_t      n  = chunk_locked(q);
		const char *at = q->buf + q->head;
		pthread_mutex_unlock(&q->mtx);
		ssize_t w = write_some(q->fd, at, n);
		pthread_mutex_lock(&q->mtx);
		if (w > 0) {
			q->head = (q->head + (size_t) w) % q->cap;
			q->used -= (size_t) w;
		} else if (w < 0) {
			size_t lost = count_lines_locked(q);
			q->unreported += lost;
			q->dropped += lost;
			q->head   = 0;
			q->used   = 0;
			q->broken = true;
		}
	}
	pthread_mutex_unlock(&q->mtx);
	return NULL;
}

int
dsi_logq_create(dsi_logq **out, int fd, size_t bytes)
{
	dsi_logq *q;

	if (fd < 0 || bytes < CHUNK_MAX) {
		return DSC_EINVAL;
	}
	if ((q = calloc(1, sizeof(*q))) == NULL || (q->buf = malloc(bytes)) == NULL) {
		free(q);
		return DSC_ENOMEM;
	}
	q->fd  = fd;
	q->cap = bytes;
	pthread_mutex_init(&q->mtx, NULL);
	pthread_cond_init(&q->wake, NULL);
	pthread_cond_init(&q->drained, NULL);
	if (pthread_create(&q->thread, NULL, drain, q) != 0) {
		pthread_cond_destroy(&q->drained);
		pthread_cond_destroy(&q->wake);
		pthread_mutex_destroy(&q->mtx);
		free(q->buf);
		free(q);
		return DSC_ENOMEM;
	}
	*out = q;
	return 0;
}

void
dsi_logq_set_format(dsi_logq *q, dsi_log_formatter format)
{
	pthread_mutex_lock(&q->mtx);
	q->format = format;
	pthread_mutex_unlock(&q->mtx);
}

bool
dsi_logq_flush(dsi_logq *q, int bound_ms)
{
	struct timespec until;
	bool            done;

	if (q == NULL) {
		return true;
	}
	dsi_realtime_after(&until, bound_ms);
	pthread_mutex_lock(&q->mtx);
	while (!q->broken && (q->used > 0 || q->unreported > 0)) {
		if (pthread_cond_timedwait(&q->drained, &q->mtx, &until) == ETIMEDOUT) {
			break;
		}
	}
	done = q->used == 0 && q->unreported == 0;
	pthread_mutex_unlock(&q->mtx);
	return done;
}

uint64_t
dsi_logq_dropped(dsi_logq *q)
{
	pthread_mutex_lock(&q->mtx);
	uint64_t n = q->dropped;
	pthread_mutex_unlock(&q->mtx);
	return n;
}

void
dsi_logq_destroy(dsi_logq *q, int bound_ms)
{
	if (q == NULL) {
		return;
	}
	dsi_logq_flush(q, bound_ms);
	pthread_mutex_lock(&q->mtx);
	q->stop = true;
	pthread_cond_signal(&q->wake);
	pthread_mutex_unlock(&q->mtx);
	pthread_join(q->thread, NULL);
	pthread_cond_destroy(&q->drained);
	pthread_cond_destroy(&q->wake);
	pthread_mutex_destroy(&q->mtx);
	free(q->buf);
	free(q);
}
