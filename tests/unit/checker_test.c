/* The checker's pure part: the rise/fall state machine (check URLs are probe_test's). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "server/checker.h"
#include "support/testutil.h"

/* Feeds a run of results and returns the state after each. */
static void
run(dsc_health start, const char *results, int rise, int fall, const char *want)
{
	dsc_health st = start;
	uint16_t   ok = 0, bad = 0;
	for (size_t i = 0; results[i] != 0; i++) {
		st       = dsi_check_transition(st, results[i] == '+', &ok, &bad, rise, fall);
		char got = st == DSC_HEALTH_HEALTHY ? 'H' : st == DSC_HEALTH_UNHEALTHY ? 'U' : '?';
		if (got != want[i]) {
			fail_msg("results %s (rise %d, fall %d): step %zu is %c, want %c (%s)",
			    results, rise, fall, i, got, want[i], want);
		}
	}
}

static void
test_transitions(void **state)
{
	(void) state;
	/* From UNKNOWN the first result decides. */
	run(DSC_HEALTH_UNKNOWN, "+", 3, 3, "H");
	run(DSC_HEALTH_UNKNOWN, "-", 3, 3, "U");
	/* Then it takes fall failures, or rise passes, in a row. */
	run(DSC_HEALTH_UNKNOWN, "+--+---", 1, 3, "HHHHHHU");
	run(DSC_HEALTH_UNKNOWN, "-++-+++", 3, 1, "UUUUUUH");
	run(DSC_HEALTH_UNKNOWN, "+-+-+-", 2, 2, "HHHHHH"); /* flapping does not flip */
	run(DSC_HEALTH_UNKNOWN, "+-", 1, 1, "HU");
	run(DSC_HEALTH_HEALTHY, "--++", 2, 2, "HUUH");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_transitions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
