/* Timestamped, levelled log lines. */
#include "common/log.h"

#include <discovery/discovery.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

static const char *const level_names[] = { "error", "warn", "info", "debug" };

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

void
dsi_logf(const dsi_log *log, dsi_log_level level, const char *fmt, ...)
{
	static const char *const tags[] = { "ERROR", "WARN", "INFO", "DEBUG" };
	char                     line[1024];
	struct timespec          ts;
	struct tm                tm;
	size_t                   n;
	va_list                  ap;

	if (log == NULL || log->out == NULL || level > log->level) {
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t) snprintf(
	    line + n, sizeof(line) - n, ".%03ldZ %-5s ", ts.tv_nsec / 1000000, tags[level]);
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	va_end(ap);
	if (m < 0) {
		m = 0;
	}
	n += (size_t) m;
	if (n > sizeof(line) - 2) {
		n = sizeof(line) - 2;
	}
	line[n++] = '\n';
	fwrite(line, 1, n, log->out);
	fflush(log->out);
}
