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

typedef enum dsi_log_level {
	DSI_LOG_ERROR = 0,
	DSI_LOG_WARN  = 1,
	DSI_LOG_INFO  = 2,
	DSI_LOG_DEBUG = 3,
} dsi_log_level;

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
	dsi_logq             *queue; /* borrowed; NULL: write to out synchronously */
} dsi_log;

#define DSI_LOGQ_BYTES    (256 * 1024) /* discoveryd's queue: about 2,000 lines */
#define DSI_LOGQ_FLUSH_MS 1000         /* how long discoveryd waits for it at exit */

/* Parses "error", "warn", "info" or "debug". Returns 0 or DSC_EINVAL. */
int dsi_log_level_parse(const char *s, dsi_log_level *out);

/*
 * Writes "<UTC timestamp> <LEVEL> <message>\n" as one line, so lines from
 * several threads never interleave. With a queue it never blocks on the
 * output. Strings from clients must be escaped (dsi_text_escape) before
 * they reach fmt's arguments.
 */
void dsi_logf(const dsi_log *log, dsi_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

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
