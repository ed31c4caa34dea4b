/* Millisecond clocks. */
#include "common/timeutil.h"

#include <time.h>

static int64_t
clock_ms(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
dsi_wall_ms(void)
{
	return clock_ms(CLOCK_REALTIME);
}

int64_t
dsi_monotonic_ms(void)
{
	return clock_ms(CLOCK_MONOTONIC);
}

void
dsi_realtime_after(struct timespec *ts, int64_t ms)
{
	if (ms < 0) {
		ms = 0;
	}
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += (time_t) (ms / 1000);
	ts->tv_nsec += (long) (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}
