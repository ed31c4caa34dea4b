/*
 * The Status call against the real daemon: over nng (dsc_status), through
 * discoveryctl status (plain and --json, parsed with jansson), and as GET
 * /v1/status on the admin endpoint (libcurl), all telling the same state.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <discovery/discovery.h>

#include "support/daemon.h"
#include "support/testutil.h"

static td_daemon D;
static char      admin[160];

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
	char  *buf = arg;
	size_t len = strlen(buf), take = size * n;
	if (take > 65535 - len) {
		take = 65535 - len;
	}
	memcpy(buf + len, p, take);
	buf[len + take] = 0;
	return size * n;
}

/* GET path into body (64 KiB); returns the status. */
static long
get(const char *path, char *body)
{
	char  url[512];
	long  status = 0;
	CURL *e      = curl_easy_init();
	body[0]      = 0;
	snprintf(url, sizeof(url), "%s%s", admin, path);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, body);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long) TU_LIVENESS_MS);
	if (curl_easy_perform(e) == CURLE_OK) {
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	}
	curl_easy_cleanup(e);
	return status;
}

static int
learn_admin(void)
{
	for (int64_t end = tu_now_ms() + TU_LIVENESS_MS; tu_now_ms() < end; tu_sleep_ms(10)) {
		size_t len;
		char  *log = tu_slurp(D.log_path, &len);
		char  *at  = log != NULL ? strstr(log, "admin on ") : NULL;
		if (at != NULL) {
			sscanf(at + strlen("admin on "), "%159s", admin);
			free(log);
			return 0;
		}
		free(log);
	}
	return -1;
}

static void
start(const char *const *extra)
{
	const char *args[32] = { "--admin", "http://127.0.0.1:0", "--health-interval", "3600" };
	size_t      n        = 4;
	for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
		args[n++] = extra[i];
	}
	args[n] = NULL;
	assert_int_equal(td_daemon_start(&D, args), 0);
	assert_int_equal(learn_admin(), 0);
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

/* Two TTL instances of one service, one of them made healthy by a heartbeat. */
static dsc_client *
populate(void)
{
	dsc_client *c;
	assert_ok(dsc_client_open(&c, D.url, NULL));
	const char *eps[] = { "http://127.0.0.1:8001", "http://127.0.0.1:8002" };
	for (int i = 0; i < 2; i++) {
		dsc_registration r = { .service = "web", .endpoint = eps[i], .ttl_ms = 600000 };
		assert_ok(dsc_register(c, &r, NULL, NULL));
	}
	assert_ok(dsc_heartbeat(c, "web", eps[0], NULL, NULL));
	return c;
}

/* The JSON of discoveryctl status --json and of GET /v1/status: the same fields. */
static void
check_json(const char *text, const char *data, uint64_t min_rev)
{
	json_error_t e;
	json_t      *o = json_loads(text, 0, &e);
	if (o == NULL) {
		fail_msg("not JSON (%s): %s", e.text, text);
	}
	assert_string_equal(json_string_value(json_object_get(o, "version")), DSC_VERSION_STRING);
	assert_int_equal(json_integer_value(json_object_get(o, "services")), 1);
	assert_int_equal(json_integer_value(json_object_get(o, "instances")), 2);
	assert_int_equal(json_integer_value(json_object_get(o, "healthy")), 1);
	assert_int_equal(json_integer_value(json_object_get(o, "healthy"))
	        + json_integer_value(json_object_get(o, "unhealthy"))
	        + json_integer_value(json_object_get(o, "unknown")),
	    2);
	assert_true((uint64_t) json_integer_value(json_object_get(o, "revision")) >= min_rev);
	assert_true(json_integer_value(json_object_get(o, "started_at_ms")) > 0);
	assert_true(json_is_integer(json_object_get(o, "uptime_ms")));
	json_t *ls = json_object_get(o, "listeners");
	assert_int_equal(json_array_size(ls), 1);
	assert_string_equal(json_string_value(json_array_get(ls, 0)), D.url);
	assert_string_equal(json_string_value(json_object_get(o, "publish")), D.pub_url);
	assert_string_equal(json_string_value(json_object_get(o, "admin")), admin);
	assert_string_equal(json_string_value(json_object_get(o, "data")), data);
	if (strcmp(data, ":memory:") != 0) {
		assert_true(json_integer_value(json_object_get(o, "commits")) >= 1);
		assert_true(json_integer_value(json_object_get(o, "writes_stored")) >= 2);
	} else {
		assert_int_equal(json_integer_value(json_object_get(o, "commits")), 0);
	}
	json_decref(o);
}

static void
check_everywhere(const char *data)
{
	dsc_client        *c  = populate();
	dsc_server_status *st = NULL;
	char               out[8192], err[4096];
	char              *body = malloc(65536);

	/* Over nng. */
	assert_ok(dsc_status(c, &st, NULL));
	assert_string_equal(st->version, DSC_VERSION_STRING);
	assert_int_equal(st->services, 1);
	assert_int_equal(st->instances, 2);
	assert_int_equal(st->healthy, 1);
	assert_int_equal(st->healthy + st->unhealthy + st->unknown, 2);
	assert_int_equal(st->revision, dsc_client_revision(c));
	assert_true(st->started_at_ms > 0);
	assert_int_equal(st->n_listeners, 1);
	assert_string_equal(st->listeners[0], D.url);
	assert_string_equal(st->publish, D.pub_url);
	assert_string_equal(st->admin, admin);
	assert_string_equal(st->data, data);
	uint64_t rev = st->revision;
	dsc_server_status_free(st);

	/* discoveryctl status, plain and --json. */
	const char *plain[] = { DISCOVERYCTL_PATH, "--server", D.url, "status", NULL };
	assert_int_equal(td_run(plain, out, sizeof(out), err, sizeof(err)), 0);
	assert_non_null(strstr(out, "revision:"));
	assert_non_null(strstr(out, D.url));
	assert_non_null(strstr(out, "healthy 1"));
	const char *js[] = { DISCOVERYCTL_PATH, "--server", D.url, "--json", "status", NULL };
	assert_int_equal(td_run(js, out, sizeof(out), err, sizeof(err)), 0);
	check_json(out, data, rev);

	/* GET /v1/status. */
	assert_int_equal(get("/v1/status", body), 200);
	check_json(body, data, rev);
	free(body);
	dsc_client_close(c);
	assert_int_equal(td_daemon_stop(&D), 0);
}

static void
test_status_with_data_file(void **state)
{
	(void) state;
	start(NULL);
	check_everywhere(D.data_path);
}

static void
test_status_in_memory(void **state)
{
	(void) state;
	start((const char *[]) { "--data", ":memory:", NULL });
	check_everywhere(":memory:");
}

/* The token guards Status like any read: only with --auth-reads. */
static void
test_status_auth_reads(void **state)
{
	char        dir[128], token_file[256];
	dsc_error   err;
	dsc_client *c;
	(void) state;
	assert_int_equal(tu_mkdtemp(dir, sizeof(dir), "status-test"), 0);
	snprintf(token_file, sizeof(token_file), "%s/token", dir);
	FILE *f = fopen(token_file, "w");
	fputs("s3cret\n", f);
	fclose(f);
	chmod(token_file, 0600);
	start((const char *[]) { "--token-file", token_file, "--auth-reads", NULL });
	assert_ok(dsc_client_open(&c, D.url, NULL));
	assert_int_equal(dsc_status(c, NULL, &err), DSC_EAUTH);
	dsc_client_close(c);
	dsc_client_options o;
	dsc_client_options_init(&o);
	o.auth_token = "s3cret";
	assert_ok(dsc_client_open(&c, D.url, &o));
	dsc_server_status *st = NULL;
	assert_ok(dsc_status(c, &st, NULL));
	dsc_server_status_free(st);
	dsc_client_close(c);
	assert_int_equal(td_daemon_stop(&D), 0);
	tu_rmtree(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_status_with_data_file, teardown),
		cmocka_unit_test_teardown(test_status_in_memory, teardown),
		cmocka_unit_test_teardown(test_status_auth_reads, teardown),
	};
	return cmocka_run_group_tests(tests, tu_curl_setup, tu_curl_teardown);
}
