/*
 * The JSON log format (--log-format json): one object a line, built with
 * jansson, so the client library's logging needs no JSON library.
 */
#ifndef DSI_LOGJSON_H
#define DSI_LOGJSON_H

#include "common/log.h"

/*
 * A dsi_log_formatter: {"time":"...Z","level":"info","msg":"...", fields...}
 * and '\n'. Fields named time, level or msg are left out; text that is not
 * UTF-8 has its non-ASCII bytes shown as '?'. A line that would not fit in
 * cap has its message shortened (and, failing that, its fields dropped);
 * out of memory, it returns 0 (nothing to write).
 */
size_t dsi_log_format_json(char *line, size_t cap, const struct timespec *ts, dsi_log_level level,
    const char *msg, const dsi_log_field *fields, size_t n_fields);

#endif
