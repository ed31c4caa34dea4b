/* The shared parsers: whole numbers, seconds, and the token-file reader. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <discovery/discovery.h>

#include "common/parse.h"
#include "common/tokenfile.h"
#include "support/testutil.h"

static void
test_u32(void **state)
{
	static const struct {
		const char *in;
		int         rv;
		uint32_t    want;
	} cases[] = {
		{ "0", 0, 0 },
		{ "42", 0, 42 },
		{ "4294967295", 0, UINT32_MAX },
		{ "4294967296", DSC_EINVAL, 0 },
		{ "-1", DSC_EINVAL, 0 },
		{ "+1", DSC_EINVAL, 0 },
		{ " 1", DSC_EINVAL, 0 },
		{ "1 ", DSC_EINVAL, 0 },
		{ "1x", DSC_EINVAL, 0 },
		{ "", DSC_EINVAL, 0 },
		{ "99999999999999999999999", DSC_EINVAL, 0 },
	};
	(void) state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint32_t v  = 7;
		int      rv = dsi_parse_u32(cases[i].in, &v);
		if (rv != cases[i].rv) {
			fail_msg("\"%s\": rv %d, want %d", cases[i].in, rv, cases[i].rv);
		}
		/* Written on success only. */
		assert_int_equal(v, rv == 0 ? cases[i].want : 7);
	}
	assert_int_equal(dsi_parse_u32(NULL, &(uint32_t) { 0 }), DSC_EINVAL);
}

static void
test_uint_bounds(void **state)
{
	uint64_t v = 0;
	(void) state;
	assert_ok(dsi_parse_uint("64", 64, 128, &v));
	assert_int_equal(v, 64);
	assert_ok(dsi_parse_uint("128", 64, 128, &v));
	assert_int_equal(dsi_parse_uint("63", 64, 128, &v), DSC_EINVAL);
	assert_int_equal(dsi_parse_uint("129", 64, 128, &v), DSC_EINVAL);
	assert_int_equal(v, 128);
}

static void
test_seconds(void **state)
{
	static const struct {
		const char *in;
		double      lo, hi;
		int         rv;
		int         want_ms;
	} cases[] = {
		{ "30", 0.01, 86400, 0, 30000 },
		{ "0.25", 0.01, 86400, 0, 250 },
		{ ".5", 0, 10, 0, 500 },
		{ "5.0", 0, 10, 0, 5000 },
		{ "0", 0, 10, 0, 0 },
		{ "0.0001", 0, 10, 0, 1 }, /* a positive value never becomes 0 ms */
		{ "0.0014", 0, 10, 0, 1 }, /* nearest */
		{ "0.0016", 0, 10, 0, 2 },
		{ "0.001", 0.01, 10, DSC_EINVAL, 0 },
		{ "11", 0, 10, DSC_EINVAL, 0 },
		{ "-1", 0, 10, DSC_EINVAL, 0 },
		{ " 1", 0, 10, DSC_EINVAL, 0 },
		{ "1s", 0, 10, DSC_EINVAL, 0 },
		{ "inf", 0, 10, DSC_EINVAL, 0 },
		{ "nan", 0, 10, DSC_EINVAL, 0 },
		{ ".", 0, 10, DSC_EINVAL, 0 },
		{ "", 0, 10, DSC_EINVAL, 0 },
		{ "1e3", 0, 2000, 0, 1000000 },
	};
	(void) state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int ms = -7;
		int rv = dsi_parse_seconds(cases[i].in, cases[i].lo, cases[i].hi, &ms);
		if (rv != cases[i].rv) {
			fail_msg("\"%s\": rv %d, want %d", cases[i].in, rv, cases[i].rv);
		}
		if (ms != (rv == 0 ? cases[i].want_ms : -7)) {
			fail_msg("\"%s\": %d ms, want %d", cases[i].in, ms, cases[i].want_ms);
		}
	}
}

/* ---- the token file ---- */

typedef struct tfix {
	char dir[128];
	char path[192];
	char token[DSI_TOKEN_MAX + 1];
	char why[512];
} tfix;

static int
tsetup(void **state)
{
	tfix *f = calloc(1, sizeof(*f));
	if (f == NULL || tu_mkdtemp(f->dir, sizeof(f->dir), "parse-test") != 0) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/token", f->dir);
	*state = f;
	return 0;
}

static int
tteardown(void **state)
{
	tfix *f = *state;
	tu_rmtree(f->dir);
	free(f);
	return 0;
}

/* Writes len bytes of data to the fixture's token file with mode. */
static void
put(tfix *f, const void *data, size_t len, mode_t mode)
{
	unlink(f->path);
	int fd = open(f->path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t) len);
	close(fd);
	assert_int_equal(chmod(f->path, mode), 0);
}

static int
read_token(tfix *f)
{
	f->why[0] = 0;
	return dsi_token_file_read(f->path, f->token, sizeof(f->token), f->why, sizeof(f->why));
}

static void
test_token_contents(void **state)
{
	tfix *f = *state;
	static const struct {
		const char *data, *want;
	} cases[] = {
		{ "s3cret", "s3cret" },
		{ "s3cret\n", "s3cret" },
		{ "s3cret\r\n", "s3cret" },
		{ "s3cret\n\n", "s3cret\n" }, /* one newline only */
		{ "s3cret ", "s3cret " },     /* what is not a newline is the token's */
		{ "two words", "two words" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		put(f, cases[i].data, strlen(cases[i].data), 0600);
		if (read_token(f) != 0) {
			fail_msg("\"%s\": %s", cases[i].data, f->why);
		}
		assert_string_equal(f->token, cases[i].want);
	}
	put(f, "s3cret\n", 7, 0400);
	assert_ok(read_token(f));
}

static void
test_token_refusals(void **state)
{
	tfix *f = *state;

	put(f, "s3cret\n", 7, 0640);
	assert_int_equal(read_token(f), DSC_EINVAL);
	assert_non_null(strstr(f->why, "readable by group or others (mode 640)"));
	assert_string_equal(f->token, "");
	put(f, "s3cret\n", 7, 0604);
	assert_int_equal(read_token(f), DSC_EINVAL);
	assert_non_null(strstr(f->why, "chmod 600"));

	put(f, "", 0, 0600);
	assert_int_equal(read_token(f), DSC_EINVAL);
	assert_non_null(strstr(f->why, "empty"));
	put(f, "\n", 1, 0600);
	assert_int_equal(read_token(f), DSC_EINVAL);
	assert_non_null(strstr(f->why, "empty"));

	put(f, "s3\0cret\n", 8, 0600);
	assert_int_equal(read_token(f), DSC_EINVAL);
	assert_non_null(strstr(f->why, "NUL byte"));

	unlink(f->path);
	assert_int_equal(read_token(f), DSC_EINVAL);
	assert_non_null(strstr(f->why, "cannot read the token file"));
	assert_non_null(strstr(f->why, f->dir)); /* names the path */
}

static void
test_token_size_limit(void **state)
{
	tfix       *f = *state;
	static char big[DSI_TOKEN_MAX + 2];

	memset(big, 'k', sizeof(big));
	/* DSI_TOKEN_MAX bytes, with or without a newline: accepted whole. */
	put(f, big, DSI_TOKEN_MAX, 0600);
	assert_ok(read_token(f));
	assert_int_equal(strlen(f->token), DSI_TOKEN_MAX);
	big[DSI_TOKEN_MAX] = '\n';
	put(f, big, DSI_TOKEN_MAX + 1, 0600);
	assert_ok(read_token(f));
	assert_int_equal(strlen(f->token), DSI_TOKEN_MAX);
	/* One byte more: refused with a message, never cut. */
	big[DSI_TOKEN_MAX] = 'k';
	put(f, big, DSI_TOKEN_MAX + 1, 0600);
	assert_int_equal(read_token(f), DSC_EINVAL);
	assert_non_null(strstr(f->why, "too large"));
	assert_string_equal(f->token, "");
	/* A smaller buffer is the limit. */
	put(f, "0123456789", 10, 0600);
	char small[8];
	assert_int_equal(
	    dsi_token_file_read(f->path, small, sizeof(small), f->why, sizeof(f->why)), DSC_EINVAL);
	assert_non_null(strstr(f->why, "at most 7 bytes"));
}

/* A FIFO nobody writes to: refused at once, not waited on. */
static void
test_token_not_a_regular_file(void **state)
{
	tfix *f = *state;
	unlink(f->path);
	assert_int_equal(mkfifo(f->path, 0600), 0);
	assert_int_equal(read_token(f), DSC_EINVAL);
	assert_non_null(strstr(f->why, "not a regular file"));
	unlink(f->path);
	/* A directory too. */
	assert_int_equal(
	    dsi_token_file_read(f->dir, f->token, sizeof(f->token), f->why, sizeof(f->why)),
	    DSC_EINVAL);
	assert_non_null(strstr(f->why, "not a regular file"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_u32),
		cmocka_unit_test(test_uint_bounds),
		cmocka_unit_test(test_seconds),
		cmocka_unit_test_setup_teardown(test_token_contents, tsetup, tteardown),
		cmocka_unit_test_setup_teardown(test_token_refusals, tsetup, tteardown),
		cmocka_unit_test_setup_teardown(test_token_size_limit, tsetup, tteardown),
		cmocka_unit_test_setup_teardown(test_token_not_a_regular_file, tsetup, tteardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
