/* The nng helpers: the error mapping, bound listener URLs, bounded closes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <discovery/discovery.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "common/nngutil.h"

static const struct {
	const char *name;
	int         nng;
	int         want;
} err_cases[] = {
	{ "success", 0, DSC_OK },
	{ "timeout", NNG_ETIMEDOUT, DSC_ETIMEDOUT },
	{ "refused", NNG_ECONNREFUSED, DSC_ECONNREFUSED },
	{ "reset", NNG_ECONNRESET, DSC_ECONNREFUSED },
	{ "shut", NNG_ECONNSHUT, DSC_ECONNREFUSED },
	{ "unreachable", NNG_EUNREACHABLE, DSC_ECONNREFUSED },
	{ "address in use", NNG_EADDRINUSE, DSC_ECONNREFUSED },
	{ "out of memory", NNG_ENOMEM, DSC_ENOMEM },
	{ "closed", NNG_ECLOSED, DSC_ECLOSED },
	{ "canceled", NNG_ECANCELED, DSC_ECLOSED },
	{ "bad address", NNG_EADDRINVAL, DSC_EINVAL },
	{ "invalid", NNG_EINVAL, DSC_EINVAL },
	{ "unsupported", NNG_ENOTSUP, DSC_EINVAL },
	{ "crypto", NNG_ECRYPTO, DSC_ETLS },
	{ "peer auth", NNG_EPEERAUTH, DSC_ETLS },
	{ "protocol", NNG_EPROTO, DSC_ETRANSPORT },
	{ "internal", NNG_EINTERNAL, DSC_ETRANSPORT },
};

static void
test_err_from_nng(void **state)
{
	(void) state;
	for (size_t i = 0; i < sizeof(err_cases) / sizeof(err_cases[0]); i++) {
		int got = dsi_err_from_nng(err_cases[i].nng);
		if (got != err_cases[i].want) {
			fail_msg("%s: nng %d gave %d, not %d", err_cases[i].name, err_cases[i].nng,
			    got, err_cases[i].want);
		}
	}
}

/* Listens on url from a fresh REP socket. */
static nng_listener
listen_on(nng_socket *s, const char *url)
{
	nng_listener l;
	assert_int_equal(nng_rep0_open(s), 0);
	assert_int_equal(nng_listener_create(&l, *s, url), 0);
	assert_int_equal(nng_listener_start(l, 0), 0);
	return l;
}

static void
test_listener_url_port_zero(void **state)
{
	nng_socket   s;
	nng_listener l = listen_on(&s, "tcp://127.0.0.1:0");
	char         out[128];
	unsigned     port = 0;
	(void) state;

	dsi_listener_url(l, "tcp://127.0.0.1:0", out, sizeof(out));
	assert_int_equal(sscanf(out, "tcp://127.0.0.1:%u", &port), 1);
	assert_true(port > 0 && port < 65536);

	/* A URL without ":0" is reported as given. */
	dsi_listener_url(l, "tcp://127.0.0.1:00", out, sizeof(out));
	assert_string_equal(out, "tcp://127.0.0.1:00");
	/* Too small a buffer truncates rather than overflows. */
	dsi_listener_url(l, "tcp://127.0.0.1:0", out, 8);
	assert_int_equal(strlen(out), 7);
	assert_true(dsi_close_bounded(s, DSI_CLOSE_BOUND_MS, NULL));
}

/* A transport without a port (inproc) keeps its URL. */
static void
test_listener_url_no_port(void **state)
{
	nng_socket   s;
	nng_listener l = listen_on(&s, "inproc://nngutil-test");
	char         out[128];
	(void) state;

	dsi_listener_url(l, "inproc://nngutil-test", out, sizeof(out));
	assert_string_equal(out, "inproc://nngutil-test");
	assert_true(dsi_close_bounded(s, DSI_CLOSE_BOUND_MS, NULL));
}

/* An idle socket closes well within the bound, and then is gone. */
static void
test_sockaddr_text(void **state)
{
	nng_sockaddr sa;
	char         buf[128];
	(void) state;

	memset(&sa, 0, sizeof(sa));
	sa.s_in.sa_family = NNG_AF_INET;
	sa.s_in.sa_addr   = htonl(0x7f000001);
	sa.s_in.sa_port   = htons(7700);
	dsi_sockaddr_text(&sa, buf, sizeof(buf));
	assert_string_equal(buf, "127.0.0.1:7700");

	memset(&sa, 0, sizeof(sa));
	sa.s_in6.sa_family   = NNG_AF_INET6;
	sa.s_in6.sa_addr[15] = 1;
	sa.s_in6.sa_port     = htons(80);
	dsi_sockaddr_text(&sa, buf, sizeof(buf));
	assert_string_equal(buf, "[::1]:80");

	memset(&sa, 0, sizeof(sa));
	sa.s_ipc.sa_family = NNG_AF_IPC;
	snprintf(sa.s_ipc.sa_path, sizeof(sa.s_ipc.sa_path), "/tmp/d.sock");
	dsi_sockaddr_text(&sa, buf, sizeof(buf));
	assert_string_equal(buf, "/tmp/d.sock");

	sa.s_family = NNG_AF_UNSPEC;
	dsi_sockaddr_text(&sa, buf, sizeof(buf));
	assert_string_equal(buf, "");
}

static void
test_close_bounded(void **state)
{
	nng_socket s;
	(void) state;
	assert_int_equal(nng_rep0_open(&s), 0);
	assert_true(dsi_close_bounded(s, DSI_CLOSE_BOUND_MS, NULL));
	assert_int_equal(nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 1), NNG_ECLOSED);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_err_from_nng),
		cmocka_unit_test(test_listener_url_port_zero),
		cmocka_unit_test(test_listener_url_no_port),
		cmocka_unit_test(test_sockaddr_text),
		cmocka_unit_test(test_close_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
