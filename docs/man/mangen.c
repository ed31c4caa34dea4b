/*
 * The man pages' settings sections, generated from discoveryd's one options
 * table (server/options.c), so the pages cannot drift from --help. Copies a
 * page template to the output and replaces each marker line with roff:
 *   .\" {{SETTINGS-FLAGS}}  the flags, for discoveryd(8) OPTIONS
 *   .\" {{SETTINGS-ENV}}    the variables, for discoveryd(8) ENVIRONMENT
 *   .\" {{SETTINGS-YAML}}   the YAML keys, for discoveryd.yaml(5)
 * Usage: discovery_mangen TEMPLATE OUTPUT. Runs at build time only.
 */
#include <stdio.h>
#include <string.h>

#include "server/options.h"

/* Writes s as roff text: backslashes escaped, every '-' a minus, as options are. */
static void
put(FILE *out, const char *s)
{
	for (; *s != 0; s++) {
		if (*s == '\\') {
			fputs("\\e", out);
		} else if (*s == '-') {
			fputs("\\-", out);
		} else {
			fputc(*s, out);
		}
	}
}

/* s as a sentence: a capital first letter, and a full stop unless it ends with one. */
static void
put_sentence(FILE *out, const char *s)
{
	size_t len = strlen(s);
	if (s[0] >= 'a' && s[0] <= 'z') {
		fputc(s[0] - 'a' + 'A', out);
		s++;
	}
	put(out, s);
	fputs(len > 0 && s[len - 1] == '.' ? "\n" : ".\n", out);
}

static void
put_default(FILE *out, const dsi_setting_info *s)
{
	fputs("Default: ", out);
	if (strcmp(s->dflt, "none") == 0) {
		fputs("none.\n", out);
	} else {
		fputs("\\fB", out);
		put(out, s->dflt);
		fputs("\\fR.\n", out);
	}
}

/* "--flag ARG", bold and italic. */
static void
put_flag(FILE *out, const dsi_setting_info *s)
{
	fputs("\\fB\\-\\-", out);
	put(out, s->flag);
	fputs("\\fR", out);
	if (!s->toggle && s->arg != NULL && s->arg[0] != 0) {
		fputs(" \\fI", out);
		put(out, s->arg);
		fputs("\\fR", out);
	}
	fputc('\n', out);
}

static void
gen_flags(FILE *out)
{
	for (int i = 0; i < DSI_SET_COUNT; i++) {
		const dsi_setting_info *s = dsi_setting_get((dsi_setting) i);
		if (s->flag == NULL) {
			continue;
		}
		fputs(".TP\n", out);
		put_flag(out, s);
		fputs("\\&", out);
		put_sentence(out, s->help);
		put_default(out, s);
		if (s->list && strstr(s->help, "repeatable") == NULL) {
			fputs("Repeatable.\n", out);
		}
		if (s->env != NULL) {
			fputs("Variable \\fB", out);
			put(out, s->env);
			fputs(s->list ? "\\fR (a comma\\-separated list)" : "\\fR", out);
			fputs(s->toggle ? ", \\fBtrue\\fR or \\fBfalse\\fR" : "", out);
			if (s->yaml != NULL) {
				fputs("; YAML key \\fB", out);
				put(out, s->yaml);
				fputs("\\fR", out);
			}
			fputs(".\n", out);
		}
	}
}

static void
gen_env(FILE *out)
{
	for (int i = 0; i < DSI_SET_COUNT; i++) {
		const dsi_setting_info *s = dsi_setting_get((dsi_setting) i);
		if (s->env == NULL) {
			continue;
		}
		fputs(".TP\n.B ", out);
		put(out, s->env);
		fputc('\n', out);
		if (s->flag != NULL) {
			fputs("As \\fB\\-\\-", out);
			put(out, s->flag);
			fputs(s->list ? "\\fR; a comma\\-separated list.\n" : "\\fR.\n", out);
			continue;
		}
		fputs("\\&", out);
		put_sentence(out, s->help);
		put_default(out, s);
		if (s->secret) {
			fputs("\\fB\\-\\-print\\-config\\fR shows only whether it is set.\n", out);
		}
	}
}

/* One key; the section's keys are named in full (health_check.interval). */
static void
gen_yaml_key(FILE *out, const dsi_setting_info *s)
{
	fputs(".TP\n\\fB", out);
	put(out, s->yaml);
	fputs(":\\fR", out);
	if (s->toggle) {
		fputs(" \\fBtrue\\fR|\\fBfalse\\fR", out);
	} else if (s->arg != NULL && s->arg[0] != 0) {
		fputs(" \\fI", out);
		put(out, s->arg);
		fputs("\\fR", out);
	}
	fputs("\n\\&", out);
	put_sentence(out, s->help);
	put_default(out, s);
	if (s->list) {
		fputs("A value, a comma\\-separated value, or a YAML list.\n", out);
	}
	if (s->flag != NULL) {
		fputs("Flag \\fB\\-\\-", out);
		put(out, s->flag);
		fputs("\\fR", out);
		if (s->env != NULL) {
			fputs(", variable \\fB", out);
			put(out, s->env);
			fputs("\\fR", out);
		}
		fputs(".\n", out);
	}
}

/* The section of a dotted key, its length; 0 for a top-level key. */
static size_t
section_len(const char *yaml)
{
	const char *dot = strchr(yaml, '.');
	return dot != NULL ? (size_t) (dot - yaml) : 0;
}

static void
gen_yaml(FILE *out)
{
	/* Top-level keys, then each section's keys under its own heading, in table order. */
	for (int i = 0; i < DSI_SET_COUNT; i++) {
		const dsi_setting_info *s = dsi_setting_get((dsi_setting) i);
		if (s->yaml != NULL && section_len(s->yaml) == 0) {
			gen_yaml_key(out, s);
		}
	}
	for (int i = 0; i < DSI_SET_COUNT; i++) {
		const dsi_setting_info *s    = dsi_setting_get((dsi_setting) i);
		size_t                  n    = s->yaml != NULL ? section_len(s->yaml) : 0;
		bool                    seen = false;
		for (int j = 0; j < i && n > 0 && !seen; j++) {
			const dsi_setting_info *t = dsi_setting_get((dsi_setting) j);
			seen                      = t->yaml != NULL && section_len(t->yaml) == n
			    && strncmp(t->yaml, s->yaml, n) == 0;
		}
		if (n == 0 || seen) {
			continue;
		}
		fprintf(out, ".SS \"The %.*s section\"\n", (int) n, s->yaml);
		for (int j = i; j < DSI_SET_COUNT; j++) {
			const dsi_setting_info *t = dsi_setting_get((dsi_setting) j);
			if (t->yaml != NULL && section_len(t->yaml) == n
			    && strncmp(t->yaml, s->yaml, n) == 0) {
				gen_yaml_key(out, t);
			}
		}
	}
}

int
main(int argc, char **argv)
{
	static const struct {
		const char *marker;
		void (*gen)(FILE *out);
	} markers[] = {
		{ ".\\\" {{SETTINGS-FLAGS}}", gen_flags },
		{ ".\\\" {{SETTINGS-ENV}}", gen_env },
		{ ".\\\" {{SETTINGS-YAML}}", gen_yaml },
	};
	char  line[4096];
	FILE *in = NULL, *out = NULL;
	int   rv = 1;

	if (argc != 3) {
		fprintf(stderr, "usage: discovery_mangen TEMPLATE OUTPUT\n");
		return 2;
	}
	if ((in = fopen(argv[1], "r")) == NULL || (out = fopen(argv[2], "w")) == NULL) {
		perror(in == NULL ? argv[1] : argv[2]);
		goto done;
	}
	while (fgets(line, sizeof(line), in) != NULL) {
		size_t k, n = strcspn(line, "\n");
		for (k = 0; k < sizeof(markers) / sizeof(markers[0]); k++) {
			if (strlen(markers[k].marker) == n
			    && strncmp(line, markers[k].marker, n) == 0) {
				markers[k].gen(out);
				break;
			}
		}
		if (k == sizeof(markers) / sizeof(markers[0])) {
			fputs(line, out);
		}
	}
	rv = ferror(in) ? 1 : 0;
done:
	if (in != NULL) {
		fclose(in);
	}
	if (out != NULL && fclose(out) != 0) {
		rv = 1;
	}
	if (rv != 0 && out != NULL) {
		remove(argv[2]);
	}
	return rv;
}
