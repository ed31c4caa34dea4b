/* Line-oriented logging to a stream, one line per event. */
#ifndef DSI_LOG_H
#define DSI_LOG_H

#include <stdio.h>

typedef enum dsi_log_level {
	DSI_LOG_ERROR = 0,
	DSI_LOG_WARN  = 1,
	DSI_LOG_INFO  = 2,
	DSI_LOG_DEBUG = 3,
} dsi_log_level;

/* A logger is a value: the level and the stream, passed where needed. */
typedef struct dsi_log {
	dsi_log_level level;
	FILE         *out;
} dsi_log;

/* Parses "error", "warn", "info" or "debug". Returns 0 or DSC_EINVAL. */
int dsi_log_level_parse(const char *s, dsi_log_level *out);

/*
 * Writes "<UTC timestamp> <LEVEL> <message>\n" as one write, so lines from
 * several threads never interleave. Strings from clients must be escaped
 * (dsi_text_escape) before they reach fmt's arguments.
 */
void dsi_logf(const dsi_log *log, dsi_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define dsi_error(log, ...) dsi_logf((log), DSI_LOG_ERROR, __VA_ARGS__)
#define dsi_warn(log, ...)  dsi_logf((log), DSI_LOG_WARN, __VA_ARGS__)
#define dsi_info(log, ...)  dsi_logf((log), DSI_LOG_INFO, __VA_ARGS__)
#define dsi_debug(log, ...) dsi_logf((log), DSI_LOG_DEBUG, __VA_ARGS__)

#endif
