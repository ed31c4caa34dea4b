/*
 * One version, generated once: the generated header's parts and string,
 * libdiscovery's dsc_version(), and the --version of the real discoveryd
 * and discoveryctl all agree. (tests/python checks the Python client's.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <discovery/discovery.h>
#include <stdio.h>
#include <string.h>

#include "support/daemon.h"

static void
test_header_string_is_its_parts(void **state)
{
	char parts[64];

	(void) state;
	snprintf(parts, sizeof(parts), "%d.%d.%d", DSC_VERSION_MAJOR, DSC_VERSION_MINOR,
	    DSC_VERSION_PATCH);
	assert_string_equal(DSC_VERSION_STRING, parts);
}

static void
test_library_reports_the_header_version(void **state)
{
	(void) state;
	assert_non_null(dsc_version());
	assert_string_equal(dsc_version(), DSC_VERSION_STRING);
}

/* Runs "path --version" and checks it prints "name VERSION\n" and exits 0. */
static void
assert_prints_version(const char *path, const char *name)
{
	const char *argv[] = { path, "--version", NULL };
	char        out[256], err[1024], want[256];

	assert_int_equal(td_run(argv, out, sizeof(out), err, sizeof(err)), 0);
	snprintf(want, sizeof(want), "%s %s\n", name, DSC_VERSION_STRING);
	assert_string_equal(out, want);
}

static void
test_discoveryd_reports_the_header_version(void **state)
{
	(void) state;
	assert_prints_version(DISCOVERYD_PATH, "discoveryd");
}

static void
test_discoveryctl_reports_the_header_version(void **state)
{
	(void) state;
	assert_prints_version(DISCOVERYCTL_PATH, "discoveryctl");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_string_is_its_parts),
		cmocka_unit_test(test_library_reports_the_header_version),
		cmocka_unit_test(test_discoveryd_reports_the_header_version),
		cmocka_unit_test(test_discoveryctl_reports_the_header_version),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
