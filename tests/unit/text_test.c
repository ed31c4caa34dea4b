/* UTF-8 checks and escaping of untrusted strings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "common/text.h"

static const struct {
	const char *s;
	bool        clean;
} utf8_cases[] = {
	{ "", true }, { "plain ascii, with spaces", true }, { "caf\xc3\xa9", true },
	{ "\xe2\x82\xac", true },     /* euro sign */
	{ "\xf0\x9f\x98\x80", true }, /* emoji */
	{ "tab\there", false }, { "nl\n", false }, { "del\x7f", false },
	{ "\xc3", false },                        /* truncated */
	{ "\xc0\xaf", false },                    /* overlong '/' */
	{ "\xed\xa0\x80", false },                /* surrogate */
	{ "\xf4\x90\x80\x80", false },            /* past U+10FFFF */
	{ "\xff", false }, { "\xc2\x85", false }, /* C1 control */
};

static void
test_clean(void **state)
{
	(void) state;
	for (size_t i = 0; i < sizeof(utf8_cases) / sizeof(utf8_cases[0]); i++) {
		if (dsi_text_is_clean(utf8_cases[i].s) != utf8_cases[i].clean) {
			fail_msg(
			    "case %zu: expected %s", i, utf8_cases[i].clean ? "clean" : "rejected");
		}
	}
}

static void
test_escape(void **state)
{
	char out[64];
	(void) state;
	assert_string_equal(dsi_text_escape("ok", out, sizeof(out)), "ok");
	assert_string_equal(dsi_text_escape("a\nb", out, sizeof(out)), "a\\x0ab");
	assert_string_equal(dsi_text_escape("q\"\\", out, sizeof(out)), "q\\x22\\x5c");
	assert_string_equal(dsi_text_escape("\xc3\xa9", out, sizeof(out)), "\\xc3\\xa9");
	/* Truncation keeps the result terminated and marks it. */
	char small[10];
	dsi_text_escape("abcdefghijklmnop", small, sizeof(small));
	assert_true(strlen(small) < sizeof(small));
	assert_non_null(strstr(small, "..."));
}

static void
test_secret_equal(void **state)
{
	(void) state;
	assert_true(dsi_secret_equal("s3cret", "s3cret"));
	assert_false(dsi_secret_equal("s3cret", "s3cre"));
	assert_false(dsi_secret_equal("s3cre", "s3cret"));
	assert_false(dsi_secret_equal("s3cret", "S3cret"));
	assert_false(dsi_secret_equal("", "x"));
	assert_true(dsi_secret_equal(NULL, ""));
}

static void
test_strlcpy(void **state)
{
	char buf[4];
	(void) state;
	assert_true(dsi_strlcpy(buf, "abc", sizeof(buf)));
	assert_false(dsi_strlcpy(buf, "abcd", sizeof(buf)));
	assert_string_equal(buf, "abc");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clean),
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_secret_equal),
		cmocka_unit_test(test_strlcpy),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
