/*
 * libFuzzer target: hostile configuration through discoveryd's whole
 * loader (dsi_config_load): the YAML file, read from a real file as
 * --config names it, and the environment (SERVICE_DISCOVERY_* settings,
 * PREFIX<NAME>=URL services, ENVIRONMENT). Built and run by scripts/fuzz.sh.
 *
 * An input is the file's bytes, optionally followed by ENV_MARK and
 * environment entries, one a line ("NAME=value"; a line without "=" is kept
 * as it is, which a real environ never holds but a caller's envp might).
 * Every input loads from scratch, so a saved crash reproduces from its file
 * alone (tests/fuzz/regressions-config/). A check that fails aborts.
 */
#define _GNU_SOURCE /* memmem */
#include <curl/curl.h>
#include <discovery/discovery.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/name.h"
#include "server/config.h"
#include "server/endpoint.h"
#include "server/netpolicy.h"

#define ENV_MARK     "\n%%env\n"
#define ENV_MARK_LEN 7
#define ENV_MAX      64 /* entries per input */

#define CHECK(cond, ...)                                                           \
	do {                                                                       \
		if (!(cond)) {                                                     \
			fprintf(stderr, "fuzz_config: check failed: %s: ", #cond); \
			fprintf(stderr, __VA_ARGS__);                              \
			fputc('\n', stderr);                                       \
			abort();                                                   \
		}                                                                  \
	} while (0)

/* The one file every input is written to, and where --print-config goes. */
static char  fuzz_path[64];
static int   fuzz_fd = -1;
static FILE *fuzz_null;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
remove_file(void)
{
	unlink(fuzz_path);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void) argc;
	(void) argv;
	/* Endpoint validation uses curl_url, as in discoveryd. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		abort();
	}
	const char *tmp = getenv("TMPDIR");
	snprintf(fuzz_path, sizeof(fuzz_path), "%s/fuzz-config-XXXXXX.yaml",
	    tmp != NULL && strlen(tmp) < 32 ? tmp : "/tmp");
	if ((fuzz_fd = mkstemps(fuzz_path, 5)) < 0
	    || (fuzz_null = fopen("/dev/null", "w")) == NULL) {
		abort();
	}
	atexit(remove_file);
	return 0;
}

/* What a loaded configuration must hold, whatever the input was. */
static void
check_loaded(const dsi_config *c)
{
	dsi_netpolicy p;
	char          why[512], name[DSI_NAME_MAX + 1], host[DSI_ENDPOINT_MAX + 1];

	CHECK(c->prefix != NULL && strlen(c->prefix) <= DSI_CONFIG_PREFIX_MAX, "prefix %s",
	    c->prefix ? c->prefix : "(null)");
	CHECK(!c->options.strict_config || c->n_warnings == 0, "strict, yet %zu warnings",
	    c->n_warnings);
	dsi_netpolicy_init(&p);
	for (size_t i = 0; i < c->options.n_allow_endpoint; i++) {
		CHECK(dsi_netpolicy_add(&p, true, c->options.allow_endpoint[i], why, sizeof(why))
		        == 0,
		    "allow %s accepted, then refused: %s", c->options.allow_endpoint[i], why);
	}
	for (size_t i = 0; i < c->options.n_deny_endpoint; i++) {
		CHECK(dsi_netpolicy_add(&p, false, c->options.deny_endpoint[i], why, sizeof(why))
		        == 0,
		    "deny %s accepted, then refused: %s", c->options.deny_endpoint[i], why);
	}
	for (size_t i = 0; i < c->n_boot; i++) {
		const dsi_boot_instance *b = &c->boot[i];
		CHECK(b->service != NULL && b->endpoint != NULL, "instance %zu incomplete", i);
		CHECK(dsi_name_normalize(b->service, name, why, sizeof(why)) == 0
		        && strcmp(name, b->service) == 0,
		    "service \"%s\" is not a normalized name", b->service);
		if (strncmp(b->origin, "env ", 4) == 0) {
			/* The environment's services were judged at load: valid and permitted. */
			CHECK(dsi_endpoint_validate(b->endpoint, why, sizeof(why)) == 0,
			    "%s: endpoint %s: %s", b->origin, b->endpoint, why);
			CHECK(dsi_endpoint_host(b->endpoint, host, sizeof(host)) != 0
			        || dsi_netpolicy_permits_host(&p, host, why, sizeof(why)),
			    "%s: endpoint %s: %s", b->origin, b->endpoint, why);
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *) data;
	const char *mark = memmem(text, size, ENV_MARK, ENV_MARK_LEN);
	size_t      ylen = mark != NULL ? (size_t) (mark - text) : size;
	char       *envs = NULL;
	char       *env[ENV_MAX + 1];
	size_t      n_env  = 0;
	char       *argv[] = { "discoveryd", "--config", fuzz_path, "--print-config", NULL };
	dsi_config  c;
	char        why[768] = "";

	if (ftruncate(fuzz_fd, 0) != 0 || pwrite(fuzz_fd, data, ylen, 0) != (ssize_t) ylen) {
		abort();
	}
	if (mark != NULL) {
		size_t elen = size - ylen - ENV_MARK_LEN;
		if ((envs = malloc(elen + 1)) == NULL) {
			abort();
		}
		memcpy(envs, mark + ENV_MARK_LEN, elen);
		envs[elen] = 0;
		for (char *line = envs; n_env < ENV_MAX && *line != 0;) {
			char *nl = strchr(line, '\n');
			if (nl != NULL) {
				*nl = 0;
			}
			env[n_env++] = line;
			if (nl == NULL) {
				break;
			}
			line = nl + 1;
		}
	}
	env[n_env] = NULL;

	int rv = dsi_config_load(&c, 4, argv, env, fuzz_null, why, sizeof(why));
	CHECK(rv == 0 || rv == DSC_EINVAL, "dsi_config_load returned %d", rv);
	CHECK(rv == 0 || why[0] != 0, "refused without a reason");
	CHECK(c.n_warnings <= DSI_CONFIG_MAX_WARNINGS + 1, "%zu warnings kept", c.n_warnings);
	if (rv == 0) {
		check_loaded(&c);
		dsi_config_print(&c, fuzz_null);
	}
	dsi_config_free(&c);
	free(envs);
	return 0;
}
