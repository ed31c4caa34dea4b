/*
 * Line-oriented logging, one line per event: at once to a stream, or
 * through a log queue that a thread of its own drains, so that a slow or
 * blocked output never stalls the thread that logs.
 */
#ifndef DSI_LOG_H
#define DSI_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

typedef enum dsi_log_level {
	DSI_LOG_ERROR = 0,
	DSI_LOG_WARN  = 1,
	DSI_LOG_INFO  = 2,
	DSI_LOG_DEBUG = 3,
} dsi_log_level;

/* How a line looks: text (the default) or one JSON object a line. */
typedef enum dsi_log_format {
	DSI_LOG_TEXT = 0,
	DSI_LOG_JSON = 1,
} dsi_log_format;

/*
 * One structured field of a log line, shown as its own key by a
 * structured format (the text format leaves it out: its message says it).
 * A string when str is non-NULL (borrowed, client text included as is:
 * the formatter escapes it), otherwise the number num.
 */
typedef struct dsi_log_field {
	const char *key;
	const char *str;
	long long   num;
} dsi_log_field;

#define DSI_LOG_STR(k, v) ((dsi_log_field) { .key = (k), .str = (v), .num = 0 })
#define DSI_LOG_NUM(k, v) ((dsi_log_field) { .key = (k), .str = NULL, .num = (long long) (v) })

/*
 * Formats one line: at ts, level, the message msg (already formatted) and
 * n_fields fields, '\n' included, into line[cap]; returns its length, at
 * most cap (0: nothing to write). A line that would not fit is shortened
 * and stays well formed.
 * Must not block: it runs on the thread that logs.
 */
typedef size_t (*dsi_log_formatter)(char *line, size_t cap, const struct timespec *ts,
    dsi_log_level level, const char *msg, const dsi_log_field *fields, size_t n_fields);

/*
 * A bounded in-memory queue of log lines and the thread that writes them
 * out. When the output does not keep up and the queue is full, new lines
 * are dropped and counted; once the queue has drained to half, the drainer
 * writes "N log lines dropped" in their place.
 */
typedef struct dsi_logq dsi_logq;

/* A logger is a value: the level and where lines go, passed where needed. */
typedef struct dsi_log {
	_Atomic dsi_log_level level; /* atomic: a reload (SIGHUP) changes it while others log */
	FILE                 *out; /* without a queue: written and flushed at once; NULL: nowhere */
	dsi_logq             *queue;  /* borrowed; NULL: write to out synchronously */
	dsi_log_formatter     format; /* NULL: the text format */
} dsi_log;

#define DSI_LOGQ_BYTES    (256 * 1024) /* discoveryd's queue: about 2,000 lines */
#define DSI_LOGQ_FLUSH_MS 1000         /* how long discoveryd waits for it at exit */

/* Parses "error", "warn", "info" or "debug". Returns 0 or DSC_EINVAL. */
int dsi_log_level_parse(const char *s, dsi_log_level *out);

/* Parses "text" or "json". Returns 0 or DSC_EINVAL. */
int dsi_log_format_parse(const char *s, dsi_log_format *out);

/* "error", "warn", "info", "debug": a level's name. */
const char *dsi_log_level_name(dsi_log_level level);

/* The text format: "<UTC timestamp> <LEVEL> <message>\n"; fields are left out. */
size_t dsi_log_format_text(char *line, size_t cap, const struct timespec *ts, dsi_log_level level,
    const char *msg, const dsi_log_field *fields, size_t n_fields);

/* ts as "2026-12-01T12:00:00.123Z" into buf (24 bytes or more). */
void dsi_log_timestamp(char *buf, size_t cap, const struct timespec *ts);

/*
 * Writes one line in log's format (text: "<UTC timestamp> <LEVEL>
 * <message>\n"), so lines from several threads never interleave. With a
 * queue it never blocks on the output. Strings from clients must be
 * escaped (dsi_text_escape) before they reach fmt's arguments.
 */
void dsi_logf(const dsi_log *log, dsi_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* dsi_logf with n_fields structured fields (borrowed) for formats that show them. */
void dsi_logf_fields(const dsi_log *log, dsi_log_level level, const dsi_log_field *fields,
    size_t n_fields, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#define dsi_error(log, ...) dsi_logf((log), DSI_LOG_ERROR, __VA_ARGS__)
#define dsi_warn(log, ...)  dsi_logf((log), DSI_LOG_WARN, __VA_ARGS__)
#define dsi_info(log, ...)  dsi_logf((log), DSI_LOG_INFO, __VA_ARGS__)
#define dsi_debug(log, ...) dsi_logf((log), DSI_LOG_DEBUG, __VA_ARGS__)

/*
 * Creates a queue of at most bytes (4 KiB or more) writing to fd, which
 * stays the caller's, and starts its thread (with the caller's signal
 * mask). Returns 0, DSC_EINVAL or DSC_ENOMEM; *out is released with
 * dsi_logq_destroy.
 */
int dsi_logq_create(dsi_logq **out, int fd, size_t bytes);

/*
 * The format of the lines the queue writes itself (its "N log lines
 * dropped" report); NULL: text. Set it to the loggers' format.
 */
void dsi_logq_set_format(dsi_logq *q, dsi_log_formatter format);

/* Queues one line of n bytes ending in '\n'; drops and counts it when full. */
void dsi_logq_push(dsi_logq *q, const char *line, size_t n);

/*
 * Waits up to bound_ms for every queued line (and a pending drop report)
 * to be written; true when they were (and for q NULL).
 */
bool dsi_logq_flush(dsi_logq *q, int bound_ms);

/* Lines dropped since the queue was created. */
uint64_t dsi_logq_dropped(dsi_logq *q);

/*
 * Flushes for up to bound_ms, then stops the thread and frees the queue;
 * what is still queued then is lost. The thread never waits on the output
 * for long, so this returns within about bound_ms plus 0.1 s.
 */
void dsi_logq_destroy(dsi_logq *q, int bound_ms);

#endif
