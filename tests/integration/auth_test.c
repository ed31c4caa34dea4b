/*
 * Authentication against the real daemon: writes need the token, reads
 * too with --auth-reads, a loose token file stops start-up, and
 * discoveryctl passes the token from --token-file or the environment.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <discovery/discovery.h>

#include "support/daemon.h"
#include "support/testutil.h"

static td_daemon D;
static char      dir[64], token_file[128], loose_file[128];

static void
write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	chmod(path, mode);
}

static int
group_setup(void **state)
{
	(void) state;
	snprintf(dir, sizeof(dir), "/tmp/auth-test-XXXXXX");
	if (mkdtemp(dir) == NULL) {
		return -1;
	}
	snprintf(token_file, sizeof(token_file), "%s/token", dir);
	snprintf(loose_file, sizeof(loose_file), "%s/loose", dir);
	write_file(token_file, "s3cret\n", 0600);
	write_file(loose_file, "s3cret\n", 0644);
	return 0;
}

static int
group_teardown(void **state)
{
	(void) state;
	unlink(token_file);
	unlink(loose_file);
	return rmdir(dir);
}

static int
teardown(void **state)
{
	(void) state;
	if (D.pid > 0) {
		td_daemon_kill(&D);
	}
	return 0;
}

static dsc_client *
client(const char *token)
{
	dsc_client        *c;
	dsc_client_options o;
	dsc_client_options_init(&o);
	o.auth_token = token;
	assert_ok(dsc_client_open(&c, D.url, &o));
	return c;
}

static int
ctl(const char *const *args, char *out, size_t out_len, char *err, size_t err_len)
{
	const char *argv[16] = { DISCOVERYCTL_PATH, "--server", D.url };
	size_t      n        = 3;
	while (*args != NULL) {
		argv[n++] = *args++;
	}
	argv[n] = NULL;
	return td_run(argv, out, out_len, err, err_len);
}

static void
test_writes_need_the_token(void **state)
{
	dsc_error        err;
	dsc_registration r
	    = { .service = "guarded", .endpoint = "http://127.0.0.1:1", .ttl_ms = 60000 };
	(void) state;
	assert_int_equal(
	    td_daemon_start(&D, (const char *[]) { "--token-file", token_file, NULL }), 0);

	dsc_client *anon = client(NULL), *wrong = client("guess"), *right = client("s3cret");
	assert_int_equal(dsc_register(anon, &r, NULL, &err), DSC_EAUTH);
	assert_non_null(strstr(err.message, "needs an auth token"));
	assert_int_equal(dsc_register(wrong, &r, NULL, &err), DSC_EPERM);
	dsc_client *prefix = client("s3cre"); /* a prefix of the token is no token */
	assert_int_equal(dsc_register(prefix, &r, NULL, &err), DSC_EPERM);
	dsc_client_close(prefix);
	assert_ok(dsc_register(right, &r, NULL, NULL));
	/* Reads stay open. */
	assert_ok(dsc_resolve(anon, "guarded", false, NULL, NULL));
	assert_int_equal(
	    dsc_heartbeat(anon, "guarded", "http://127.0.0.1:1", NULL, NULL), DSC_EAUTH);
	assert_int_equal(dsc_deregister(wrong, "guarded", NULL, NULL, NULL), DSC_EPERM);
	assert_ok(dsc_heartbeat(right, "guarded", "http://127.0.0.1:1", NULL, NULL));
	assert_ok(dsc_resolve(anon, "guarded", false, NULL, NULL)); /* nothing was removed */

	char out[2048], errs[2048];
	assert_int_equal(ctl((const char *[]) { "register", "viactl", "http://127.0.0.1:2", NULL },
	                     out, sizeof(out), errs, sizeof(errs)),
	    6); /* EXIT_AUTH */
	assert_non_null(strstr(errs, "needs an auth token"));
	assert_int_equal(ctl((const char *[]) { "--token-file", token_file, "register", "viactl",
	                         "http://127.0.0.1:2", NULL },
	                     out, sizeof(out), errs, sizeof(errs)),
	    0);
	setenv("SERVICE_DISCOVERY_API_KEY", "s3cret", 1);
	int rv = ctl((const char *[]) { "deregister", "viactl", NULL }, out, sizeof(out), errs,
	    sizeof(errs));
	unsetenv("SERVICE_DISCOVERY_API_KEY");
	assert_int_equal(rv, 0);
	assert_non_null(strstr(out, "removed 1"));

	dsc_client_close(anon);
	dsc_client_close(wrong);
	dsc_client_close(right);
	assert_int_equal(td_daemon_stop(&D), 0);
}

static void
test_auth_reads(void **state)
{
	(void) state;
	setenv("SERVICE_DISCOVERY_API_KEY", "s3cret", 1);
	int rv = td_daemon_start(&D, (const char *[]) { "--auth-reads", NULL });
	unsetenv("SERVICE_DISCOVERY_API_KEY");
	assert_int_equal(rv, 0);
	dsc_client        *anon = client(NULL), *right = client("s3cret");
	dsc_instance_list *l;
	assert_int_equal(dsc_resolve(anon, "any", false, NULL, NULL), DSC_EAUTH);
	assert_int_equal(dsc_get_all(anon, NULL, &l, NULL), DSC_EAUTH);
	assert_ok(dsc_get_all(right, NULL, &l, NULL));
	dsc_instance_list_free(l);
	dsc_client_close(anon);
	dsc_client_close(right);
	assert_int_equal(td_daemon_stop(&D), 0);
}

static void
test_loose_token_file_is_refused(void **state)
{
	const char *argv[] = { DISCOVERYD_PATH, "--listen", "tcp://127.0.0.1:0", "--publish",
		"tcp://127.0.0.1:0", "--data", ":memory:", "--token-file", loose_file, NULL };
	char        out[1024], err[2048];
	(void) state;
	assert_int_equal(td_run(argv, out, sizeof(out), err, sizeof(err)), 2);
	assert_non_null(strstr(err, "readable by group or others (mode 644)"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_writes_need_the_token, teardown),
		cmocka_unit_test_teardown(test_auth_reads, teardown),
		cmocka_unit_test(test_loose_token_file_is_refused),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
