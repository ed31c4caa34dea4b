/*
 * discoveryctl's command line: the options table, parsing into a ctl, the
 * environment fallbacks, and the usage text.
 */
#ifndef DISCOVERYCTL_ARGS_H
#define DISCOVERYCTL_ARGS_H

#include <stddef.h>
#include <stdio.h>

#include "discoveryctl/ctl.h"

/* What parsing the command line decided. */
enum {
	PARSE_RUN,
	PARSE_HELP,
	PARSE_VERSION,
	PARSE_ERROR,
};

/*
 * Fills c from argv. Options may come before or after the command; "--"
 * ends them. Returns a PARSE_*; for PARSE_ERROR, why says what is wrong.
 * c points into argv (which it may write: --meta is split in place), so
 * argv must outlive c.
 */
int ctl_parse(ctl *c, int argc, char **argv, char *why, size_t n);

/* The whole --help text. */
void ctl_print_usage(FILE *f);

/* After a usage error: the command's own usage when it is known, else all of it. */
void ctl_print_usage_error(const ctl *c, const char *why);

#endif
