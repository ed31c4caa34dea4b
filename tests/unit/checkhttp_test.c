/*
 * The health checks' TLS files and headers: header items as a table, and
 * building from real files (mode rules as for the token file, messages
 * that never hold a header value).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <discovery/discovery.h>

#include "server/checkhttp.h"
#include "support/testutil.h"

static char dir[128];

static const char *
file(const char *name, const char *text, mode_t mode)
{
	static char paths[8][192];
	static int  n;
	char       *p = paths[n++ % 8];
	snprintf(p, 192, "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(p, mode), 0);
	return p;
}

static int
setup(void **state)
{
	(void) state;
	return tu_mkdtemp(dir, sizeof(dir), "checkhttp-test");
}

static int
teardown(void **state)
{
	(void) state;
	tu_rmtree(dir);
	return 0;
}

static void
test_header_items(void **state)
{
	static const struct {
		const char *item;
		size_t      name_len; /* 0: refused */
		const char *value;
	} cases[] = {
		{ "Host: api.internal", 4, "api.internal" },
		{ "X-Auth:token", 6, "token" },
		{ "Accept: a, b;q=0.5", 6, "a, b;q=0.5" },
		{ "Authorization: Bearer \tx", 13, "Bearer \tx" },
		{ ": value", 0, NULL },
		{ "Bad Name: value", 0, NULL },
		{ "Host", 0, NULL },
		{ "Host:", 0, NULL },
		{ "Host:   ", 0, NULL },
		{ "X-Evil: a\r\nInjected: b", 0, NULL },
		{ "X-Evil: caf\xc3\xa9", 0, NULL },
	};
	(void) state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t      n = 0;
		const char *v = NULL;
		char        why[160];
		int         rv = dsi_check_header_parse(cases[i].item, &n, &v, why, sizeof(why));
		if (cases[i].name_len == 0) {
			if (rv == 0) {
				fail_msg("case %zu accepted", i);
			}
			continue;
		}
		if (rv != 0 || n != cases[i].name_len || strcmp(v, cases[i].value) != 0) {
			fail_msg("case %zu: rv %d, name %zu, value \"%s\"", i, rv, n, v ? v : "");
		}
	}
}

/* Builds o; 0 with the list's lines joined in lines, or the error with why. */
static int
build(const dsi_check_http_options *o, char *lines, size_t len, char *why, size_t why_len)
{
	dsi_check_http h;
	int            rv = dsi_check_http_build(&h, o, why, why_len);
	lines[0]          = 0;
	for (struct curl_slist *l = h.headers; l != NULL; l = l->next) {
		size_t used = strlen(lines);
		snprintf(lines + used, len - used, "%s|", l->data);
	}
	dsi_check_http_free(&h);
	assert_null(h.headers);
	return rv;
}

static void
test_build(void **state)
{
	char why[512], lines[512];
	(void) state;
	const char *ca     = file("ca.pem", "not checked here\n", 0644);
	const char *cert   = file("client.pem", "cert\n", 0644);
	const char *key    = file("client.key", "key\n", 0600);
	const char *open   = file("open.key", "key\n", 0644);
	const char *secret = file("auth", "Bearer s3cret-value\n", 0600);
	const char *shown  = file("auth-open", "Bearer s3cret-value\n", 0640);
	const char *two    = file("auth-two", "Bearer a\nInjected: b\n", 0600);
	char        item[256], open_item[256], two_item[256];
	snprintf(item, sizeof(item), "Authorization: %s", secret);
	snprintf(open_item, sizeof(open_item), "Authorization: %s", shown);
	snprintf(two_item, sizeof(two_item), "Authorization: %s", two);

	const char            *hdr[]   = { "Host: api.internal" };
	const char            *files[] = { item };
	dsi_check_http_options o       = { .ca_file = ca,
		      .cert                         = cert,
		      .key                          = key,
		      .headers                      = hdr,
		      .n_headers                    = 1,
		      .header_files                 = files,
		      .n_header_files               = 1 };
	assert_ok(build(&o, lines, sizeof(lines), why, sizeof(why)));
	assert_string_equal(lines, "Host: api.internal|Authorization: Bearer s3cret-value|");

	dsi_check_http_options bad = o;
	bad.key                    = NULL;
	assert_int_equal(build(&bad, lines, sizeof(lines), why, sizeof(why)), DSC_EINVAL);
	assert_non_null(strstr(why, "--check-key"));
	bad.key = open; /* as the token file: no key others can read */
	assert_int_equal(build(&bad, lines, sizeof(lines), why, sizeof(why)), DSC_EINVAL);
	assert_non_null(strstr(why, "readable by group or others"));
	bad     = o;
	bad.key = cert;
	assert_int_equal(build(&bad, lines, sizeof(lines), why, sizeof(why)), DSC_EINVAL);
	bad         = o;
	bad.ca_file = "/nonexistent/ca.pem";
	assert_int_equal(build(&bad, lines, sizeof(lines), why, sizeof(why)), DSC_EINVAL);
	assert_non_null(strstr(why, "/nonexistent/ca.pem"));

	/* Header files: the token file's rules; no message holds the value. */
	const char *cases[] = { open_item, two_item, "Authorization: /nonexistent/auth" };
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bad              = o;
		bad.header_files = &cases[i];
		assert_int_equal(build(&bad, lines, sizeof(lines), why, sizeof(why)), DSC_EINVAL);
		if (strstr(why, "s3cret") != NULL || strstr(why, "Bearer") != NULL) {
			fail_msg("case %zu: the message shows the value: %s", i, why);
		}
	}
	dsi_check_http_options none = { 0 };
	assert_ok(build(&none, lines, sizeof(lines), why, sizeof(why)));
	assert_string_equal(lines, "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_items),
		cmocka_unit_test_setup_teardown(test_build, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
