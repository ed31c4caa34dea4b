/* The probe: check URLs, what a result means, and real probes of a local HTTP server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

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
		const char *name;
		bool        connect_only, capped;
		const char *refused;
		CURLcode    res;
		long        code;
		bool        want_ok;
		const char *want_reason;
	} cases[] = {
		{ "2xx passes", false, false, NULL, CURLE_OK, 204, true, "HTTP 204" },
		{ "299 passes", false, false, NULL, CURLE_OK, 299, true, "HTTP 299" },
		{ "3xx fails (never followed)", false, false, NULL, CURLE_OK, 302, false,
		    "HTTP 302" },
		{ "5xx fails", false, false, NULL, CURLE_OK, 503, false, "HTTP 503" },
		{ "a capped body still counts its status", false, true, NULL, CURLE_WRITE_ERROR,
		    200, true, "HTTP 200" },
		{ "a write error without the cap is an error", false, false, NULL,
		    CURLE_WRITE_ERROR, 200, false, NULL },
		{ "connect only", true, false, NULL, CURLE_OK, 0, true, "TCP connect succeeded" },
		{ "refused by the policy", false, false, "denied by 127.0.0.0/8",
		    CURLE_COULDNT_CONNECT, 0, false,
		    "refused by the endpoint policy: denied by 127.0.0.0/8" },
		{ "timeout", false, false, NULL, CURLE_OPERATION_TIMEDOUT, 0, false,
		    "timeout after 750 ms" },
		{ "connect failure", true, false, NULL, CURLE_COULDNT_CONNECT, 0, false, NULL },
	};
	(void) state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		dsi_probe p = { .connect_only = cases[i].connect_only,
			.capped               = cases[i].capped,
			.refused              = (char *) cases[i].refused };
		char      reason[128];
		bool      ok = dsi_probe_result(
		         &p, cases[i].res, cases[i].code, 750, reason, sizeof(reason));
		if (ok != cases[i].want_ok) {
			fail_msg("%s: ok is %d", cases[i].name, ok);
		}
		const char *want = cases[i].want_reason != NULL ? cases[i].want_reason
		                                                : curl_easy_strerror(cases[i].res);
		if (strcmp(reason, want) != 0) {
			fail_msg("%s: reason \"%s\", want \"%s\"", cases[i].name, reason, want);
		}
	}
}

/* One probe of url, run to its end; returns whether it passed, with the reason. */
static bool
probe(const char *endpoint, const char *path, const dsi_netpolicy *policy, char *reason, size_t len)
{
	char      url[DSI_CHECK_URL_MAX];
	dsi_probe p    = { 0 };
	long      code = 0;
	int       marker;
	void     *priv = NULL;
	assert_ok(dsi_check_url(endpoint, path, url, sizeof(url), &p.connect_only));
	CURL *e = dsi_probe_start(&p, url, 5000 * tu_slowdown(), NULL, policy, &marker);
	assert_non_null(e);
	CURLcode res = curl_easy_perform(e);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **) &priv);
	assert_ptr_equal(priv, &marker);
	bool ok = dsi_probe_result(&p, res, code, 5000, reason, len);
	curl_easy_cleanup(e);
	dsi_probe_clear(&p);
	assert_null(p.refused);
	return ok;
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

	assert_true(probe(base, "/up", NULL, reason, sizeof(reason)));
	assert_string_equal(reason, "HTTP 200");
	assert_false(probe(base, "/down", NULL, reason, sizeof(reason)));
	assert_string_equal(reason, "HTTP 500");
	assert_false(probe(base, "/moved", NULL, reason, sizeof(reason)));
	assert_string_equal(reason, "HTTP 302");
	assert_int_equal(th_hits(h, "/up"), 1); /* the redirect was not followed */
	assert_true(probe(tcp, NULL, NULL, reason, sizeof(reason)));
	assert_string_equal(reason, "TCP connect succeeded");

	/* The policy is asked for every socket: loopback denied, nothing is sent. */
	dsi_netpolicy_init(&deny_loopback);
	assert_ok(dsi_netpolicy_add(&deny_loopback, false, "127.0.0.0/8", why, sizeof(why)));
	int before = th_total_hits(h);
	assert_false(probe(base, "/up", &deny_loopback, reason, sizeof(reason)));
	assert_non_null(strstr(reason, "refused by the endpoint policy"));
	assert_int_equal(th_total_hits(h), before);
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
	};
	return cmocka_run_group_tests(tests, tu_curl_setup, tu_curl_teardown);
}
