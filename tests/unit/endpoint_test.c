/* Endpoint validation through libcurl's URL API: a table of good and bad URLs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <discovery/discovery.h>

#include "server/endpoint.h"
#include "server/netpolicy.h"
#include "support/testutil.h"

static const struct {
	const char *url;
	const char *why; /* NULL: accepted; else a fragment of the reason */
} cases[] = {
	{ "http://memory-service:9000", NULL },
	{ "https://memory.example.com", NULL },
	{ "http://127.0.0.1:8080/api/v1", NULL },
	{ "http://[::1]:8080", NULL },
	{ "HTTP://Memory:9000", NULL },
	{ "tcp://10.0.0.1:5432", NULL },
	{ "tcp://db:5432/", NULL },
	{ "http://h:1", NULL },
	{ "http://h:65535", NULL },
	{ "http://h:8080/health?x=1", NULL },
	{ "", "empty" },
	{ "memory-service:9000", "http://, https:// or tcp://" },
	{ "ftp://files:21", "http://, https:// or tcp://" },
	{ "file:///etc/passwd", "http://, https:// or tcp://" },
	{ "gopher://h:70", "http://, https:// or tcp://" },
	{ "/relative/path", "absolute URL" },
	{ "http:/h:80", "absolute" },
	{ "http://user:pw@h:80", "user-info" },
	{ "http://user@h:80", "user-info" },
	{ "http://h:80/#frag", "fragment" },
	{ "http://h:0", "1-65535" },
	{ "http://h:65536", "" },
	{ "http://h:99999", "" },
	{ "http://:80", "" },
	{ "http://", "" },
	{ "tcp://db", "tcp://host:port" },
	{ "tcp://db:5432/path", "no path" },
	{ "tcp://db:5432?q=1", "no path" },
	{ "http://h:80/a b", "space" },
	{ "http://h:80/\x01", "control" },
	{ "http://h\r\nX-Injected: 1", "control" },
	{ "http://h:80/\xc3\xa9", "non-ASCII" },
};

static void
test_table(void **state)
{
	(void) state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char why[512] = "";
		int  rv       = dsi_endpoint_validate(cases[i].url, why, sizeof(why));
		if (cases[i].why == NULL) {
			if (rv != 0) {
				fail_msg("\"%s\" rejected: %s", cases[i].url, why);
			}
		} else {
			if (rv != DSC_EINVAL) {
				fail_msg("\"%s\" accepted", cases[i].url);
			}
			if (strstr(why, cases[i].why) == NULL) {
				fail_msg("\"%s\": reason \"%s\" lacks \"%s\"", cases[i].url, why,
				    cases[i].why);
			}
		}
	}
}

static void
test_length_limit(void **state)
{
	char  why[256];
	char *url = malloc(DSI_ENDPOINT_MAX + 2);
	(void) state;
	assert_non_null(url);
	memset(url, 'a', DSI_ENDPOINT_MAX + 1);
	memcpy(url, "http://h:1/", 11);
	url[DSI_ENDPOINT_MAX] = 0; /* exactly the limit */
	assert_int_equal(dsi_endpoint_validate(url, why, sizeof(why)), 0);
	url[DSI_ENDPOINT_MAX]     = 'a';
	url[DSI_ENDPOINT_MAX + 1] = 0; /* one past */
	assert_int_equal(dsi_endpoint_validate(url, why, sizeof(why)), DSC_EINVAL);
	assert_non_null(strstr(why, "2048"));
	free(url);
}

/*
 * The host registration judges is the one curl connects to: curl writes
 * numeric IPv4 forms and percent-escapes out as dotted quads, and keeps a
 * trailing dot or an IPv6 literal as written, which the policy then reads.
 */
static void
test_host_as_judged(void **state)
{
	static const struct {
		const char *url, *host;
	} hosts[] = {
		{ "http://0xa9.0xfe.0.1/", "169.254.0.1" },
		{ "http://2852039166/", "169.254.169.254" },
		{ "tcp://0251.0376.0251.0376:80", "169.254.169.254" },
		{ "http://%31%36%39.254.169.254/", "169.254.169.254" },
		{ "http://169.254.169.254./", "169.254.169.254." },
		{ "http://[::169.254.169.254]:80/", "[::169.254.169.254]" },
		{ "http://[fe80::1%25eth0]/", "[fe80::1]" },
	};
	dsi_netpolicy p;
	(void) state;
	dsi_netpolicy_init(&p);
	for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
		char host[DSI_ENDPOINT_MAX + 1], why[256];
		if (dsi_endpoint_validate(hosts[i].url, why, sizeof(why)) != 0) {
			fail_msg("%s: rejected: %s", hosts[i].url, why);
		}
		assert_int_equal(dsi_endpoint_host(hosts[i].url, host, sizeof(host)), 0);
		if (strcmp(host, hosts[i].host) != 0) {
			fail_msg("%s: host %s, want %s", hosts[i].url, host, hosts[i].host);
		}
		/* Every one of them is link-local, and refused. */
		if (dsi_netpolicy_permits_host(&p, host, why, sizeof(why))) {
			fail_msg("%s: permitted", hosts[i].url);
		}
	}
}

static void
test_schemes(void **state)
{
	static const struct {
		unsigned    mask;
		const char *url;
		const char *refusal; /* NULL: accepted */
	} scheme_cases[] = {
		{ 0, "tcp://127.0.0.1:5432", NULL },
		{ DSI_SCHEMES_ANY, "http://a:1", NULL },
		{ DSI_SCHEME_HTTPS | DSI_SCHEMES_PRODUCTION, "HTTPS://a:1", NULL },
		{ DSI_SCHEME_HTTPS | DSI_SCHEMES_PRODUCTION, "tcp://127.0.0.1:5432",
		    "the production profile accepts only https:// endpoints; endpoint_schemes "
		    "(--endpoint-schemes, SERVICE_DISCOVERY_ENDPOINT_SCHEMES)" },
		{ DSI_SCHEME_HTTPS | DSI_SCHEME_TCP, "tcp://127.0.0.1:5432", NULL },
		{ DSI_SCHEME_HTTPS | DSI_SCHEME_TCP, "http://a:1",
		    "this server accepts only https:// and tcp:// endpoints" },
		{ DSI_SCHEMES_ANY & ~DSI_SCHEME_TCP, "tcp://a:1",
		    "accepts only http:// and https:// endpoints" },
		{ DSI_SCHEME_TCP, "httpsx://a:1", "accepts only tcp:// endpoints" },
	};
	(void) state;
	for (size_t i = 0; i < sizeof(scheme_cases) / sizeof(scheme_cases[0]); i++) {
		char why[256] = "";
		int  rv       = dsi_endpoint_scheme_check(
		           scheme_cases[i].mask, scheme_cases[i].url, why, sizeof(why));
		if (scheme_cases[i].refusal == NULL
		        ? rv != 0
		        : rv != DSC_EINVAL || strstr(why, scheme_cases[i].refusal) == NULL) {
			fail_msg("case %zu (%s): rv %d, \"%s\"", i, scheme_cases[i].url, rv, why);
		}
	}
	assert_int_equal(dsi_endpoint_scheme_bit("TCP"), DSI_SCHEME_TCP);
	assert_int_equal(dsi_endpoint_scheme_bit("ftp"), 0);
	char buf[64];
	assert_string_equal(dsi_endpoint_schemes_text(DSI_SCHEMES_ANY, buf, sizeof(buf)),
	    "http://, https:// and tcp://");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_length_limit),
		cmocka_unit_test(test_schemes),
		cmocka_unit_test(test_host_as_judged),
	};
	return cmocka_run_group_tests(tests, tu_curl_setup, tu_curl_teardown);
}
