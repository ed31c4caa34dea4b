/*
 * The YAML reader on its own: what a file says (settings as text with their
 * lines, services, warnings) before anything is applied, and errors that
 * name the file and the line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <discovery/discovery.h>

#include "server/config_yaml.h"
#include "support/testutil.h"

typedef struct fixture {
	char          dir[128];
	char          path[192];
	dsi_yaml_file y;
	char          why[512];
} fixture;

static int
setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	if (f == NULL || tu_mkdtemp(f->dir, sizeof(f->dir), "config-yaml-test") != 0) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/d.yaml", f->dir);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	fixture *f = *state;
	dsi_yaml_file_free(&f->y);
	tu_rmtree(f->dir);
	free(f);
	return 0;
}

/* Writes text as the file and reads it. */
static int
read_text(fixture *f, const char *text)
{
	FILE *fp = fopen(f->path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
	dsi_yaml_file_free(&f->y);
	f->why[0] = 0;
	return dsi_yaml_read(&f->y, f->path, f->why, sizeof(f->why));
}

static void
test_settings_in_file_order(void **state)
{
	fixture *f = *state;
	assert_ok(read_text(f,
	    "listen: [tcp://127.0.0.1:1, tcp://127.0.0.1:2]\n"
	    "health_check:\n"
	    "  rise: 3\n"
	    "  interval: 0.5\n"
	    "required: a,b\n"));
	assert_int_equal(f->y.n_settings, 5);
	const dsi_yaml_setting *s = f->y.settings;
	assert_int_equal(s[0].setting, DSI_SET_LISTEN);
	assert_string_equal(s[0].value, "tcp://127.0.0.1:1");
	assert_int_equal(s[1].setting, DSI_SET_LISTEN);
	assert_string_equal(s[1].value, "tcp://127.0.0.1:2");
	assert_int_equal(s[2].setting, DSI_SET_RISE);
	assert_string_equal(s[2].value, "3"); /* text: checking it is the options' job */
	assert_non_null(strstr(s[2].origin, "d.yaml:3 (health_check.rise)"));
	assert_int_equal(s[3].setting, DSI_SET_HEALTH_INTERVAL);
	assert_string_equal(s[3].value, "0.5");
	assert_int_equal(s[4].setting, DSI_SET_REQUIRE);
	assert_string_equal(s[4].value, "a,b"); /* comma lists are split where applied */
	assert_int_equal(f->y.n_boot, 0);
	assert_int_equal(f->y.n_warnings, 0);
}

static void
test_services(void **state)
{
	fixture *f = *state;
	assert_ok(read_text(f,
	    "services:\n"
	    "  memory:\n"
	    "    - http://m1:9000\n"
	    "    - endpoint: http://m2:9000\n"
	    "      health_path: /ready\n"
	    "      ttl_ms: 5000\n"
	    "      weight: 3\n"
	    "      metadata: {zone: eu-1}\n"
	    "      colour: blue\n"
	    "  Cognition_Engine: https://ce:443\n"));
	assert_int_equal(f->y.n_boot, 3);
	const dsi_boot_instance *b = f->y.boot;
	assert_string_equal(b[0].service, "memory");
	assert_string_equal(b[0].endpoint, "http://m1:9000");
	assert_null(b[0].health_path);
	assert_non_null(strstr(b[0].origin, "d.yaml:3"));
	assert_string_equal(b[1].endpoint, "http://m2:9000");
	assert_string_equal(b[1].health_path, "/ready");
	assert_int_equal(b[1].ttl_ms, 5000);
	assert_int_equal(b[1].weight, 3);
	assert_int_equal(b[1].n_metadata, 1);
	assert_string_equal(b[1].metadata[0].key, "zone");
	assert_string_equal(b[1].metadata[0].value, "eu-1");
	assert_string_equal(b[2].service, "cognition-engine"); /* normalized */
	assert_int_equal(f->y.n_warnings, 1);
	assert_non_null(
	    strstr(f->y.warnings[0], "d.yaml:9: service memory: unknown key \"colour\""));
}

static void
test_unknown_keys_warn(void **state)
{
	fixture *f = *state;
	assert_ok(read_text(f, "colour: blue\nhealth_check:\n  flavour: mint\n"));
	assert_int_equal(f->y.n_settings, 0);
	assert_int_equal(f->y.n_warnings, 2);
	assert_non_null(strstr(f->y.warnings[0], "d.yaml:1: unknown key \"colour\""));
	assert_non_null(strstr(f->y.warnings[1], "unknown key \"health_check.flavour\""));
}

static void
test_empty_file(void **state)
{
	fixture *f = *state;
	assert_ok(read_text(f, ""));
	assert_int_equal(f->y.n_settings + f->y.n_boot + f->y.n_warnings, 0);
	assert_ok(read_text(f, "# nothing but a comment\n"));
}

static void
test_errors_name_the_line(void **state)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
		{ "a: [1, 2\n", "d.yaml:2: malformed YAML" },
		{ "- just\n- a list\n", "d.yaml:1: the file must be a mapping" },
		{ "services: http://x\n", "d.yaml:1: services: expects a mapping" },
		{ "services:\n  m:\n    weight: 2\n",
		    "d.yaml:3: service m: an instance needs an endpoint" },
		{ "services:\n  m:\n    endpoint: http://x\n    ttl_ms: -1\n",
		    "d.yaml:4: service m: ttl_ms expects a whole number" },
		{ "services:\n  m:\n    endpoint: http://x\n    metadata: [a]\n",
		    "d.yaml:4: service m: metadata must be a mapping" },
		{ "services:\n  \"bad name!\": http://x\n", "d.yaml:2: services:" },
		{ "health_check:\n  rise: [1, 2]\n",
		    "d.yaml:2: health_check.rise: expects a value" },
		{ "listen: [[tcp://a]]\n", "d.yaml:1: listen: expects a list of values" },
	};
	fixture *f = *state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (read_text(f, cases[i].text) != DSC_EINVAL) {
			fail_msg("case %zu: accepted", i);
		}
		if (strstr(f->why, cases[i].want) == NULL) {
			fail_msg("case %zu: \"%s\" does not hold \"%s\"", i, f->why, cases[i].want);
		}
	}
}

static void
test_missing_file(void **state)
{
	fixture *f = *state;
	char     path[256];
	snprintf(path, sizeof(path), "%s/absent.yaml", f->dir);
	assert_int_equal(dsi_yaml_read(&f->y, path, f->why, sizeof(f->why)), DSC_EINVAL);
	assert_non_null(strstr(f->why, "absent.yaml: cannot read the configuration file"));
}

/* Writes len bytes of text as the file and reads it. */
static int
read_bytes(fixture *f, const char *text, size_t len)
{
	FILE *fp = fopen(f->path, "w");
	assert_non_null(fp);
	assert_int_equal(fwrite(text, 1, len, fp), len);
	fclose(fp);
	dsi_yaml_file_free(&f->y);
	f->why[0] = 0;
	return dsi_yaml_read(&f->y, f->path, f->why, sizeof(f->why));
}

/* n copies of unit, then tail, in a malloc'd string. */
static char *
repeat(const char *unit, size_t n, const char *tail)
{
	size_t ul = strlen(unit), tl = strlen(tail);
	char  *s = malloc(ul * n + tl + 1);
	assert_non_null(s);
	for (size_t i = 0; i < n; i++) {
		memcpy(s + i * ul, unit, ul);
	}
	memcpy(s + ul * n, tail, tl + 1);
	return s;
}

/*
 * 100,000 levels in 200 KB kept libyaml's document loader busy for 27 s:
 * the event pass refuses them at level 33, naming the line.
 */
static void
test_deep_nesting_refused(void **state)
{
	fixture *f     = *state;
	char    *block = repeat("- ", 100000, "x\n");
	char    *flow  = repeat("[", 100000, "");
	char    *maps  = repeat("{a: ", 100000, "");
	assert_int_equal(read_text(f, block), DSC_EINVAL);
	assert_non_null(strstr(f->why, "d.yaml:1: nested more than 32 levels deep"));
	assert_int_equal(read_text(f, flow), DSC_EINVAL);
	assert_non_null(strstr(f->why, "nested more than 32 levels deep"));
	assert_int_equal(read_text(f, maps), DSC_EINVAL);
	assert_non_null(strstr(f->why, "nested more than 32 levels deep"));
	free(block);
	free(flow);
	free(maps);

	/* 32 levels, the root mapping included, are fine; 33 are not. */
	char ok[512] = "", *p = ok;
	for (int i = 1; i < 32; i++) {
		p += sprintf(p, "k%d: {", i);
	}
	p += sprintf(p, "x: y");
	for (int i = 1; i < 32; i++) {
		*p++ = '}';
	}
	strcpy(p, "\n");
	assert_ok(read_text(f, ok));
	assert_int_equal(f->y.n_warnings, 1); /* k1 is not a setting */
	char deep[512];
	snprintf(deep, sizeof(deep), "k0: {%.*s}\n", (int) (strlen(ok) - 1), ok);
	assert_int_equal(read_text(f, deep), DSC_EINVAL);
	assert_non_null(strstr(f->why, "nested more than 32 levels deep"));
}

static void
test_size_limit(void **state)
{
	fixture *f   = *state;
	char    *big = malloc(DSI_YAML_MAX_BYTES + 1);
	assert_non_null(big);
	memset(big, '#', DSI_YAML_MAX_BYTES + 1);
	big[DSI_YAML_MAX_BYTES - 1] = '\n'; /* exactly the limit: a comment */
	assert_ok(read_bytes(f, big, DSI_YAML_MAX_BYTES));
	big[DSI_YAML_MAX_BYTES] = '\n'; /* one byte past */
	assert_int_equal(read_bytes(f, big, DSI_YAML_MAX_BYTES + 1), DSC_EINVAL);
	assert_non_null(strstr(f->why,
	    "d.yaml: the configuration file is 1048577 bytes, more than "
	    "the 1048576 allowed"));
	free(big);
}

/* Opening a FIFO with no writer used to block for ever: refused at once. */
static void
test_not_a_regular_file(void **state)
{
	fixture *f = *state;
	char     fifo[256];
	snprintf(fifo, sizeof(fifo), "%s/fifo.yaml", f->dir);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	alarm((unsigned) (30 * tu_slowdown())); /* a regression fails here, not hangs */
	assert_int_equal(dsi_yaml_read(&f->y, fifo, f->why, sizeof(f->why)), DSC_EINVAL);
	alarm(0);
	assert_non_null(strstr(f->why, "fifo.yaml: the configuration file is not a regular file"));
	assert_int_equal(dsi_yaml_read(&f->y, f->dir, f->why, sizeof(f->why)), DSC_EINVAL);
	assert_non_null(strstr(f->why, "is not a regular file"));
}

static void
test_aliases_and_nul_refused(void **state)
{
	fixture *f = *state;
	assert_int_equal(read_text(f, "a: &x [tcp://127.0.0.1:1]\nlisten: *x\n"), DSC_EINVAL);
	assert_non_null(strstr(f->why, "d.yaml:2: aliases (*name) are not supported"));
	static const char nul[] = "services:\n  m: \"http://a:1\\0http://evil\"\n";
	assert_int_equal(read_text(f, nul), DSC_EINVAL);
	assert_non_null(strstr(f->why, "d.yaml:2: a value holds a NUL byte"));
	/* A raw NUL byte is no YAML at all. */
	assert_int_equal(read_bytes(f, "a: b\0c\n", 7), DSC_EINVAL);
	assert_non_null(strstr(f->why, "malformed YAML"));
}

/* 20 MB of unknown keys gave 1.69 million warning lines: keep 20, count the rest. */
static void
test_warnings_capped(void **state)
{
	fixture *f    = *state;
	char    *text = malloc(1000 * 16);
	char    *p    = text;
	assert_non_null(text);
	for (int i = 0; i < 1000; i++) {
		p += sprintf(p, "key%d: 1\n", i);
	}
	assert_ok(read_text(f, text));
	assert_int_equal(f->y.n_warnings, DSI_CONFIG_MAX_WARNINGS);
	assert_int_equal(f->y.n_more_warnings, 1000 - DSI_CONFIG_MAX_WARNINGS);
	assert_non_null(strstr(f->y.warnings[0], "d.yaml:1: unknown key \"key0\""));
	free(text);
	/* Keys are escaped in warnings: no terminal control from a file. */
	assert_ok(read_text(f, "\"\\e[2J\": 1\n"));
	assert_null(strchr(f->y.warnings[0], 0x1b));
	assert_non_null(strstr(f->y.warnings[0], "\\x1b[2J"));
}

static void
test_parse_from_memory(void **state)
{
	fixture          *f      = *state;
	static const char text[] = "health_check:\n  rise: 3\n";
	assert_ok(
	    dsi_yaml_parse(&f->y, "mem.yaml", text, sizeof(text) - 1, f->why, sizeof(f->why)));
	assert_int_equal(f->y.n_settings, 1);
	assert_non_null(strstr(f->y.settings[0].origin, "mem.yaml:2"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_settings_in_file_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_services, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_keys_warn, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors_name_the_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deep_nesting_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_size_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_a_regular_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_aliases_and_nul_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_warnings_capped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_parse_from_memory, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
