/* The endpoint address policy: CIDR parsing and decisions, as a table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include <discovery/discovery.h>

#include <arpa/inet.h>

#include "server/netpolicy.h"

static void
test_parse(void **state)
{
	static const struct {
		const char *text;
		bool        ok;
	} cases[] = {
		{ "10.0.0.0/8", true },
		{ "169.254.169.254", true },
		{ "fe80::/10", true },
		{ "::1/128", true },
		{ "0.0.0.0/0", true },
		{ "10.0.0.0/33", false },
		{ "10.0.0.0/", false },
		{ "10.0.0/8", false },
		{ "host.example/8", false },
		{ "", false },
		{ "fe80::/129", false },
		{ "10.0.0.0/-1", false },
	};
	(void) state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		dsi_cidr c;
		char     why[128];
		if ((dsi_cidr_parse(cases[i].text, &c, why, sizeof(why)) == 0) != cases[i].ok) {
			fail_msg("case %zu (%s)", i, cases[i].text);
		}
	}
}

static bool
permits(const dsi_netpolicy *p, const char *host)
{
	char why[160];
	return dsi_netpolicy_permits_host(p, host, why, sizeof(why));
}

static void
test_defaults_refuse_link_local(void **state)
{
	dsi_netpolicy p;
	char          why[160];
	uint8_t       a[16];
	(void) state;
	dsi_netpolicy_init(&p);
	assert_false(permits(&p, "169.254.169.254"));
	assert_false(permits(&p, "[fe80::1]"));
	assert_false(permits(&p, "[fe80::1%25eth0]"));
	assert_false(permits(&p, "[::ffff:169.254.169.254]")); /* mapped IPv4 is IPv4 */
	assert_true(permits(&p, "127.0.0.1"));
	assert_true(permits(&p, "10.1.2.3"));
	assert_true(permits(&p, "[::1]"));
	assert_true(permits(&p, "metadata.google.internal")); /* names: decided at connect */
	inet_pton(AF_INET, "169.254.1.1", a);
	assert_false(dsi_netpolicy_permits(&p, AF_INET, a, why, sizeof(why)));
	assert_non_null(strstr(why, "169.254.0.0/16"));
}

static void
test_allow_and_deny(void **state)
{
	dsi_netpolicy p;
	char          why[160];
	(void) state;
	dsi_netpolicy_init(&p);
	assert_int_equal(dsi_netpolicy_add(&p, false, "10.0.0.0/8", why, sizeof(why)), 0);
	assert_false(permits(&p, "10.9.9.9"));
	assert_true(permits(&p, "11.0.0.1"));
	/* An allow rule wins over a deny rule, and makes the policy an allow list. */
	assert_int_equal(dsi_netpolicy_add(&p, true, "10.1.0.0/16", why, sizeof(why)), 0);
	assert_int_equal(dsi_netpolicy_add(&p, true, "169.254.169.254/32", why, sizeof(why)), 0);
	assert_true(permits(&p, "10.1.2.3"));
	assert_true(permits(&p, "169.254.169.254"));
	assert_false(permits(&p, "10.2.0.1"));
	assert_false(permits(&p, "11.0.0.1"));
	assert_int_equal(dsi_netpolicy_add(&p, true, "nonsense", why, sizeof(why)), DSC_EINVAL);
}

/*
 * Every spelling of a refused address that a resolver or curl would connect
 * to is refused too: trailing dots, inet_aton's numeric forms, and IPv6
 * that embeds the IPv4 address.
 */
static void
test_other_forms_of_refused_addresses(void **state)
{
	static const struct {
		const char *host;
		bool        ok;
	} cases[] = {
		{ "169.254.169.254.", false }, { "169.254.169.254..", false },
		{ "2852039166", false }, { "2852039166.", false }, { "0xa9fea9fe", false },
		{ "0XA9FEA9FE.", false }, { "0xa9.0xfe.0.1", false },
		{ "0251.0376.0251.0376", false }, { "169.254.43518", false },
		{ "169.16689662", false }, { "[::169.254.169.254]", false },
		{ "[::a9fe:a9fe]", false }, { "[::ffff:a9fe:a9fe]", false },
		{ "[::ffff:169.254.169.254]", false },
		{ "[64:ff9b::169.254.169.254]", false }, /* NAT64 */
		{ "[2002:a9fe:a9fe::1]", false },        /* 6to4 */
		{ "[fe80::1%25eth0]", false },
		{ "fe80::1", false }, /* unbracketed, as a caller might pass it */
		/* Permitted: other addresses in the same forms, and names. */
		{ "127.0.0.1.", true }, { "2130706433", true }, { "0x7f.1", true },
		{ "[::1]", true }, { "[::]", true }, { "[64:ff9b::10.0.0.1]", true },
		{ "[2002:a00:1::1]", true }, { "10.0.0.1", true },
		{ "1.2.3.4.5", true },  /* not an address: a name, decided at connect */
		{ "08.1.2.3", true },   /* 8 is no octal digit: a name to inet_aton too */
		{ "4294967296", true }, /* past 32 bits: a name */
		{ "256.1.1.1", true },  /* a part past 255: a name */
		{ "metadata.", true }, { "deadbeef", true },
		{ "0x", true }, /* inet_aton's 0.0.0.0, which the defaults permit */
	};
	dsi_netpolicy p;
	(void) state;
	dsi_netpolicy_init(&p);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (permits(&p, cases[i].host) != cases[i].ok) {
			fail_msg("%s: %s", cases[i].host, cases[i].ok ? "refused" : "permitted");
		}
	}
	/* The embedded address is what the message names. */
	char why[160];
	assert_false(dsi_netpolicy_permits_host(&p, "[::169.254.169.254]", why, sizeof(why)));
	assert_non_null(strstr(why, "address 169.254.169.254 is in the denied range"));
	/* An allow list judges embedded IPv4 by the IPv4 ranges. */
	assert_int_equal(dsi_netpolicy_add(&p, true, "10.0.0.0/8", why, sizeof(why)), 0);
	assert_true(permits(&p, "[::ffff:10.1.2.3]"));
	assert_true(permits(&p, "0x0a.1"));
	assert_false(permits(&p, "[64:ff9b::10.0.0.1]")); /* the IPv6 is outside the list */
	assert_false(permits(&p, "0x0b.1"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_defaults_refuse_link_local),
		cmocka_unit_test(test_allow_and_deny),
		cmocka_unit_test(test_other_forms_of_refused_addresses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
