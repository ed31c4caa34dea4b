/* cmocka group set-up for the tests that call libcurl (kept out of the kit bench links). */
#include <curl/curl.h>

#include "support/testutil.h"

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
