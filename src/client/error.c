/*
 * Errors as libdiscovery reports them. dsc_strerror and dsc_health_name
 * are the public faces of the internal tables: libdiscovery alone defines
 * dsc_ symbols, and forwarding keeps one table (common/error.c) so the
 * server's messages and the library's cannot drift.
 */
#include "client/error.h"

#include <stdarg.h>
#include <stdio.h>

#include "common/error.h"

const char *
dsc_strerror(int err)
{
	return dsi_strerror(err);
}

const char *
dsc_health_name(dsc_health h)
{
	return dsi_health_name(h);
}

int
dsi_fail(dsc_error *err, int code, const char *fmt, ...)
{
	if (err != NULL) {
		va_list ap;
		err->code = code;
		va_start(ap, fmt);
		vsnprintf(err->message, sizeof(err->message), fmt, ap);
		va_end(ap);
	}
	return code;
}
