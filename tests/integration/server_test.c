/*
 * The server as a library: two discoveryd servers in one process (no global
 * state), each on its own ephemeral loopback port, and the per-listener
 * request-size limit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdlib.h>
#include <string.h>

#include <discovery/discovery.h>

#include "server/server.h"
#include "support/testutil.h"
#include "common/nngutil.h"

static dsi_server *
start(size_t max_request)
{
	dsi_server_options o;
	dsi_server        *s        = NULL;
	char               why[256] = "";
	dsi_options_default(&o);
	o.listen[0]   = "tcp://127.0.0.1:0";
	o.publish     = "tcp://127.0.0.1:0";
	o.data        = ":memory:";
	o.admin       = NULL; /* no admin endpoint on its fixed default port */
	o.max_request = max_request;
	o.workers     = 4;
	if (dsi_server_create(&s, &o, NULL, why, sizeof(why)) != 0) {
		fail_msg("create: %s", why);
	}
	assert_int_equal(dsi_server_start(s), 0);
	return s;
}

static void
test_two_servers_one_process(void **state)
{
	dsi_server *a = start(1 << 20), *b = start(1 << 20);
	dsc_client *ca, *cb;
	(void) state;

	assert_string_not_equal(dsi_server_url(a, 0), dsi_server_url(b, 0));
	assert_int_equal(dsc_client_open(&ca, dsi_server_url(a, 0), NULL), 0);
	assert_int_equal(dsc_client_open(&cb, dsi_server_url(b, 0), NULL), 0);
	dsc_registration r = { .service = "only-on-a", .endpoint = "http://127.0.0.1:1" };
	assert_int_equal(dsc_register(ca, &r, NULL, NULL), 0);
	assert_int_equal(dsc_resolve(ca, "only-on-a", false, NULL, NULL), 0);
	assert_int_equal(dsc_resolve(cb, "only-on-a", false, NULL, NULL), DSC_ENOTFOUND);
	dsc_client_close(ca);
	dsc_client_close(cb);
	dsi_server_stop(a);
	dsi_server_stop(a); /* idempotent */
	dsi_server_destroy(a);
	dsi_server_destroy(b); /* destroy without stop also stops */
}

static void
test_max_request_size_per_listener(void **state)
{
	dsi_server *s = start(4096);
	nng_socket  sock;
	char       *reply;
	size_t      rlen;
	(void) state;

	assert_int_equal(nng_req0_open(&sock), 0);
	nng_socket_set_ms(sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	nng_socket_set_ms(sock, NNG_OPT_RECVTIMEO, 1000);
	assert_int_equal(nng_dial(sock, dsi_server_url(s, 0), NULL, 0), 0);
	char *big = calloc(1, 8192);
	assert_int_equal(nng_send(sock, big, 8192, 0), 0);
	assert_int_not_equal(nng_recv(sock, &reply, &rlen, NNG_FLAG_ALLOC), 0);
	dsi_close_bounded(sock, DSI_CLOSE_BOUND_MS, NULL); /* nng 1.5.2 */
	free(big);

	/* A request under the limit on a new connection is answered. */
	dsc_client *c;
	assert_int_equal(dsc_client_open(&c, dsi_server_url(s, 0), NULL), 0);
	assert_int_equal(dsc_resolve(c, "nothing", false, NULL, NULL), DSC_ENOTFOUND);
	dsc_client_close(c);
	dsi_server_destroy(s);
}

static void
test_listen_failure_is_reported(void **state)
{
	dsi_server_options o;
	dsi_server        *s        = NULL;
	char               why[256] = "";
	(void) state;
	dsi_options_default(&o);
	o.data    = ":memory:";
	o.publish = "tcp://127.0.0.1:0"; /* not the default port, which a running server may hold */
	o.listen[0] = "bogus://nowhere";
	assert_int_not_equal(dsi_server_create(&s, &o, NULL, why, sizeof(why)), 0);
	assert_null(s);
	assert_non_null(strstr(why, "bogus://nowhere"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_two_servers_one_process),
		cmocka_unit_test(test_max_request_size_per_listener),
		cmocka_unit_test(test_listen_failure_is_reported),
	};
	return cmocka_run_group_tests(tests, tu_curl_setup, tu_curl_teardown);
}
