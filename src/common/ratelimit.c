/* At most one log line per interval for each kind of event. */
#include "common/ratelimit.h"

#include <stdarg.h>
#include <stdio.h>

#include "common/timeutil.h"

void
dsi_ratelimit_init(dsi_ratelimit *rl, int64_t interval_ms)
{
	rl->interval_ms = interval_ms;
	atomic_store(&rl->next_ms, 0);
	atomic_store(&rl->held, 0);
}

bool
dsi_ratelimit_allow(dsi_ratelimit *rl, int64_t now_ms, uint64_t *held)
{
	int64_t next = atomic_load(&rl->next_ms);
	/* One thread wins the window; the others count themselves as held back. */
	if (now_ms >= next
	    && atomic_compare_exchange_strong(&rl->next_ms, &next, now_ms + rl->interval_ms)) {
		*held = atomic_exchange(&rl->held, 0);
		return true;
	}
	atomic_fetch_add(&rl->held, 1);
	return false;
}

bool
dsi_ratelimit_logf(dsi_ratelimit *rl, const dsi_log *log, dsi_log_level level, const char *fmt, ...)
{
	char     line[768];
	uint64_t held;
	va_list  ap;

	if (!dsi_ratelimit_allow(rl, dsi_monotonic_ms(), &held)) {
		return false;
	}
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (held > 0) {
		dsi_logf(log, level, "%s (%llu more since the last report)", line,
		    (unsigned long long) held);
	} else {
		dsi_logf(log, level, "%s", line);
	}
	return true;
}
