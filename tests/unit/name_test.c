/* Service-name normalization and validation: a table of good and bad names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include <discovery/discovery.h>

#include "common/name.h"

static const struct {
	const char *in;
	const char *want; /* NULL: rejected */
	const char *why;  /* a fragment of the reason, for rejected names */
} cases[] = {
	{ "memory", "memory", NULL },
	{ "Memory_Service", "memory-service", NULL },
	{ "MEMORY-SERVICE", "memory-service", NULL },
	{ "cognition_engine", "cognition-engine", NULL },
	{ "a", "a", NULL },
	{ "9", "9", NULL },
	{ "svc.v2", "svc.v2", NULL },
	{ "a-b.c_d", "a-b.c-d", NULL },
	{ "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijk",
	    "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijk", NULL }, /* 63 */
	{ "", NULL, "empty" },
	{ "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijkl", NULL, "more than" },
	{ "-memory", NULL, "start and end" },
	{ "memory-", NULL, "start and end" },
	{ "_memory", NULL, "start and end" },
	{ ".memory", NULL, "start and end" },
	{ "memory.", NULL, "start and end" },
	{ "mem ory", NULL, "position 4" },
	{ "mem/ory", NULL, "outside" },
	{ "mem\nory", NULL, "outside" },
	{ "m\xc3\xa9moire", NULL, "outside" },
	{ "memory:9000", NULL, "outside" },
};

static void
test_table(void **state)
{
	(void) state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char out[DSI_NAME_MAX + 1], why[256] = "";
		int  rv = dsi_name_normalize(cases[i].in, out, why, sizeof(why));
		if (cases[i].want != NULL) {
			if (rv != 0) {
				fail_msg("\"%s\" rejected: %s", cases[i].in, why);
			}
			assert_string_equal(out, cases[i].want);
		} else {
			if (rv != DSC_EINVAL) {
				fail_msg("\"%s\" accepted as \"%s\"", cases[i].in, out);
			}
			if (strstr(why, cases[i].why) == NULL) {
				fail_msg("\"%s\": reason \"%s\" lacks \"%s\"", cases[i].in, why,
				    cases[i].why);
			}
		}
	}
}

static void
test_null_is_empty(void **state)
{
	char out[DSI_NAME_MAX + 1], why[128];
	(void) state;
	assert_int_equal(dsi_name_normalize(NULL, out, why, sizeof(why)), DSC_EINVAL);
}

static void
test_reason_escapes_control_bytes(void **state)
{
	char out[DSI_NAME_MAX + 1], why[256];
	(void) state;
	assert_int_equal(dsi_name_normalize("bad\x1b[31m", out, why, sizeof(why)), DSC_EINVAL);
	assert_null(strchr(why, '\x1b'));
	assert_non_null(strstr(why, "\\x1b"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_null_is_empty),
		cmocka_unit_test(test_reason_escapes_control_bytes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
