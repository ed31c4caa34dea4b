/*
 * Configuration loading: the original YAML file, the extended form, the
 * environment (SERVICE_<NAME>, SERVICE_DISCOVERY_*), profiles, precedence,
 * and errors that name the file and the line.
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

#include "server/config.h"
#include "server/endpoint.h"

typedef struct fixture {
	char       dir[64];
	dsi_config c;
	char       why[768];
	char       out[8192];
} fixture;

static int
setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/config-test-XXXXXX");
	if (mkdtemp(f->dir) == NULL) {
		return -1;
	}
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	fixture *f = *state;
	char     cmd[128];
	dsi_config_free(&f->c);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	(void) system(cmd);
	free(f);
	return 0;
}

/* Writes text to DIR/name and returns the path (static storage per call). */
static const char *
file(fixture *f, const char *name, const char *text)
{
	static char path[128];
	snprintf(path, sizeof(path), "%s/%s", f->dir, name);
	FILE *fp = fopen(path, "w");
	fputs(text, fp);
	fclose(fp);
	return path;
}

/* Loads with argv (NULL-terminated, after argv[0]) and envp. */
static int
load(fixture *f, const char *const *args, const char *const *env)
{
	char *argv[32];
	int   argc   = 0;
	argv[argc++] = "discoveryd";
	while (args != NULL && *args != NULL) {
		argv[argc++] = (char *) *args++;
	}
	argv[argc] = NULL;
	dsi_config_free(&f->c);
	FILE *out = fmemopen(f->out, sizeof(f->out), "w");
	int   rv
	    = dsi_config_load(&f->c, argc, argv, (char *const *) env, out, f->why, sizeof(f->why));
	fclose(out);
	return rv;
}

static const dsi_boot_instance *
boot(fixture *f, const char *svc, size_t nth)
{
	for (size_t i = 0; i < f->c.n_boot; i++) {
		if (strcmp(f->c.boot[i].service, svc) == 0 && nth-- == 0) {
			return &f->c.boot[i];
		}
	}
	return NULL;
}

static bool
warned(fixture *f, const char *text)
{
	for (size_t i = 0; i < f->c.n_warnings; i++) {
		if (strstr(f->c.warnings[i], text) != NULL) {
			return true;
		}
	}
	return false;
}

static const char original[] = "services:\n"
                               "  memory: http://memory-service:9000\n"
                               "  cognition: http://cognition-service:9100\n"
                               "health_check:\n"
                               "  interval: 30\n"
                               "  timeout: 5.0\n";

static void
test_original_file_loads_as_is(void **state)
{
	fixture    *f    = *state;
	const char *path = file(f, "orig.yaml", original);
	assert_int_equal(load(f, (const char *[]) { "--config", path, NULL }, NULL), 0);
	assert_int_equal(f->c.n_boot, 2);
	assert_string_equal(boot(f, "memory", 0)->endpoint, "http://memory-service:9000");
	assert_non_null(strstr(boot(f, "cognition", 0)->origin, "orig.yaml:3"));
	assert_int_equal(f->c.options.health_interval_ms, 30000);
	assert_int_equal(f->c.options.health_timeout_ms, 5000);
	assert_non_null(strstr(f->c.options.origin[DSI_SET_HEALTH_TIMEOUT], "orig.yaml:6"));
	assert_int_equal(f->c.n_warnings, 0);
}

static void
test_extended_file(void **state)
{
	fixture    *f    = *state;
	const char *path = file(f, "ext.yaml",
	    "listen: [tcp://127.0.0.1:1, tcp://127.0.0.1:2]\n"
	    "publish: tcp://127.0.0.1:3\n"
	    "health_check:\n"
	    "  rise: 3\n"
	    "  deregister_after: 120\n"
	    "events:\n"
	    "  sync_interval: 0.5\n"
	    "required: [memory, Cognition_Engine]\n"
	    "services:\n"
	    "  memory:\n"
	    "    - http://m1:9000\n"
	    "    - endpoint: http://m2:9000\n"
	    "      health_path: /ready\n"
	    "      ttl_ms: 5000\n"
	    "      weight: 3\n"
	    "      metadata: {zone: eu-1, version: \"2\"}\n"
	    "  Cognition_Engine: https://ce:443\n"
	    "colour: blue\n");
	assert_int_equal(load(f, (const char *[]) { "--config", path, NULL }, NULL), 0);
	const dsi_server_options *o = &f->c.options;
	assert_int_equal(o->n_listen, 2);
	assert_string_equal(o->listen[1], "tcp://127.0.0.1:2");
	assert_string_equal(o->publish, "tcp://127.0.0.1:3");
	assert_int_equal(o->rise, 3);
	assert_int_equal(o->deregister_after_ms, 120000);
	assert_int_equal(o->sync_interval_ms, 500);
	assert_int_equal(o->n_require, 2);
	assert_int_equal(f->c.n_boot, 3);
	const dsi_boot_instance *m2 = boot(f, "memory", 1);
	assert_string_equal(m2->endpoint, "http://m2:9000");
	assert_string_equal(m2->health_path, "/ready");
	assert_int_equal(m2->ttl_ms, 5000);
	assert_int_equal(m2->weight, 3);
	assert_int_equal(m2->n_metadata, 2);
	assert_string_equal(m2->metadata[0].key, "zone");
	assert_non_null(boot(f, "cognition-engine", 0)); /* names are normalized */
	assert_true(warned(f, "ext.yaml:18: unknown key \"colour\""));
}

static void
test_precedence_flags_env_file_defaults(void **state)
{
	fixture    *f    = *state;
	const char *path = file(f, "p.yaml", "health_check:\n  rise: 3\n  fall: 3\n  timeout: 7\n");
	const char *env[] = { "SERVICE_DISCOVERY_HEALTH_CHECK_RISE=4",
		"SERVICE_DISCOVERY_HEALTH_CHECK_FALL=4", NULL };
	assert_int_equal(
	    load(f, (const char *[]) { "--config", path, "--rise", "5", NULL }, env), 0);
	assert_int_equal(f->c.options.rise, 5);                 /* flag over env over file */
	assert_int_equal(f->c.options.fall, 4);                 /* env over file */
	assert_int_equal(f->c.options.health_timeout_ms, 7000); /* file over default */
	assert_int_equal(f->c.options.max_checks, 256);         /* default */
	assert_string_equal(f->c.options.origin[DSI_SET_RISE], "flag --rise");
	assert_string_equal(
	    f->c.options.origin[DSI_SET_FALL], "env SERVICE_DISCOVERY_HEALTH_CHECK_FALL");
	/* The file can also come from the environment. */
	char cfg[160];
	snprintf(cfg, sizeof(cfg), "SERVICE_DISCOVERY_CONFIG=%s", path);
	const char *env2[] = { cfg, NULL };
	assert_int_equal(load(f, NULL, env2), 0);
	assert_int_equal(f->c.options.rise, 3);
}

/* The data file: flag over environment over file, with the default in between. */
static void
test_data_setting(void **state)
{
	fixture    *f    = *state;
	const char *path = file(f, "d.yaml", "data: /var/lib/discovery/registry.db\n");
	assert_int_equal(load(f, NULL, NULL), 0);
	assert_string_equal(f->c.options.data, "discovery.db");
	assert_int_equal(load(f, (const char *[]) { "--config", path, NULL }, NULL), 0);
	assert_string_equal(f->c.options.data, "/var/lib/discovery/registry.db");
	assert_non_null(strstr(f->c.options.origin[DSI_SET_DATA], "d.yaml:1"));
	const char *env[] = { "SERVICE_DISCOVERY_DATA=:memory:", NULL };
	assert_int_equal(load(f, (const char *[]) { "--config", path, NULL }, env), 0);
	assert_string_equal(f->c.options.data, ":memory:");
	assert_string_equal(f->c.options.origin[DSI_SET_DATA], "env SERVICE_DISCOVERY_DATA");
	assert_int_equal(
	    load(f, (const char *[]) { "--config", path, "--data", "x.db", NULL }, env), 0);
	assert_string_equal(f->c.options.data, "x.db");
}

static void
test_service_variables(void **state)
{
	fixture    *f     = *state;
	const char *env[] = { "SERVICE_COGNITION_ENGINE=http://ce:9100",
		"SERVICE_MEMORY=http://m:9000", "SERVICE_DISCOVERY_HEALTH_CHECK_INTERVAL=60",
		"SERVICE_NAME=billing", "SERVICE_=http://x:1", "PATH=/usr/bin", NULL };
	assert_int_equal(load(f, NULL, env), 0);
	assert_int_equal(f->c.n_boot, 2);
	assert_string_equal(boot(f, "cognition-engine", 0)->endpoint, "http://ce:9100");
	assert_string_equal(boot(f, "cognition-engine", 0)->origin, "env SERVICE_COGNITION_ENGINE");
	/* A setting is never a service; the original design's bug stays out. */
	assert_null(boot(f, "discovery-health-check-interval", 0));
	assert_int_equal(f->c.options.health_interval_ms, 60000);
	/* A value that is not an endpoint is skipped, with a warning naming it. */
	assert_null(boot(f, "name", 0));
	assert_true(warned(f, "SERVICE_NAME skipped"));
}

static void
test_prefix_change(void **state)
{
	fixture    *f     = *state;
	const char *env[] = { "SERVICE_DISCOVERY_ENV_PREFIX=CORTEX_SERVICE_",
		"CORTEX_SERVICE_MEMORY=http://m:9000", "SERVICE_OTHER=http://o:9000", NULL };
	assert_int_equal(load(f, NULL, env), 0);
	assert_int_equal(f->c.n_boot, 1);
	assert_non_null(boot(f, "memory", 0));
	assert_null(boot(f, "other", 0)); /* plain SERVICE_* is not loaded with another prefix */
}

static void
test_profiles(void **state)
{
	fixture    *f = *state;
	const char *test[]
	    = { "ENVIRONMENT=testing", "TEST_SERVICE_A=http://a:1", "SERVICE_B=http://b:1", NULL };
	assert_int_equal(load(f, NULL, test), 0);
	assert_string_equal(f->c.profile, "testing");
	assert_string_equal(f->c.prefix, "TEST_SERVICE_");
	assert_int_equal(f->c.n_boot, 1);
	assert_non_null(boot(f, "a", 0));

	const char *over[] = { "ENVIRONMENT=testing", "SERVICE_DISCOVERY_ENV_PREFIX=MY_",
		"MY_C=http://c:1", NULL };
	assert_int_equal(load(f, NULL, over), 0);
	assert_string_equal(f->c.prefix, "MY_");

	const char *prod_no_token[]
	    = { "ENVIRONMENT=production", "PROD_SERVICE_A=https://a:1", NULL };
	assert_int_equal(load(f, NULL, prod_no_token), DSC_EINVAL);
	assert_non_null(strstr(f->why, "needs an auth token"));

	const char *prod_http[] = { "ENVIRONMENT=production", "SERVICE_DISCOVERY_API_KEY=s3cret",
		"PROD_SERVICE_A=http://a:1", NULL };
	assert_int_equal(load(f, NULL, prod_http), DSC_EINVAL);
	assert_non_null(strstr(f->why, "env PROD_SERVICE_A"));
	assert_non_null(strstr(f->why, "only https://"));

	const char *prod_ok[] = { "ENVIRONMENT=production", "SERVICE_DISCOVERY_API_KEY=s3cret",
		"PROD_SERVICE_A=https://a:1", NULL };
	assert_int_equal(load(f, NULL, prod_ok), 0);
	assert_true(f->c.options.require_https);
	assert_string_equal(f->c.options.token, "s3cret");

	const char *token = file(f, "token", "from-file\n");
	chmod(token, 0600); /* a token others can read is refused */
	assert_int_equal(
	    load(f, (const char *[]) { "--environment", "production", "--token-file", token, NULL },
	        NULL),
	    0);
	assert_string_equal(f->c.options.token, "from-file");

	const char *bogus[] = { "ENVIRONMENT=staging", NULL };
	assert_int_equal(load(f, NULL, bogus), DSC_EINVAL);
	assert_non_null(strstr(f->why, "development, testing or production"));
}

static void
test_environment_replaces_file_instances(void **state)
{
	fixture    *f     = *state;
	const char *path  = file(f, "o.yaml", original);
	const char *env[] = { "SERVICE_MEMORY=http://override:1", NULL };
	assert_int_equal(load(f, (const char *[]) { "--config", path, NULL }, env), 0);
	assert_int_equal(f->c.n_boot, 2);
	assert_string_equal(boot(f, "memory", 0)->endpoint, "http://override:1");
	assert_null(boot(f, "memory", 1));
}

static void
test_errors_name_file_and_line(void **state)
{
	fixture *f = *state;
	static const struct {
		const char *text;
		const char *want;
	} bad[] = {
		{ "services:\n  memory: [http://a:1\n", "bad.yaml:3: malformed YAML" },
		{ "health_check:\n  interval: 30\n    timeout: 5\n", "bad.yaml:3: malformed YAML" },
		{ "health_check:\n  interval: soon\n",
		    "bad.yaml:2 (health_check.interval): expects seconds" },
		{ "services:\n  memory:\n    - health_path: /x\n",
		    "bad.yaml:3: service memory: an instance needs an endpoint" },
		{ "services:\n  -bad-: http://a:1\n", "bad.yaml:2: services: service name" },
		{ "- just\n- a list\n", "bad.yaml:1: the file must be a mapping" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *path = file(f, "bad.yaml", bad[i].text);
		if (load(f, (const char *[]) { "--config", path, NULL }, NULL) != DSC_EINVAL) {
			fail_msg("case %zu loaded", i);
		}
		if (strstr(f->why, bad[i].want) == NULL) {
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i, f->why, bad[i].want);
		}
	}
	assert_int_equal(
	    load(f, (const char *[]) { "--config", "/nonexistent/d.yaml", NULL }, NULL),
	    DSC_EINVAL);
	assert_non_null(strstr(f->why, "/nonexistent/d.yaml: cannot read"));
	/* An empty file configures nothing, and is fine. */
	const char *empty = file(f, "empty.yaml", "");
	assert_int_equal(load(f, (const char *[]) { "--config", empty, NULL }, NULL), 0);
}

static void
test_flags(void **state)
{
	fixture *f = *state;
	assert_int_equal(load(f, (const char *[]) { "--nope", NULL }, NULL), DSC_EINVAL);
	assert_non_null(strstr(f->why, "unknown option \"--nope\""));
	assert_int_equal(load(f, (const char *[]) { "--listen", NULL }, NULL), DSC_EINVAL);
	assert_non_null(strstr(f->why, "needs a value"));
	assert_int_equal(load(f, (const char *[]) { "stray", NULL }, NULL), DSC_EINVAL);
	assert_int_equal(load(f, (const char *[]) { "--help=1", NULL }, NULL), DSC_EINVAL);
	assert_int_equal(load(f, (const char *[]) { "--help", NULL }, NULL), DSI_OPTIONS_EXIT);
	assert_non_null(strstr(f->out, "SERVICE_DISCOVERY_HEALTH_CHECK_INTERVAL"));
	assert_int_equal(load(f, (const char *[]) { "--version", NULL }, NULL), DSI_OPTIONS_EXIT);
	assert_int_equal(load(f,
	                     (const char *[]) { "--require", "a,b", "--listen=tcp://127.0.0.1:9",
	                         "--listen", "tcp://127.0.0.1:8", NULL },
	                     NULL),
	    0);
	assert_int_equal(f->c.options.n_require, 2);
	assert_int_equal(f->c.options.n_listen, 2);
}

static void
test_print_config_shows_origins(void **state)
{
	fixture    *f     = *state;
	const char *path  = file(f, "o.yaml", original);
	const char *env[] = { "SERVICE_DISCOVERY_API_KEY=hidden", "SERVICE_X=http://x:1", NULL };
	assert_int_equal(
	    load(f, (const char *[]) { "--config", path, "--print-config", "--fall", "4", NULL },
	        env),
	    0);
	assert_true(f->c.print_config);
	char  buf[8192];
	FILE *out = fmemopen(buf, sizeof(buf), "w");
	dsi_config_print(&f->c, out);
	fclose(out);
	assert_non_null(strstr(buf, "flag --fall"));
	assert_non_null(strstr(buf, "(health_check.timeout)"));
	assert_non_null(strstr(buf, "env SERVICE_X"));
	assert_non_null(strstr(buf, "(set)"));
	assert_null(strstr(buf, "hidden")); /* secrets are never printed */
}

static void
test_tls_settings(void **state)
{
	fixture    *f     = *state;
	const char *path  = file(f, "t.yaml", "tls:\n  key: /k.pem\n  ca: /ca.pem\n");
	const char *env[] = { "SERVICE_DISCOVERY_TLS_CERT=/c.pem", NULL };
	assert_int_equal(
	    load(f,
	        (const char *[]) { "--config", path, "--listen", "tls+tcp://0.0.0.0:7700", NULL },
	        env),
	    0);
	assert_string_equal(f->c.options.tls_cert, "/c.pem");
	assert_string_equal(f->c.options.tls_key, "/k.pem");
	assert_string_equal(f->c.options.tls_ca, "/ca.pem");
	assert_string_equal(
	    f->c.options.origin[DSI_SET_TLS_CERT], "env SERVICE_DISCOVERY_TLS_CERT");
	assert_non_null(strstr(f->c.options.origin[DSI_SET_TLS_KEY], "t.yaml:2 (tls.key)"));
	/* Settings that do not fit together stop loading, naming where they came from. */
	assert_int_equal(load(f,
	                     (const char *[]) { "--publish", "tls+tcp://127.0.0.1:7701",
	                         "--tls-cert", "/c.pem", NULL },
	                     NULL),
	    DSC_EINVAL);
	assert_non_null(strstr(f->why, "flag --publish: tls+tcp://127.0.0.1:7701 is a TLS URL"));
	assert_int_equal(
	    load(f, (const char *[]) { "--tls-ca", "/ca.pem", NULL }, NULL), DSC_EINVAL);
	assert_non_null(strstr(f->why, "flag --tls-ca: TLS is configured"));
}

/*
 * TLS to etcd: the files only with an etcds:// cluster, a certificate only
 * with its key, every file readable (the key a secret), at load time.
 */
static void
test_cluster_tls_settings(void **state)
{
	fixture *f = *state;
	char     ca[128], crt[128], key[128], open_key[128], yaml[320];
	snprintf(ca, sizeof(ca), "%s", file(f, "ca.pem", "ca\n"));
	snprintf(crt, sizeof(crt), "%s", file(f, "c.pem", "cert\n"));
	snprintf(key, sizeof(key), "%s", file(f, "k.pem", "key\n"));
	snprintf(open_key, sizeof(open_key), "%s", file(f, "open.pem", "key\n"));
	assert_int_equal(chmod(key, 0600), 0);
	assert_int_equal(chmod(open_key, 0644), 0);
	const char *tls = "etcds://127.0.0.1:2379,127.0.0.1:22379";

	snprintf(yaml, sizeof(yaml), "cluster_ca: %s\ncluster_key: %s\n", ca, key);
	const char *path = file(f, "c.yaml", yaml);
	char        env0[192];
	snprintf(env0, sizeof(env0), "SERVICE_DISCOVERY_CLUSTER_CERT=%s", crt);
	const char *env[] = { env0, NULL };
	assert_int_equal(
	    load(f, (const char *[]) { "--config", path, "--cluster", tls, NULL }, env), 0);
	assert_string_equal(f->c.options.cluster_ca, ca);
	assert_string_equal(f->c.options.cluster_cert, crt);
	assert_string_equal(f->c.options.cluster_key, key);
	assert_non_null(strstr(f->c.options.origin[DSI_SET_CLUSTER_KEY], "c.yaml:2 (cluster_key)"));
	/* etcds:// alone: the system's CAs, no client certificate. */
	assert_int_equal(load(f, (const char *[]) { "--cluster", tls, NULL }, NULL), 0);

	static const struct {
		const char *args[8];
		const char *why;
	} bad[] = {
		{ { "--cluster", "etcd://127.0.0.1:2379", "--cluster-ca", "CA" },
		    "flag --cluster-ca: TLS to etcd is configured, but --cluster is etcd:// (plain "
		    "HTTP)" },
		{ { "--cluster-cert", "CRT", "--cluster-key", "KEY" },
		    "flag --cluster-cert: TLS to etcd is configured, but --cluster is off" },
		{ { "--cluster", "TLS", "--cluster-cert", "CRT" },
		    "flag --cluster-cert: an etcd client certificate needs both --cluster-cert and "
		    "--cluster-key" },
		{ { "--cluster", "TLS", "--cluster-key", "KEY" },
		    "flag --cluster-key: an etcd client certificate needs both" },
		{ { "--cluster", "TLS", "--cluster-ca", "/nonexistent/ca.pem" },
		    "/nonexistent/ca.pem: cannot read the etcd CA file" },
		{ { "--cluster", "TLS", "--cluster-cert", "/nonexistent/c.pem", "--cluster-key",
		      "KEY" },
		    "/nonexistent/c.pem: cannot read the etcd client certificate" },
		{ { "--cluster", "TLS", "--cluster-cert", "CRT", "--cluster-key", "OPEN" },
		    "the etcd client key is readable by group or others" },
		{ { "--cluster", "etcds://127.0.0.1:2379,etcd://127.0.0.1:2380" },
		    "mixing etcd:// and etcds:// is not possible" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *args[9] = { NULL };
		for (size_t k = 0; bad[i].args[k] != NULL; k++) {
			const char *a = bad[i].args[k];
			args[k]       = strcmp(a, "TLS") == 0 ? tls
			          : strcmp(a, "CA") == 0      ? ca
			          : strcmp(a, "CRT") == 0     ? crt
			          : strcmp(a, "KEY") == 0     ? key
			          : strcmp(a, "OPEN") == 0    ? open_key
			                                      : a;
		}
		if (load(f, args, NULL) != DSC_EINVAL || strstr(f->why, bad[i].why) == NULL) {
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i, f->why, bad[i].why);
		}
	}
}

/*
 * A prefix of 128 bytes or more overran a 128-byte copy of the variable's
 * name (ASan: stack-buffer-overflow in dsi_name_normalize). Prefixes over
 * DSI_CONFIG_PREFIX_MAX are refused; every copy below that is bounded.
 */
static void
test_long_prefix(void **state)
{
	fixture *f = *state;
	char     prefix[300], setting[400], var[800];
	for (size_t len = 127; len <= 256; len += 129) {
		memset(prefix, 'P', len);
		prefix[len] = 0;
		snprintf(setting, sizeof(setting), "SERVICE_DISCOVERY_ENV_PREFIX=%s", prefix);
		snprintf(var, sizeof(var), "%sMEMORY=http://m:9000", prefix);
		const char *env[] = { setting, var, NULL };
		assert_int_equal(load(f, NULL, env), DSC_EINVAL);
		assert_non_null(strstr(f->why,
		    "env SERVICE_DISCOVERY_ENV_PREFIX: the service prefix "
		    "is"));
		assert_non_null(strstr(f->why, "more than the 64 allowed"));
		assert_int_equal(
		    load(f, (const char *[]) { "--env-prefix", prefix, NULL }, NULL), DSC_EINVAL);
		assert_non_null(strstr(f->why, "flag --env-prefix: the service prefix"));
	}
	/* The longest prefix works, and a very long name after it is only skipped. */
	memset(prefix, 'P', DSI_CONFIG_PREFIX_MAX);
	prefix[DSI_CONFIG_PREFIX_MAX] = 0;
	snprintf(setting, sizeof(setting), "SERVICE_DISCOVERY_ENV_PREFIX=%s", prefix);
	char ok[400], longname[800];
	snprintf(ok, sizeof(ok), "%sMEMORY=http://m:9000", prefix);
	int n = snprintf(longname, sizeof(longname), "%s", prefix);
	memset(longname + n, 'N', 600);
	strcpy(longname + n + 600, "=http://n:1");
	const char *env[] = { setting, ok, longname, NULL };
	assert_int_equal(load(f, NULL, env), 0);
	assert_int_equal(f->c.n_boot, 1);
	assert_non_null(boot(f, "memory", 0));
	assert_true(warned(f, "skipped: service name"));
}

/* Invalid URL, refused name, refused address: one rule, warn and skip. */
static void
test_bad_service_values_are_skipped(void **state)
{
	fixture    *f     = *state;
	const char *env[] = { "SERVICE_META=http://169.254.169.254/latest",
		"SERVICE_META6=http://[::169.254.169.254]/",
		"SERVICE_DOTTED=http://169.254.169.254./",
		"SERVICE_HEX=http://0xa9.0xfe.0xa9.0xfe/", "SERVICE_BAD=not a url",
		"SERVICE_GOOD=http://127.0.0.1:9000", NULL };
	assert_int_equal(load(f, NULL, env), 0);
	assert_int_equal(f->c.n_boot, 1);
	assert_non_null(boot(f, "good", 0));
	assert_true(warned(f,
	    "SERVICE_META skipped: address 169.254.169.254 is in the denied "
	    "range 169.254.0.0/16"));
	assert_true(warned(f, "SERVICE_META6 skipped: address 169.254.169.254"));
	assert_true(warned(f, "SERVICE_DOTTED skipped: address 169.254.169.254"));
	assert_true(warned(f, "SERVICE_HEX skipped: address 169.254.169.254"));
	assert_true(warned(f, "SERVICE_BAD skipped"));
	/* The policy the flags make is the one applied. */
	assert_int_equal(
	    load(f, (const char *[]) { "--allow-endpoint", "169.254.169.254/32", NULL }, env), 0);
	assert_non_null(boot(f, "meta", 0));
	assert_int_equal(
	    load(f, (const char *[]) { "--deny-endpoint", "127.0.0.0/8", NULL }, env), 0);
	assert_null(boot(f, "good", 0));
}

static void
test_strict_config(void **state)
{
	fixture *f = *state;
	char     unknown[128], clean[128]; /* file() reuses its buffer */
	snprintf(unknown, sizeof(unknown), "%s",
	    file(f, "u.yaml", "health_check:\n  rise: 3\ncolour: blue\n"));
	snprintf(clean, sizeof(clean), "%s", file(f, "c.yaml", "health_check:\n  rise: 3\n"));
	const char *bad_var[]  = { "SERVICE_DISCOVERY_HEALTH_CHECK_RIZE=3", NULL };
	const char *bad_svc[]  = { "SERVICE_META=http://169.254.169.254/", NULL };
	const char *bad_url[]  = { "SERVICE_NAME=billing", NULL };
	const char *strict_env = "SERVICE_DISCOVERY_STRICT_CONFIG=true";

	/* Default: warnings. */
	assert_int_equal(load(f, (const char *[]) { "--config", unknown, NULL }, bad_var), 0);
	assert_false(f->c.options.strict_config);
	assert_true(warned(f, "u.yaml:3: unknown key \"colour\""));
	assert_true(warned(f, "unknown setting variable SERVICE_DISCOVERY_HEALTH_CHECK_RIZE"));

	/* Each kind stops loading under --strict-config, naming it. */
	assert_int_equal(
	    load(f, (const char *[]) { "--config", unknown, "--strict-config", NULL }, NULL),
	    DSC_EINVAL);
	assert_non_null(strstr(f->why, "flag --strict-config: strict_config refuses"));
	assert_non_null(strstr(f->why, "u.yaml:3: unknown key \"colour\""));
	assert_int_equal(
	    load(f, (const char *[]) { "--strict-config", NULL }, bad_var), DSC_EINVAL);
	assert_non_null(strstr(f->why, "SERVICE_DISCOVERY_HEALTH_CHECK_RIZE"));
	assert_int_equal(
	    load(f, (const char *[]) { "--strict-config", NULL }, bad_svc), DSC_EINVAL);
	assert_non_null(strstr(f->why, "SERVICE_META skipped: address 169.254.169.254"));
	assert_int_equal(
	    load(f, (const char *[]) { "--strict-config", NULL }, bad_url), DSC_EINVAL);
	assert_non_null(strstr(f->why, "SERVICE_NAME"));

	/* From the environment and from the file itself, too. */
	const char *env[] = { strict_env, NULL };
	assert_int_equal(load(f, (const char *[]) { "--config", unknown, NULL }, env), DSC_EINVAL);
	assert_non_null(strstr(f->why, "env SERVICE_DISCOVERY_STRICT_CONFIG: strict_config"));
	const char *self = file(f, "s.yaml", "strict_config: true\ncolour: blue\n");
	assert_int_equal(load(f, (const char *[]) { "--config", self, NULL }, NULL), DSC_EINVAL);
	assert_non_null(strstr(f->why, "s.yaml:2: unknown key \"colour\""));
	/* A clean configuration loads under it. */
	assert_int_equal(load(f, (const char *[]) { "--config", clean, NULL }, env), 0);
	assert_true(f->c.options.strict_config);
	assert_int_equal(f->c.n_warnings, 0);
}

/* The first DSI_CONFIG_MAX_WARNINGS are kept, then one line counts the rest. */
static void
test_warnings_capped(void **state)
{
	fixture *f = *state;
	char     vars[100][64];
	char    *env[101];
	for (int i = 0; i < 100; i++) {
		snprintf(vars[i], sizeof(vars[i]), "SERVICE_DISCOVERY_BOGUS%d=1", i);
		env[i] = vars[i];
	}
	env[100] = NULL;
	char text[64 * 100], *p = text;
	for (int i = 0; i < 50; i++) {
		p += sprintf(p, "key%d: 1\n", i);
	}
	const char *path = file(f, "w.yaml", text);
	assert_int_equal(
	    load(f, (const char *[]) { "--config", path, NULL }, (const char **) env), 0);
	assert_int_equal(f->c.n_warnings, DSI_CONFIG_MAX_WARNINGS + 1);
	assert_non_null(strstr(f->c.warnings[0], "w.yaml:1: unknown key \"key0\""));
	assert_string_equal(f->c.warnings[DSI_CONFIG_MAX_WARNINGS],
	    "... and 130 more configuration warnings not shown");
}

/* An environment entry without "=" is no variable (the fuzzer's envp can hold one). */
static void
test_endpoint_schemes(void **state)
{
	fixture *f = *state;
	assert_int_equal(load(f, NULL, NULL), 0);
	assert_int_equal(f->c.options.endpoint_schemes, DSI_SCHEMES_ANY); /* as before */

	const char *prod[] = { "ENVIRONMENT=production", "SERVICE_DISCOVERY_API_KEY=s3cret", NULL };
	assert_int_equal(load(f, NULL, prod), 0);
	assert_int_equal(f->c.options.endpoint_schemes, DSI_SCHEME_HTTPS | DSI_SCHEMES_PRODUCTION);

	const char *yaml = file(f, "s.yaml",
	    "endpoint_schemes: [https, tcp]\nservices:\n  db: tcp://db.internal:5432\n");
	assert_int_equal(load(f, (const char *[]) { "--config", yaml, NULL }, prod), 0);
	assert_int_equal(f->c.options.endpoint_schemes, DSI_SCHEME_HTTPS | DSI_SCHEME_TCP);
	assert_int_equal(f->c.n_boot, 1);

	/* The environment replaces the file's list; a flag replaces the environment's. */
	const char *prod_env[] = { "ENVIRONMENT=production", "SERVICE_DISCOVERY_API_KEY=s3cret",
		"SERVICE_DISCOVERY_ENDPOINT_SCHEMES=https", NULL };
	assert_int_equal(
	    load(f, (const char *[]) { "--config", yaml, NULL }, prod_env), DSC_EINVAL);
	assert_non_null(strstr(f->why, "service db: this server accepts only https:// endpoints"));
	assert_int_equal(
	    load(f, (const char *[]) { "--config", yaml, "--endpoint-schemes", "tcp, https", NULL },
	        prod_env),
	    0);
	assert_int_equal(f->c.options.endpoint_schemes, DSI_SCHEME_HTTPS | DSI_SCHEME_TCP);

	/* Every profile: development limited to https refuses an http:// service. */
	const char *dev[] = { "SERVICE_A=http://a:1", NULL };
	assert_int_equal(
	    load(f, (const char *[]) { "--endpoint-schemes", "https", NULL }, dev), DSC_EINVAL);
	assert_non_null(strstr(f->why, "env SERVICE_A"));
	assert_non_null(strstr(f->why, "--endpoint-schemes"));
	assert_int_equal(
	    load(f, (const char *[]) { "--endpoint-schemes", "ftp", NULL }, NULL), DSC_EINVAL);
	assert_non_null(strstr(f->why, "flag --endpoint-schemes"));

	char  buf[8192];
	FILE *out = fmemopen(buf, sizeof(buf), "w");
	assert_int_equal(load(f, NULL, prod), 0);
	dsi_config_print(&f->c, out);
	fclose(out);
	assert_non_null(strstr(buf, "https                          profile"));
}

static void
test_check_headers(void **state)
{
	fixture *f = *state;
	char     auth[128], yaml_text[512]; /* file() reuses its buffer */
	snprintf(auth, sizeof(auth), "%s", file(f, "auth", "Bearer from-file\n"));
	chmod(auth, 0600);
	snprintf(yaml_text, sizeof(yaml_text),
	    "health_check:\n  headers:\n    Host: api.internal\n    Accept: \"a, b\"\n"
	    "  header_files:\n    Authorization: %s\n",
	    auth);
	const char *yaml = file(f, "h.yaml", yaml_text);
	assert_int_equal(load(f, (const char *[]) { "--config", yaml, NULL }, NULL), 0);
	assert_int_equal(f->c.options.n_check_header, 2);
	assert_string_equal(f->c.options.check_header[0], "Host: api.internal");
	assert_string_equal(f->c.options.check_header[1], "Accept: a, b"); /* not split */
	assert_int_equal(f->c.options.n_check_header_file, 1);

	/* Environment items are lines; its list replaces the file's. */
	const char *env[]
	    = { "SERVICE_DISCOVERY_HEALTH_CHECK_HEADERS=X-A: 1, 2\nX-B: hidden-value", NULL };
	assert_int_equal(
	    load(f, (const char *[]) { "--config", yaml, "--print-config", NULL }, env), 0);
	assert_int_equal(f->c.options.n_check_header, 2);
	assert_string_equal(f->c.options.check_header[0], "X-A: 1, 2");
	char  buf[8192];
	FILE *out = fmemopen(buf, sizeof(buf), "w");
	dsi_config_print(&f->c, out);
	fclose(out);
	assert_non_null(strstr(buf, "X-A: (set),X-B: (set)"));
	assert_null(strstr(buf, "hidden-value"));
	assert_null(strstr(buf, "from-file"));

	/* Bad items name the header, never the value; files keep the token file's rule. */
	assert_int_equal(
	    load(f, (const char *[]) { "--check-header", "Bad Name: hidden-value", NULL }, NULL),
	    DSC_EINVAL);
	assert_non_null(strstr(f->why, "flag --check-header"));
	assert_null(strstr(f->why, "hidden-value"));
	chmod(auth, 0644);
	assert_int_equal(load(f, (const char *[]) { "--config", yaml, NULL }, NULL), DSC_EINVAL);
	assert_non_null(strstr(f->why, "readable by group or others"));
	assert_null(strstr(f->why, "from-file"));
	const char *bad = file(f, "b.yaml", "health_check:\n  headers: [1, 2]\n");
	assert_int_equal(load(f, (const char *[]) { "--config", bad, NULL }, NULL), DSC_EINVAL);
}

static void
test_entry_without_value(void **state)
{
	fixture    *f     = *state;
	const char *env[] = { "SERVICE_DISCOVERY_LISTEN", "SERVICE_MEMORY", NULL };
	assert_int_equal(load(f, NULL, env), 0);
	assert_int_equal(f->c.n_boot, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_original_file_loads_as_is, setup, teardown),
		cmocka_unit_test_setup_teardown(test_extended_file, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_precedence_flags_env_file_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_data_setting, setup, teardown),
		cmocka_unit_test_setup_teardown(test_service_variables, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prefix_change, setup, teardown),
		cmocka_unit_test_setup_teardown(test_profiles, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_environment_replaces_file_instances, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors_name_file_and_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flags, setup, teardown),
		cmocka_unit_test_setup_teardown(test_print_config_shows_origins, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tls_settings, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cluster_tls_settings, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_prefix, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_bad_service_values_are_skipped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_strict_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_warnings_capped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_entry_without_value, setup, teardown),
		cmocka_unit_test_setup_teardown(test_endpoint_schemes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_headers, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
