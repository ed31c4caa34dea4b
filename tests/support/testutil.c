/* Shared test helpers. */
#include "testutil.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <time.h>

int
tu_slowdown(void)
{
	const char *env = getenv("DISCOVERY_TEST_SLOWDOWN");
	long        f   = env != NULL ? strtol(env, NULL, 10) : 1;
	return f < 1 ? 1 : f > 100 ? 100 : (int) f;
}

void
tu_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

int64_t
tu_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
tu_curl_setup(void **state)
{
	(void) state;
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

int
tu_curl_teardown(void **state)
{
	(void) state;
	curl_global_cleanup();
	return 0;
}
