/* Server lists (client failover): splitting, trimming, and every refusal with its words. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <discovery/discovery.h>

#include "client/urllist.h"

/* One accepted list and the entries it must give. */
typedef struct good_case {
	const char *name;
	const char *text;
	size_t      n;
	const char *want[3];
} good_case;

static const good_case goods[] = {
	{ "one URL", "tcp://127.0.0.1:7700", 1, { "tcp://127.0.0.1:7700" } },
	{ "two, in order", "tcp://127.0.0.1:7700,tcp://127.0.0.1:7710", 2,
	    { "tcp://127.0.0.1:7700", "tcp://127.0.0.1:7710" } },
	{ "blanks around entries", "  tcp://127.0.0.1:1 ,\ttcp://127.0.0.1:2\n", 2,
	    { "tcp://127.0.0.1:1", "tcp://127.0.0.1:2" } },
	{ "other schemes", "ipc:///tmp/d.sock,tls+tcp://localhost:7700,inproc://x", 3,
	    { "ipc:///tmp/d.sock", "tls+tcp://localhost:7700", "inproc://x" } },
};

/* One refused list and a piece of the message that must say why. */
typedef struct bad_case {
	const char *name;
	const char *text;
	const char *why;
} bad_case;

static const bad_case bads[] = {
	{ "NULL", NULL, "no server URL given" },
	{ "empty", "", "no server URL given" },
	{ "only blanks", "  \t ", "no server URL given" },
	{ "empty middle entry", "tcp://127.0.0.1:1,,tcp://127.0.0.1:2",
	    "server URL 2 of the list is empty" },
	{ "trailing comma", "tcp://127.0.0.1:1,", "server URL 2 of the list is empty" },
	{ "leading comma", ",tcp://127.0.0.1:1", "server URL 1 of the list is empty" },
	{ "blank entry", "tcp://127.0.0.1:1, ,tcp://127.0.0.1:2",
	    "server URL 2 of the list is empty" },
	{ "blank inside", "tcp://127.0.0.1 :1", "contains a blank or control byte" },
	{ "control byte", "tcp://127.0.0.1:1\x01", "contains a blank or control byte" },
	{ "no scheme", "127.0.0.1:7700", "server URL 1 (\"127.0.0.1:7700\") is not a URL" },
	{ "empty scheme", "://127.0.0.1:7700", "is not a URL" },
	{ "scheme only", "tcp://", "is not a URL" },
	{ "bad second", "tcp://127.0.0.1:1,localhost",
	    "server URL 2 (\"localhost\") is not a URL" },
	{ "twice", "tcp://127.0.0.1:1, tcp://127.0.0.1:1",
	    "server URL 2 (\"tcp://127.0.0.1:1\") is listed twice" },
};

static void
test_good_lists(void **state)
{
	(void) state;
	for (size_t i = 0; i < sizeof(goods) / sizeof(goods[0]); i++) {
		const good_case *g = &goods[i];
		dsi_url_list     l;
		char             why[256] = "";
		print_message("good: %s\n", g->name);
		assert_int_equal(dsi_url_list_parse(&l, g->text, why, sizeof(why)), 0);
		assert_int_equal(l.n, g->n);
		for (size_t k = 0; k < g->n; k++) {
			assert_string_equal(l.url[k], g->want[k]);
		}
		dsi_url_list_free(&l);
		assert_int_equal(l.n, 0);
	}
}

static void
test_bad_lists(void **state)
{
	(void) state;
	for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		const bad_case *b = &bads[i];
		dsi_url_list    l;
		char            why[256] = "";
		print_message("bad: %s\n", b->name);
		assert_int_equal(dsi_url_list_parse(&l, b->text, why, sizeof(why)), DSC_EINVAL);
		assert_int_equal(l.n, 0); /* zeroed: nothing to free */
		if (strstr(why, b->why) == NULL) {
			fail_msg("%s: \"%s\" does not say \"%s\"", b->name, why, b->why);
		}
	}
}

/* DSC_MAX_SERVERS entries are fine; one more is refused, saying the limit. */
static void
test_maximum_count(void **state)
{
	char         text[1024] = "", why[256];
	dsi_url_list l;
	(void) state;

	for (int i = 0; i < DSC_MAX_SERVERS; i++) {
		size_t n = strlen(text);
		snprintf(
		    text + n, sizeof(text) - n, "%stcp://127.0.0.1:%d", i > 0 ? "," : "", 7700 + i);
	}
	assert_int_equal(dsi_url_list_parse(&l, text, why, sizeof(why)), 0);
	assert_int_equal(l.n, DSC_MAX_SERVERS);
	dsi_url_list_free(&l);

	size_t n = strlen(text);
	snprintf(text + n, sizeof(text) - n, ",tcp://127.0.0.1:1");
	assert_int_equal(dsi_url_list_parse(&l, text, why, sizeof(why)), DSC_EINVAL);
	char want[64];
	snprintf(want, sizeof(want), "more than %d server URLs", DSC_MAX_SERVERS);
	assert_non_null(strstr(why, want));
}

static void
test_entry_too_long(void **state)
{
	char        *text = malloc(DSI_URL_MAX + 16);
	char         why[256];
	dsi_url_list l;
	(void) state;

	assert_non_null(text);
	strcpy(text, "tcp://");
	memset(text + 6, 'a', DSI_URL_MAX);
	text[DSI_URL_MAX + 6] = 0;
	assert_int_equal(dsi_url_list_parse(&l, text, why, sizeof(why)), DSC_EINVAL);
	assert_non_null(strstr(why, "server URL 1 is longer than"));
	free(text);
}

/* The public check adds nng's judgement of each entry and says which is wrong. */
static void
test_public_check(void **state)
{
	dsc_error err;
	size_t    n = 0;
	(void) state;

	assert_int_equal(
	    dsc_url_list_check("tcp://127.0.0.1:7700, tcp://127.0.0.1:7710", &n, &err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(
	    dsc_url_list_check("tcp://127.0.0.1:7700,tcp://127.0.0.1", &n, &err), DSC_EINVAL);
	assert_int_equal(err.code, DSC_EINVAL);
	assert_non_null(strstr(err.message, "server URL 2 (\"tcp://127.0.0.1\") cannot be dialed"));
	assert_int_equal(dsc_url_list_check("nope://127.0.0.1:1", NULL, &err), DSC_EINVAL);
	assert_non_null(strstr(err.message, "server URL 1"));
	assert_int_equal(dsc_url_list_check("tcp://127.0.0.1:1,,", NULL, &err), DSC_EINVAL);
	assert_non_null(strstr(err.message, "server URL 2 of the list is empty"));
	assert_int_equal(dsc_url_list_check("tcp://127.0.0.1:1", NULL, NULL), 0);
}

/* The opening functions read the same lists (and only say DSC_EINVAL). */
static void
test_open_refuses_bad_lists(void **state)
{
	dsc_client *c = NULL;
	dsc_watch  *w = NULL;
	(void) state;

	/* Refused before any socket exists. Lists that open are failover_test's, against real
	 * servers: a unit test dials nothing. */
	assert_int_equal(
	    dsc_client_open(&c, "tcp://127.0.0.1:1,,tcp://127.0.0.1:2", NULL), DSC_EINVAL);
	assert_null(c);
	assert_int_equal(dsc_watch_open(&w, "tcp://127.0.0.1:1,bad", NULL, 0), DSC_EINVAL);
	assert_null(w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_lists),
		cmocka_unit_test(test_bad_lists),
		cmocka_unit_test(test_maximum_count),
		cmocka_unit_test(test_entry_too_long),
		cmocka_unit_test(test_public_check),
		cmocka_unit_test(test_open_refuses_bad_lists),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
