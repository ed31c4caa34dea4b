/* The error and health tables: the internal names and libdiscovery's public ones agree. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include <discovery/discovery.h>

#include "common/error.h"

static void
test_strerror_table(void **state)
{
	(void) state;
	assert_string_equal(dsc_strerror(DSC_OK), "success");
	assert_string_equal(dsc_strerror(DSC_ENOTFOUND), "not found");
	assert_string_equal(dsc_strerror(-42), "unknown error");
	assert_string_equal(dsc_health_name(DSC_HEALTH_HEALTHY), "healthy");
	assert_string_equal(dsc_health_name((dsc_health) 9), "unknown");
}

/* Every code in DSC_ERRORS, and one past the end, reads the same on both sides. */
static void
test_public_and_internal_agree(void **state)
{
	static const int codes[] = {
#define CODE(name, value, msg) name,
		DSC_ERRORS(CODE)
#undef CODE
		    - 1,
		1000,
	};
	(void) state;
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		assert_string_equal(dsc_strerror(codes[i]), dsi_strerror(codes[i]));
	}
#define MSG(name, value, msg) assert_string_equal(dsi_strerror(name), msg);
	DSC_ERRORS(MSG)
#undef MSG
	for (int h = -1; h <= 3; h++) {
		assert_string_equal(
		    dsc_health_name((dsc_health) h), dsi_health_name((dsc_health) h));
	}
	assert_string_equal(dsi_health_name(DSC_HEALTH_UNHEALTHY), "unhealthy");
	assert_string_equal(dsi_health_name(DSC_HEALTH_UNKNOWN), "unknown");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_strerror_table),
		cmocka_unit_test(test_public_and_internal_agree),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
