/* The checker's pure parts: check URLs and the rise/fall state machine. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <string.h>

#include "server/checker.h"
#include "support/testutil.h"

static void
test_check_urls(void **state)
{
	static const struct {
		const char *endpoint, *path, *want;
		bool        connect_only;
	} cases[] = {
		{ "http://m:9000", "/health", "http://m:9000/health", false },
		{ "http://m:9000/", "/health", "http://m:9000/health", false },
		{ "http://m:9000/api", "/status", "http://m:9000/api/status", false },
		{ "http://m:9000/api/", "status", "http://m:9000/api/status", false },
		{ "http://m:9000/api//", "/status", "http://m:9000/api/status", false },
		{ "https://m", "", "https://m/health", false },
		{ "http://m:9000/?zone=a", "/ready", "http://m:9000/ready?zone=a", false },
		{ "http://m:9000", "/a/b?c=d", "http://m:9000/a/b?c=d", false },
		{ "http://m:9000/?zone=a", "/ready?full=1", "http://m:9000/ready?zone=a&full=1",
		    false },
		{ "tcp://db:5432", "/ignored", "http://db:5432/", true },
	};
	(void) state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char url[DSI_CHECK_URL_MAX];
		bool co = !cases[i].connect_only;
		if (dsi_check_url(cases[i].endpoint, cases[i].path, url, sizeof(url), &co) != 0) {
			fail_msg("case %zu: no URL", i);
		}
		if (strcmp(url, cases[i].want) != 0) {
			fail_msg("case %zu: got %s, want %s", i, url, cases[i].want);
		}
		assert_int_equal(co, cases[i].connect_only);
	}
}

/* Feeds a run of results and returns the state after each. */
static void
run(dsc_health start, const char *results, int rise, int fall, const char *want)
{
	dsc_health st = start;
	int        ok = 0, bad = 0;
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
		cmocka_unit_test(test_check_urls),
		cmocka_unit_test(test_transitions),
	};
	return cmocka_run_group_tests(tests, tu_curl_setup, tu_curl_teardown);
}
