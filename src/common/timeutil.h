/* Clocks: wall time for what clients see, monotonic time for deadlines. */
#ifndef DSI_TIMEUTIL_H
#define DSI_TIMEUTIL_H

#include <stdint.h>
#include <time.h>

int64_t dsi_wall_ms(void);      /* Unix time in milliseconds */
int64_t dsi_monotonic_ms(void); /* CLOCK_MONOTONIC in milliseconds */

/*
 * The CLOCK_REALTIME instant ms from now (ms < 0 counts as 0), as
 * pthread_cond_timedwait wants it.
 */
void dsi_realtime_after(struct timespec *ts, int64_t ms);

#endif
