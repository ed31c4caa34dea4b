/* The admin endpoint's request targets: paths, names, and the query string. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "server/admin.h"
#include "server/admin_query.h"

static uint16_t
parse(const char *target, bool instances, dsi_admin_query *q)
{
	char     why[192] = "";
	uint16_t st       = dsi_admin_query_parse(target, instances, q, why, sizeof(why));
	if (st != 0) {
		assert_true(why[0] != 0); /* every refusal says why */
	}
	return st;
}

static void
test_paths(void **state)
{
	dsi_admin_query q;
	(void) state;
	assert_int_equal(parse("/v1/services", false, &q), 0);
	assert_int_equal(q.kind, DSI_CATALOG_SERVICES);
	assert_int_equal(parse("/v1/services/", false, &q), 0);
	assert_int_equal(q.kind, DSI_CATALOG_SERVICES);
	assert_int_equal(parse("/v1/services/Web", false, &q), 0);
	assert_int_equal(q.kind, DSI_CATALOG_SERVICE);
	assert_string_equal(q.service, "web"); /* names are normalized as everywhere */
	assert_int_equal(parse("/v1/instances?healthy", true, &q), 0);
	assert_int_equal(q.kind, DSI_CATALOG_INSTANCES);
	assert_true(q.healthy);
	assert_int_equal(parse("/v1/services/a/b", false, &q), 404);
	assert_int_equal(parse("/elsewhere", false, &q), 404); /* short of the prefix */
	assert_int_equal(parse("", false, &q), 404);
	assert_int_equal(parse("/v1/services/not a name", false, &q), 400);
}

static void
test_query_string(void **state)
{
	dsi_admin_query q;
	(void) state;
	assert_int_equal(parse("/v1/services?index=42&wait=1500ms&healthy=false", false, &q), 0);
	assert_true(q.blocking);
	assert_int_equal(q.index, 42);
	assert_int_equal(q.wait_ms, 1500);
	assert_false(q.healthy);
	assert_int_equal(parse("/v1/services?wait=2", false, &q), 0);
	assert_false(q.blocking);
	assert_int_equal(q.wait_ms, 2000);
	assert_int_equal(parse("/v1/services?wait=10m", false, &q), 0);
	assert_int_equal(q.wait_ms, DSI_ADMIN_MAX_WAIT_MS); /* cut to the maximum */
	assert_int_equal(parse("/v1/services", false, &q), 0);
	assert_int_equal(q.wait_ms, DSI_ADMIN_MAX_WAIT_MS);
	assert_int_equal(parse("/v1/services?x=1&&=&utm_source=a", false, &q), 0); /* ignored */
	assert_int_equal(parse("/v1/services?index=18446744073709551615", false, &q), 0);
	assert_int_equal(q.index, UINT64_MAX);

	assert_int_equal(parse("/v1/services?index=18446744073709551616", false, &q), 400);
	assert_int_equal(parse("/v1/services?index=-1", false, &q), 400);
	assert_int_equal(parse("/v1/services?index", false, &q), 400);
	assert_int_equal(parse("/v1/services?wait=-1s", false, &q), 400);
	assert_int_equal(parse("/v1/services?wait=nan", false, &q), 400);
	assert_int_equal(parse("/v1/services?wait=1e999", false, &q), 400);
	assert_int_equal(parse("/v1/services?wait=5h", false, &q), 400);
	assert_int_equal(parse("/v1/services?healthy=maybe", false, &q), 400);
}

static void
test_wait(void **state)
{
	int64_t ms;
	(void) state;
	assert_int_equal(dsi_admin_parse_wait("0", &ms), 0);
	assert_int_equal(ms, 0);
	assert_int_equal(dsi_admin_parse_wait("0.5s", &ms), 0);
	assert_int_equal(ms, 500);
	assert_int_equal(dsi_admin_parse_wait("", &ms), -1);
	assert_int_equal(dsi_admin_parse_wait("s", &ms), -1);
	assert_int_equal(dsi_admin_parse_wait("1 s", &ms), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_paths),
		cmocka_unit_test(test_query_string),
		cmocka_unit_test(test_wait),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
