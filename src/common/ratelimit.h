/*
 * Rate-limited log lines: at most one line per interval for one kind of
 * event, and the next line says how many were held back meanwhile. A
 * limiter is a value inside its owner (no global state); it needs no
 * init beyond DSI_RATELIMIT_INIT and no cleanup, and is thread-safe.
 */
#ifndef DSI_RATELIMIT_H
#define DSI_RATELIMIT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/log.h"

typedef struct dsi_ratelimit {
	int64_t          interval_ms; /* set once, before any use */
	_Atomic int64_t  next_ms;     /* monotonic time the next line may go out */
	_Atomic uint64_t held;        /* events since the last line went out */
} dsi_ratelimit;

#define DSI_RATELIMIT_INIT(ms) \
	{                      \
		(ms), 0, 0     \
	}

/* The interval most rate-limited lines use: one a minute at most. */
#define DSI_RATELIMIT_DEFAULT_MS 60000

/* Sets the interval (before any other call); the limiter starts open. */
void dsi_ratelimit_init(dsi_ratelimit *rl, int64_t interval_ms);

/*
 * Counts one event at monotonic time now_ms. True when a line may be
 * written now; then *held is how many earlier events were not reported.
 */
bool dsi_ratelimit_allow(dsi_ratelimit *rl, int64_t now_ms, uint64_t *held);

/*
 * Counts one event and, when the limiter allows, logs fmt at level with
 * " (N more since the last report)" appended when some were held back.
 * Returns true when the line was written (or would have been, below the
 * log level).
 */
bool dsi_ratelimit_logf(dsi_ratelimit *rl, const dsi_log *log, dsi_log_level level, const char *fmt,
    ...) __attribute__((format(printf, 4, 5)));

#endif
