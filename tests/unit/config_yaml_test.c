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
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
