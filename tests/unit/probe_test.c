/* The probe: check URLs, what a result means, and real probes of a local HTTP server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "server/probe.h"
#include "support/httpd.h"
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

static void
test_bad_urls(void **state)
{
	char url[DSI_CHECK_URL_MAX];
	bool co;
	(void) state;
	assert_int_equal(dsi_check_url("not a url", "/health", url, sizeof(url), &co), DSC_EINVAL);
	/* Too long for the caller's buffer: refused, never cut. */
	assert_int_equal(dsi_check_url("http://m:9000", "/health", url, 10, &co), DSC_EINVAL);
}

/* Every way a result is read, without a network. */
static void
test_classification(void **state)
{
	static const struct {
		const char       *name;
		bool              connect_only, capped;
		const char       *refused;
		int               local_errno;
		CURLcode          res;
		long              code;
		dsi_probe_verdict want;
		const char       *want_reason;
	} cases[] = {
		{ "2xx passes", false, false, NULL, 0, CURLE_OK, 204, DSI_PROBE_OK, "HTTP 204" },
		{ "299 passes", false, false, NULL, 0, CURLE_OK, 299, DSI_PROBE_OK, "HTTP 299" },
		{ "3xx fails (never followed)", false, false, NULL, 0, CURLE_OK, 302,
		    DSI_PROBE_FAILED, "HTTP 302" },
		{ "5xx fails", false, false, NULL, 0, CURLE_OK, 503, DSI_PROBE_FAILED, "HTTP 503" },
		{ "a capped body still counts its status", false, true, NULL, 0, CURLE_WRITE_ERROR,
		    200, DSI_PROBE_OK, "HTTP 200" },
		{ "a write error without the cap is an error", false, false, NULL, 0,
		    CURLE_WRITE_ERROR, 200, DSI_PROBE_FAILED, NULL },
		{ "connect only", true, false, NULL, 0, CURLE_OK, 0, DSI_PROBE_OK,
		    "TCP connect succeeded" },
		{ "refused by the policy", false, false, "denied by 127.0.0.0/8", 0,
		    CURLE_COULDNT_CONNECT, 0, DSI_PROBE_FAILED,
		    "refused by the endpoint policy: denied by 127.0.0.0/8" },
		{ "timeout", false, false, NULL, 0, CURLE_OPERATION_TIMEDOUT, 0,
		    DSI_PROBE_TIMED_OUT, "timeout after 750 ms" },
		{ "connect failure", true, false, NULL, 0, CURLE_COULDNT_CONNECT, 0,
		    DSI_PROBE_FAILED, NULL },
		/* Ours, not the target's: no verdict. */
		{ "no descriptor for a socket", false, false, NULL, EMFILE, CURLE_COULDNT_CONNECT,
		    0, DSI_PROBE_LOCAL_ERROR, "no socket for the check: Too many open files" },
		{ "no descriptor in the system", true, false, NULL, ENFILE, CURLE_COULDNT_CONNECT,
		    0, DSI_PROBE_LOCAL_ERROR,
		    "no socket for the check: Too many open files in system" },
		{ "curl out of memory", false, false, NULL, 0, CURLE_OUT_OF_MEMORY, 0,
		    DSI_PROBE_LOCAL_ERROR, NULL },
		{ "curl could not start", false, false, NULL, 0, CURLE_FAILED_INIT, 0,
		    DSI_PROBE_LOCAL_ERROR, NULL },
		/* A policy refusal is a verdict, whatever else happened. */
		{ "refused and short of descriptors", false, false, "denied by 10.0.0.0/8", EMFILE,
		    CURLE_COULDNT_CONNECT, 0, DSI_PROBE_FAILED,
		    "refused by the endpoint policy: denied by 10.0.0.0/8" },
	};
	(void) state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		dsi_probe         p = { .connect_only = cases[i].connect_only,
			        .capped               = cases[i].capped,
			        .refused              = (char *) cases[i].refused,
			        .local_errno          = cases[i].local_errno };
		char              reason[128];
		dsi_probe_verdict v = dsi_probe_result(
		    &p, cases[i].res, cases[i].code, 750, reason, sizeof(reason));
		if (v != cases[i].want) {
			fail_msg("%s: verdict %d, want %d", cases[i].name, v, cases[i].want);
		}
		const char *want = cases[i].want_reason != NULL ? cases[i].want_reason
		                                                : curl_easy_strerror(cases[i].res);
		if (strcmp(reason, want) != 0) {
			fail_msg("%s: reason \"%s\", want \"%s\"", cases[i].name, reason, want);
		}
	}
}

/* One probe of url with http's settings, run to its end; whether it passed, and why. */
static dsi_probe_verdict
probe_with(const char *endpoint, const char *path, const dsi_netpolicy *policy,
    const dsi_check_http *http, char *reason, size_t len)
{
	char      url[DSI_CHECK_URL_MAX];
	dsi_probe p    = { 0 };
	long      code = 0;
	int       marker;
	void     *priv = NULL;
	assert_ok(dsi_check_url(endpoint, path, url, sizeof(url), &p.connect_only));
	CURL *e = dsi_probe_start(&p, url, 5000 * tu_slowdown(), NULL, policy, http, &marker);
	assert_non_null(e);
	CURLcode res = curl_easy_perform(e);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **) &priv);
	assert_ptr_equal(priv, &marker);
	dsi_probe_ended(&p, res);
	dsi_probe_verdict v = dsi_probe_result(&p, res, code, 5000, reason, len);
	curl_easy_cleanup(e);
	dsi_probe_clear(&p);
	assert_null(p.refused);
	return v;
}

static dsi_probe_verdict
probe(const char *endpoint, const char *path, const dsi_netpolicy *policy, char *reason, size_t len)
{
	return probe_with(endpoint, path, policy, NULL, reason, len);
}

static void
test_real_probes(void **state)
{
	th_server    *h;
	char          base[64], tcp[64], reason[128], why[128];
	dsi_netpolicy deny_loopback;
	(void) state;
	assert_int_equal(th_start(&h), 0);
	snprintf(base, sizeof(base), "http://127.0.0.1:%d", th_port(h));
	snprintf(tcp, sizeof(tcp), "tcp://127.0.0.1:%d", th_port(h));
	assert_int_equal(th_set(h, "/up", 200), 0);
	assert_int_equal(th_set(h, "/down", 500), 0);
	assert_int_equal(th_set_redirect(h, "/moved", "/up"), 0);

	assert_int_equal(DSI_PROBE_OK, probe(base, "/up", NULL, reason, sizeof(reason)));
	assert_string_equal(reason, "HTTP 200");
	assert_int_equal(DSI_PROBE_FAILED, probe(base, "/down", NULL, reason, sizeof(reason)));
	assert_string_equal(reason, "HTTP 500");
	assert_int_equal(DSI_PROBE_FAILED, probe(base, "/moved", NULL, reason, sizeof(reason)));
	assert_string_equal(reason, "HTTP 302");
	assert_int_equal(th_hits(h, "/up"), 1); /* the redirect was not followed */
	assert_int_equal(DSI_PROBE_OK, probe(tcp, NULL, NULL, reason, sizeof(reason)));
	assert_string_equal(reason, "TCP connect succeeded");

	/* The policy is asked for every socket: loopback denied, nothing is sent. */
	dsi_netpolicy_init(&deny_loopback);
	assert_ok(dsi_netpolicy_add(&deny_loopback, false, "127.0.0.0/8", why, sizeof(why)));
	int before = th_total_hits(h);
	assert_int_equal(
	    DSI_PROBE_FAILED, probe(base, "/up", &deny_loopback, reason, sizeof(reason)));
	assert_non_null(strstr(reason, "refused by the endpoint policy"));
	assert_int_equal(th_total_hits(h), before);

	/* Configured headers go with every HTTP check, commas in values included. */
	const char            *hdr[] = { "X-Check-Auth: s3cret, really", "Host: api.internal" };
	dsi_check_http_options ho    = { .headers = hdr, .n_headers = 2 };
	dsi_check_http         http;
	assert_int_equal(th_set(h, "/auth", 200), 0);
	assert_int_equal(th_set_require_header(h, "/auth", "x-check-auth: s3cret, really"), 0);
	assert_int_equal(DSI_PROBE_FAILED, probe(base, "/auth", NULL, reason, sizeof(reason)));
	assert_string_equal(reason, "HTTP 403");
	assert_ok(dsi_check_http_build(&http, &ho, why, sizeof(why)));
	assert_int_equal(
	    DSI_PROBE_OK, probe_with(base, "/auth", NULL, &http, reason, sizeof(reason)));
	assert_int_equal(th_set_require_header(h, "/auth", "Host: api.internal"), 0);
	assert_int_equal(
	    DSI_PROBE_OK, probe_with(base, "/auth", NULL, &http, reason, sizeof(reason)));
	assert_int_equal(DSI_PROBE_OK, probe_with(tcp, NULL, NULL, &http, reason, sizeof(reason)));
	dsi_check_http_free(&http);
	th_stop(h);
}

/*
 * With every descriptor of this process in use, a real probe cannot open
 * its socket: LOCAL_ERROR, never a verdict on the target, which is never
 * contacted. The multi handle (and its own descriptors) exists before.
 */
static void
test_no_descriptor_is_a_local_error(void **state)
{
	th_server    *h;
	char          base[64], tcp[64], url[DSI_CHECK_URL_MAX], reason[128];
	struct rlimit old, low;
	int           fds[64], nfds = 0;
	(void) state;
	assert_int_equal(th_start(&h), 0);
	assert_int_equal(th_set(h, "/up", 200), 0);
	snprintf(base, sizeof(base), "http://127.0.0.1:%d", th_port(h));
	snprintf(tcp, sizeof(tcp), "tcp://127.0.0.1:%d", th_port(h));
	CURLM *m = curl_multi_init();
	assert_non_null(m);

	for (int round = 0; round < 2; round++) {
		dsi_probe p = { 0 };
		assert_ok(dsi_check_url(
		    round == 0 ? base : tcp, "/up", url, sizeof(url), &p.connect_only));
		CURL *e = dsi_probe_start(&p, url, 5000 * tu_slowdown(), NULL, NULL, NULL, NULL);
		assert_non_null(e);
		assert_int_equal(curl_multi_add_handle(m, e), CURLM_OK);

		/* Lower the limit to just above the lowest free descriptor, then fill it. */
		assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
		int probe_fd = dup(0);
		assert_true(probe_fd >= 0);
		close(probe_fd);
		low          = old;
		low.rlim_cur = (rlim_t) probe_fd + 32;
		assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
		for (int fd; nfds < 64 && (fd = dup(0)) >= 0;) {
			fds[nfds++] = fd;
		}
		assert_int_equal(errno, EMFILE);

		int      running = 1;
		CURLcode res     = CURLE_OK;
		while (running > 0) {
			curl_multi_perform(m, &running);
			curl_multi_poll(m, NULL, 0, 100, NULL);
		}
		CURLMsg *msg;
		int      left;
		while ((msg = curl_multi_info_read(m, &left)) != NULL) {
			res = msg->data.result;
		}
		dsi_probe_ended(&p, res);
		dsi_probe_verdict v = dsi_probe_result(&p, res, 0, 5000, reason, sizeof(reason));

		while (nfds > 0) {
			close(fds[--nfds]);
		}
		assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
		curl_multi_remove_handle(m, e);
		curl_easy_cleanup(e);
		dsi_probe_clear(&p);
		if (v != DSI_PROBE_LOCAL_ERROR || strstr(reason, "Too many open files") == NULL) {
			fail_msg("%s: verdict %d (%s), want a local error", url, v, reason);
		}
	}
	assert_int_equal(th_total_hits(h), 0);
	curl_multi_cleanup(m);
	th_stop(h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_urls),
		cmocka_unit_test(test_bad_urls),
		cmocka_unit_test(test_classification),
		cmocka_unit_test(test_real_probes),
		cmocka_unit_test(test_no_descriptor_is_a_local_error),
	};
	return cmocka_run_group_tests(tests, tu_curl_setup, tu_curl_teardown);
}
