/*
 * TLS to etcd (issue 16, docs/cluster-operations.md): a real etcd on
 * loopback serving https:// with --client-cert-auth, throwaway certificates
 * made by the openssl command line tool. Two discoveryd nodes on etcds://
 * with a client certificate: a write on one is read on the other (calls,
 * the watch stream, membership and TTL leases all over TLS). A node without
 * the client certificate, or trusting another CA, or presenting a
 * certificate etcd's CA did not sign, does not start, and says why on
 * stderr. Settings that do not fit together stop start-up as bad
 * configuration (exit 2). Exits 77 (skipped) without etcd.
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

#include "support/cluster.h"
#include "support/certs.h"
#include "support/daemon.h"
#include "support/etcd_cluster.h"
#include "support/testutil.h"

static te_cluster *etcd;
static char        dir[320];

/* DIR/name, at a stable address for the whole run. */
static const char *
path(const char *name)
{
	static char paths[32][384];
	static int  n;
	char        p[384];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	for (int i = 0; i < n; i++) {
		if (strcmp(paths[i], p) == 0) {
			return paths[i];
		}
	}
	assert_true(n < 32);
	memcpy(paths[n], p, sizeof(p));
	return paths[n++];
}

static int
group_setup(void **state)
{
	if (te_etcd_path() == NULL) {
		fprintf(stderr,
		    "cluster_tls_test: no etcd (install etcd-server, or set DISCOVERY_ETCD)\n");
		exit(77);
	}
	if (tu_curl_setup(state) != 0 || tu_mkdtemp(dir, sizeof(dir), "cluster-tls") != 0) {
		return -1;
	}
	/*
	 * etcd's own gateway dials its gRPC side with the member's certificate
	 * as a client certificate: no extended key usage keeps it fit for both.
	 */
	if (tcert_make_ca(dir, "ca") != 0 || tcert_make_ca(dir, "other") != 0
	    || tcert_make_leaf(dir, "etcd", "ca", "IP:127.0.0.1") != 0
	    || tcert_make_leaf(dir, "client", "ca", "DNS:client") != 0
	    || tcert_make_leaf(dir, "rogue", "other", "DNS:client") != 0) {
		return -1;
	}
	te_tls tls = { .ca   = path("ca.crt"),
		.cert        = path("etcd.crt"),
		.key         = path("etcd.key"),
		.client_cert = path("client.crt"),
		.client_key  = path("client.key") };
	return te_cluster_start_tls(&etcd, 1, &tls);
}

static int
group_teardown(void **state)
{
	te_cluster_stop(etcd);
	tu_rmtree(dir);
	return tu_curl_teardown(state);
}

/* The --cluster value for the TLS member(s): etcds://127.0.0.1:P. */
static const char *
cluster_flag(void)
{
	static char flag[128];
	snprintf(flag, sizeof(flag), "etcds://%s", te_cluster_endpoints(etcd) + strlen("https://"));
	return flag;
}

static dsc_client *
client(const td_daemon *d)
{
	dsc_client        *c;
	dsc_client_options o;
	dsc_client_options_init(&o);
	o.timeout_ms = TU_LIVENESS_MS;
	assert_int_equal(dsc_client_open(&c, d->url, &o), 0);
	return c;
}

/* Resolves service on c until it answers endpoint, within the liveness bound. */
static void
resolve_eventually(dsc_client *c, const char *service, const char *endpoint)
{
	int64_t deadline = tu_now_ms() + TU_LIVENESS_MS;
	for (;;) {
		dsc_instance *in;
		dsc_error     err;
		int           rv = dsc_resolve(c, service, false, &in, &err);
		if (rv == 0) {
			assert_string_equal(in->endpoint, endpoint);
			dsc_instance_free(in);
			return;
		}
		if (rv != DSC_ENOTFOUND || tu_now_ms() > deadline) {
			fail_msg("resolve %s: %s (%s)", service, dsc_strerror(rv), err.message);
		}
		tu_sleep_ms(20);
	}
}

static void
test_nodes_share_a_registry_over_tls(void **state)
{
	const char *const extra[] = { "--cluster-ca", path("ca.crt"), "--cluster-cert",
		path("client.crt"), "--cluster-key", path("client.key"), NULL };
	tc_cluster        tc      = { 0 };
	dsc_error         err;
	(void) state;
	assert_int_equal(tc_cluster_start(&tc, 2, te_cluster_endpoints(etcd), extra), 0);
	assert_string_equal(tc.cluster, cluster_flag());
	dsc_client *a = client(&tc.d[0]), *b = client(&tc.d[1]);

	/* A write on node0 reaches node1 through etcd's watch stream. */
	dsc_registration r = { .service = "web", .endpoint = "http://127.0.0.1:18080" };
	assert_int_equal(dsc_register(a, &r, NULL, &err), 0);
	resolve_eventually(b, "web", "http://127.0.0.1:18080");

	/* A TTL instance on node1: its lease is granted and renewed over TLS too. */
	dsc_registration t
	    = { .service = "ttl", .endpoint = "http://127.0.0.1:18081", .ttl_ms = 60000 };
	assert_int_equal(dsc_register(b, &t, NULL, &err), 0);
	dsc_instance *in;
	if (dsc_heartbeat(b, "ttl", "http://127.0.0.1:18081", &in, &err) != 0) {
		fail_msg("heartbeat: %s", err.message);
	}
	dsc_instance_free(in);
	resolve_eventually(a, "ttl", "http://127.0.0.1:18081");

	dsc_client_close(a);
	dsc_client_close(b);
	assert_int_equal(tc_cluster_stop(&tc), 0);
	assert_false(td_daemon_log_contains(&tc.d[0], "cannot"));
}

/*
 * discoveryd on the TLS member with args after --cluster: it must not
 * start, exiting non-zero with a line on stderr that holds every one of want.
 */
static void
expect_no_start(const char *const *args, const char *const *want)
{
	const char *argv[32] = { DISCOVERYD_PATH, "--cluster", cluster_flag(), "--data",
		":memory:", "--listen", "tcp://127.0.0.1:0", "--publish", "tcp://127.0.0.1:0" };
	size_t      n        = 9;
	char        out[2048], err[4096];
	while (*args != NULL && n < 31) {
		argv[n++] = *args++;
	}
	argv[n] = NULL;
	int rv  = td_run(argv, out, sizeof(out), err, sizeof(err));
	if (rv <= 0) {
		fail_msg("exit %d, stderr: %s", rv, err);
	}
	const char *line = strstr(err, "discoveryd: cannot start: ");
	if (line == NULL) {
		fail_msg("exit %d without \"cannot start\"; stderr: %s", rv, err);
	}
	size_t len = strcspn(line, "\n");
	for (; *want != NULL; want++) {
		char *hit = strstr(line, *want);
		if (hit == NULL || hit >= line + len) {
			fail_msg(
			    "exit %d; its line lacks \"%s\": %.*s", rv, *want, (int) len, line);
		}
	}
}

static void
test_refused_without_client_certificate(void **state)
{
	(void) state;
	/* etcd asks for a certificate this node does not have. */
	expect_no_start((const char *[]) { "--cluster-ca", path("ca.crt"), NULL },
	    (const char *[]) { "cannot read etcd", "asked for a TLS client certificate", NULL });
	/* One another CA signed: etcd does not know it. */
	expect_no_start((const char *[]) { "--cluster-ca", path("ca.crt"), "--cluster-cert",
	                    path("rogue.crt"), "--cluster-key", path("rogue.key"), NULL },
	    (const char *[]) { "cannot read etcd", "client certificate", NULL });
}

static void
test_refused_with_the_wrong_ca(void **state)
{
	(void) state;
	/* etcd's certificate is not signed by the CA this node trusts. */
	expect_no_start((const char *[]) { "--cluster-ca", path("other.crt"), "--cluster-cert",
	                    path("client.crt"), "--cluster-key", path("client.key"), NULL },
	    (const char *[]) { "cannot read etcd", "SSL certificate problem", NULL });
	/*
	 * No CA given: the system's bundle, which does not know this throwaway CA
	 * either ("certificate": a machine without a bundle says so instead).
	 */
	expect_no_start((const char *[]) { "--cluster-cert", path("client.crt"), "--cluster-key",
	                    path("client.key"), NULL },
	    (const char *[]) { "cannot read etcd", "certificate", NULL });
}

/* discoveryd with args: exit 2 (bad configuration) and a line holding want. */
static void
expect_config_error(const char *const *args, const char *want)
{
	const char *argv[24] = { DISCOVERYD_PATH, "--data", ":memory:" };
	size_t      n        = 3;
	char        out[2048], err[4096];
	while (*args != NULL && n < 23) {
		argv[n++] = *args++;
	}
	argv[n] = NULL;
	int rv  = td_run(argv, out, sizeof(out), err, sizeof(err));
	if (rv != 2 || strstr(err, want) == NULL) {
		fail_msg("exit %d, stderr: %s (wanted \"%s\")", rv, err, want);
	}
}

static void
test_settings_that_do_not_fit(void **state)
{
	const char *ca = path("ca.crt"), *crt = path("client.crt"), *key = path("client.key");
	(void) state;
	expect_config_error(
	    (const char *[]) { "--cluster", "etcd://127.0.0.1:2379", "--cluster-ca", ca, NULL },
	    "flag --cluster-ca: TLS to etcd is configured, but --cluster is etcd:// (plain HTTP)");
	expect_config_error((const char *[]) { "--cluster-cert", crt, "--cluster-key", key, NULL },
	    "flag --cluster-cert: TLS to etcd is configured, but --cluster is off");
	expect_config_error(
	    (const char *[]) { "--cluster", cluster_flag(), "--cluster-cert", crt, NULL },
	    "needs both --cluster-cert and --cluster-key");
	expect_config_error(
	    (const char *[]) { "--cluster", cluster_flag(), "--cluster-key", key, NULL },
	    "needs both --cluster-cert and --cluster-key");
	expect_config_error((const char *[]) { "--cluster", cluster_flag(), "--cluster-ca",
	                        path("missing.crt"), NULL },
	    "missing.crt: cannot read the etcd CA file");
	expect_config_error((const char *[]) { "--cluster", cluster_flag(), "--cluster-cert",
	                        path("missing.crt"), "--cluster-key", key, NULL },
	    "missing.crt: cannot read the etcd client certificate");
	expect_config_error((const char *[]) { "--cluster", cluster_flag(), "--cluster-cert", crt,
	                        "--cluster-key", path("missing.key"), NULL },
	    "missing.key");
	expect_config_error(
	    (const char *[]) { "--cluster", "etcds://127.0.0.1:2379,etcd://127.0.0.1:2380", NULL },
	    "mixing etcd:// and etcds:// is not possible");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nodes_share_a_registry_over_tls),
		cmocka_unit_test(test_refused_without_client_certificate),
		cmocka_unit_test(test_refused_with_the_wrong_ca),
		cmocka_unit_test(test_settings_that_do_not_fit),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
