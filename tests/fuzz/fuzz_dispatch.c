/*
 * libFuzzer target: hostile request bytes through decoding, validation
 * (discoveryd's default endpoint policy included) and dispatch into a real
 * in-process registry, each reply checked against the contract in README.md.
 * Built and run by scripts/fuzz.sh.
 *
 * An input is one of two things:
 *   - a Request exactly as a client would send it (the common case); or
 *   - SEQ_MAGIC, a flags byte, then Requests separated by SEP, handled in
 *     order against one registry, so register -> resolve -> heartbeat ->
 *     deregister paths are reachable. SEQ_MAGIC (field 10 with wire type
 *     3, a group) never starts a decodable Request, so no single request is
 *     lost to this mode.
 *
 * Every input starts from an empty registry, so a saved crash reproduces
 * from its file alone (tests/fuzz/regressions/). A check that fails aborts,
 * which libFuzzer reports as a crash and saves.
 */
#define _GNU_SOURCE /* memmem */
#include <curl/curl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/codec.h"
#include "common/status.h"
#include "server/dispatch.h"
#include "server/endpoint.h"
#include "server/netpolicy.h"
#include "server/validate.h"
#include "server/wirescan.h"
#include "common/timeutil.h"

#define SEQ_MAGIC 'S'
#define SEP       "\xff\xfe\xfd\xfc" /* never valid UTF-8, so never inside a valid string */
#define SEP_LEN   4
#define SEQ_MAX   64 /* requests per input; keeps each run short */

/* Sequence flags (the byte after SEQ_MAGIC). */
enum {
	FLAG_HTTPS_ONLY = 1u << 0, /* the production profile */
	FLAG_HEALTH     = 1u << 1, /* play the health checker after each Register */
	FLAG_TOKEN      = 1u << 2, /* writes need FUZZ_TOKEN */
	FLAG_AUTH_READS = 1u << 3, /* reads need it too */
};

#define FUZZ_TOKEN "fuzz-token"

typedef Discovery__V1__Request  Request;
typedef Discovery__V1__Response Response;

/* Small limits keep memory bounded and make RESOURCE_EXHAUSTED reachable. */
static const dsi_registry_limits fuzz_limits = {
	.max_instances             = 32,
	.max_instances_per_service = 8,
	.max_metadata_entries      = 8,
	.max_metadata_bytes        = 256,
};

/* Where log lines go: formatted for real, then discarded. */
static dsi_log fuzz_log = { .level = DSI_LOG_DEBUG, .out = NULL };

/* The endpoint policy discoveryd runs with when given no --allow/--deny-endpoint. */
static dsi_netpolicy fuzz_policy;

/* One input's state: its registry and what earlier replies promised. */
typedef struct run {
	dsi_dispatch d;
	uint64_t     observed;  /* revision of the last change the observer saw */
	uint64_t     published; /* revision when after_write was last called */
	unsigned     flags;
	unsigned     index; /* of the request within the input */
} run;

#define CHECK(cond, ...)                                                             \
	do {                                                                         \
		if (!(cond)) {                                                       \
			fprintf(stderr, "fuzz_dispatch: check failed: %s: ", #cond); \
			fprintf(stderr, __VA_ARGS__);                                \
			fputc('\n', stderr);                                         \
			abort();                                                     \
		}                                                                    \
	} while (0)

/* The publish hook: what it sees is what the server would publish. */
static void
after_write(void *arg)
{
	run *r       = arg;
	r->published = dsi_registry_revision(r->d.registry);
}

/*
 * The registry's observer, standing in for the event publisher: every
 * change is reported, one revision after the one before, with its instance.
 */
static void
on_change(void *arg, dsi_change *ch)
{
	run *r = arg;
	CHECK(ch->revision == r->observed + 1, "change %llu after change %llu",
	    (unsigned long long) ch->revision, (unsigned long long) r->observed);
	r->observed = ch->revision;
	CHECK(ch->instance != NULL, "change %llu without its instance",
	    (unsigned long long) ch->revision);
	CHECK(strcmp(ch->service, ch->instance->service) == 0, "change for %s carries %s",
	    ch->service, ch->instance->service);
	free(ch->instance);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void) argc;
	(void) argv;
	/* Endpoint validation uses curl_url, as in discoveryd. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		abort();
	}
	if ((fuzz_log.out = fopen("/dev/null", "w")) == NULL) {
		abort();
	}
	dsi_netpolicy_init(&fuzz_policy);
	return 0;
}

static bool
status_in_contract(const run *r, Discovery__V1__StatusCode st)
{
	switch (st) {
	case DISCOVERY__V1__STATUS_CODE__STATUS_PERMISSION_DENIED:
	case DISCOVERY__V1__STATUS_CODE__STATUS_UNAUTHENTICATED:
		return r->d.token != NULL;
	case DISCOVERY__V1__STATUS_CODE__STATUS_OK:
	case DISCOVERY__V1__STATUS_CODE__STATUS_INVALID_ARGUMENT:
	case DISCOVERY__V1__STATUS_CODE__STATUS_NOT_FOUND:
	case DISCOVERY__V1__STATUS_CODE__STATUS_RESOURCE_EXHAUSTED:
	case DISCOVERY__V1__STATUS_CODE__STATUS_FAILED_PRECONDITION:
	case DISCOVERY__V1__STATUS_CODE__STATUS_UNIMPLEMENTED:
	case DISCOVERY__V1__STATUS_CODE__STATUS_UNAVAILABLE:
		return true;
	default:
		/*
		 * INTERNAL means out of memory, which cannot happen here (ASan
		 * aborts instead of returning NULL), so it is a wrongly mapped
		 * error.
		 */
		return false;
	}
}

/* Metadata comes back sorted by key, each key once. */
static void
check_instance(const Discovery__V1__Instance *in)
{
	CHECK(in != NULL, "an OK reply without its instance");
	CHECK(in->n_metadata <= fuzz_limits.max_metadata_entries, "%zu metadata entries",
	    in->n_metadata);
	for (size_t i = 1; i < in->n_metadata; i++) {
		CHECK(strcmp(in->metadata[i - 1]->key, in->metadata[i]->key) < 0,
		    "metadata not sorted or not unique at %zu", i);
	}
}

/* What an OK reply must say about the request it answers. */
static void
check_ok(run *r, const Request *req, const Response *resp)
{
	switch (resp->result_case) {
	case DISCOVERY__V1__RESPONSE__RESULT_REGISTER: {
		const Discovery__V1__Instance *in = resp->register_->instance;
		char                           host[DSI_ENDPOINT_MAX + 1], why[192] = "";
		check_instance(in);
		CHECK(strcmp(in->endpoint, req->register_->endpoint) == 0,
		    "the endpoint is not stored exactly as sent");
		CHECK(dsi_endpoint_host(in->endpoint, host, sizeof(host)) != 0
		        || dsi_netpolicy_permits_host(&fuzz_policy, host, why, sizeof(why)),
		    "registered %s, which the endpoint policy refuses: %s", in->endpoint, why);
		if (r->flags & FLAG_HEALTH) {
			/* The checker's verdicts, deterministic per position. */
			static const dsc_health verdict[3]
			    = { DSC_HEALTH_HEALTHY, DSC_HEALTH_UNHEALTHY, DSC_HEALTH_UNKNOWN };
			dsc_health h = verdict[r->index % 3];
			if (h != DSC_HEALTH_UNKNOWN) {
				int rv = dsi_registry_set_health(r->d.registry, in->service,
				    in->endpoint, h, dsi_wall_ms(),
				    h == DSC_HEALTH_UNHEALTHY ? "HTTP 500" : NULL, "fuzz", NULL);
				CHECK(rv == 0, "set_health on a registered instance: %d", rv);
			}
		}
		break;
	}
	case DISCOVERY__V1__RESPONSE__RESULT_RESOLVE:
		check_instance(resp->resolve->instance);
		CHECK(!req->resolve->healthy_only
		        || resp->resolve->instance->health
		            == DISCOVERY__V1__HEALTH_STATE__HEALTH_HEALTHY,
		    "healthy_only resolved an instance that is not healthy");
		break;
	case DISCOVERY__V1__RESPONSE__RESULT_IS_HEALTHY:
		CHECK(resp->is_healthy->healthy
		        == (resp->is_healthy->state == DISCOVERY__V1__HEALTH_STATE__HEALTH_HEALTHY),
		    "healthy disagrees with state");
		break;
	case DISCOVERY__V1__RESPONSE__RESULT_GET_ALL: {
		const Discovery__V1__GetAllResponse *all = resp->get_all;
		CHECK(all->n_instances <= fuzz_limits.max_instances, "%zu instances",
		    all->n_instances);
		for (size_t i = 0; i < all->n_instances; i++) {
			check_instance(all->instances[i]);
			if (i == 0) {
				continue;
			}
			const Discovery__V1__Instance *a = all->instances[i - 1],
			                              *b = all->instances[i];
			int c                            = strcmp(a->service, b->service);
			CHECK(c < 0 || (c == 0 && strcmp(a->endpoint, b->endpoint) < 0),
			    "GetAll not sorted by (service, endpoint) at %zu", i);
		}
		break;
	}
	case DISCOVERY__V1__RESPONSE__RESULT_HEARTBEAT:
		check_instance(resp->heartbeat->instance);
		CHECK(resp->heartbeat->instance->health
		        == DISCOVERY__V1__HEALTH_STATE__HEALTH_HEALTHY,
		    "a heartbeat left the instance not healthy");
		CHECK(resp->heartbeat->instance->ttl_ms != 0, "a heartbeat for a non-TTL instance");
		break;
	default:
		break;
	}
}

/* Whether the configured token guards this call (README: Security). */
static bool
needs_token(const run *r, const Request *req)
{
	bool write = req->call_case == DISCOVERY__V1__REQUEST__CALL_REGISTER
	    || req->call_case == DISCOVERY__V1__REQUEST__CALL_DEREGISTER
	    || req->call_case == DISCOVERY__V1__REQUEST__CALL_HEARTBEAT;
	return r->d.token != NULL && (write || r->d.auth_reads);
}

/* Sends one request through dispatch and checks the reply. */
static void
one_request(run *r, const uint8_t *buf, size_t len)
{
	nng_msg  *reply  = NULL;
	Response *resp   = NULL;
	Request  *req    = NULL;
	uint64_t  before = r->observed;

	int rv = dsi_dispatch_handle(&r->d, buf, len, &reply);
	CHECK(rv == 0 && reply != NULL, "no Response for %zu bytes (rv %d)", len, rv);
	/* A call that changed the registry publishes the change before it replies. */
	CHECK(r->observed == before || r->published == r->observed,
	    "changes up to %llu, but after_write saw %llu", (unsigned long long) r->observed,
	    (unsigned long long) r->published);
	rv = dsi_unpack(&discovery__v1__response__descriptor, nng_msg_body(reply),
	    nng_msg_len(reply), (ProtobufCMessage **) &resp);
	CHECK(rv == 0, "the reply is not a Response (%zu bytes)", nng_msg_len(reply));
	nng_msg_free(reply);

	CHECK(
	    status_in_contract(r, resp->status), "status %d is not in the contract", resp->status);
	/* The wire scan is never stricter than protobuf-c, and screens as dispatch does. */
	dsi_wirescan scan;
	char         why[320];
	int          screened = 0;
	bool         decodes  = len > 0
	    && dsi_unpack(&discovery__v1__request__descriptor, buf, len, (ProtobufCMessage **) &req)
	        == 0;
	memset(&scan, 0, sizeof(scan));
	if (len > 0) {
		CHECK(dsi_wirescan_run(&discovery__v1__request__descriptor, buf, len, &scan) == 0
		        || !decodes,
		    "the wire scan refused %zu bytes protobuf-c decodes", len);
		screened
		    = dsi_validate_request_bytes(&fuzz_limits, buf, len, &scan, why, sizeof(why));
	}
	bool token_nul = (scan.nul_top & 2u) != 0; /* field 1, the token */
	CHECK(resp->revision == r->observed, "reply revision %llu after %llu changes",
	    (unsigned long long) resp->revision, (unsigned long long) r->observed);

	/*
	 * The screen runs before decoding, so it answers first: bytes over the
	 * decode bounds get its status even when protobuf-c would refuse them
	 * later for another reason. Then our own decode tells the answer.
	 */
	if (screened != 0) {
		/* Refused before decoding, so before authentication too. */
		if (!decodes) {
			req = NULL;
		}
		CHECK((int) resp->status == (int) dsi_status_from_err(screened)
		        && strcmp(resp->message, why) == 0,
		    "a request over the decode bounds got status %d (%s), not \"%s\"", resp->status,
		    resp->message, why);
	} else if (!decodes) {
		req = NULL;
		CHECK(resp->status == DISCOVERY__V1__STATUS_CODE__STATUS_INVALID_ARGUMENT,
		    "undecodable bytes got status %d", resp->status);
	} else if (req->call_case == DISCOVERY__V1__REQUEST__CALL__NOT_SET) {
		CHECK(resp->status == DISCOVERY__V1__STATUS_CODE__STATUS_INVALID_ARGUMENT
		        || resp->status == DISCOVERY__V1__STATUS_CODE__STATUS_UNIMPLEMENTED,
		    "a request with no known call got status %d", resp->status);
	} else if (needs_token(r, req) && token_nul) {
		CHECK(resp->status == DISCOVERY__V1__STATUS_CODE__STATUS_PERMISSION_DENIED,
		    "a token holding a NUL got status %d", resp->status);
	} else if (needs_token(r, req) && req->auth_token[0] == 0) {
		/* Authentication comes before any validation. */
		CHECK(resp->status == DISCOVERY__V1__STATUS_CODE__STATUS_UNAUTHENTICATED,
		    "a call without its token got status %d", resp->status);
	} else if (needs_token(r, req) && strcmp(req->auth_token, r->d.token) != 0) {
		CHECK(resp->status == DISCOVERY__V1__STATUS_CODE__STATUS_PERMISSION_DENIED,
		    "a call with a wrong token got status %d", resp->status);
	} else if (scan.nul_top != 0) {
		CHECK(resp->status == DISCOVERY__V1__STATUS_CODE__STATUS_INVALID_ARGUMENT,
		    "a string holding a NUL (%s) got status %d", scan.nul_path, resp->status);
	} else {
		CHECK(resp->status != DISCOVERY__V1__STATUS_CODE__STATUS_UNIMPLEMENTED
		        && resp->status != DISCOVERY__V1__STATUS_CODE__STATUS_UNAUTHENTICATED
		        && resp->status != DISCOVERY__V1__STATUS_CODE__STATUS_PERMISSION_DENIED,
		    "an authorized known call got status %d", resp->status);
	}
	if (resp->status == DISCOVERY__V1__STATUS_CODE__STATUS_OK) {
		CHECK(req != NULL, "OK for bytes that do not decode");
		CHECK(scan.nul_top == 0, "OK for a string holding a NUL (%s)", scan.nul_path);
		CHECK(req->call_case != DISCOVERY__V1__REQUEST__CALL_REGISTER
		        || req->register_->n_metadata <= fuzz_limits.max_metadata_entries,
		    "OK for %zu metadata entries as sent", req->register_->n_metadata);
		CHECK((int) resp->result_case == (int) req->call_case,
		    "OK with result %d for call %d", resp->result_case, req->call_case);
		check_ok(r, req, resp);
	} else {
		CHECK(resp->message[0] != 0, "status %d without a message", resp->status);
		CHECK(resp->result_case == DISCOVERY__V1__RESPONSE__RESULT__NOT_SET,
		    "status %d with a result", resp->status);
	}

	if (req != NULL) {
		protobuf_c_message_free_unpacked(&req->base, NULL);
	}
	protobuf_c_message_free_unpacked(&resp->base, NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	dsi_registry *reg = NULL;
	run           r;

	memset(&r, 0, sizeof(r));
	CHECK(dsi_registry_create(&reg, &fuzz_limits) == 0, "dsi_registry_create");
	dsi_registry_set_observer(reg, on_change, &r);
	r.d.registry        = reg;
	r.d.log             = &fuzz_log;
	r.d.policy          = &fuzz_policy;
	r.d.limits          = &fuzz_limits;
	r.d.after_write     = after_write;
	r.d.after_write_arg = &r;

	if (size < 2 || data[0] != SEQ_MAGIC) {
		one_request(&r, data, size);
	} else {
		r.flags            = data[1];
		r.d.schemes        = (r.flags & FLAG_HTTPS_ONLY) != 0 ? DSI_SCHEME_HTTPS : 0;
		r.d.token          = (r.flags & FLAG_TOKEN) ? FUZZ_TOKEN : NULL;
		r.d.auth_reads     = (r.flags & FLAG_AUTH_READS) != 0;
		const uint8_t *p   = data + 2;
		const uint8_t *end = data + size;
		for (r.index = 0; r.index < SEQ_MAX; r.index++) {
			const uint8_t *sep = memmem(p, (size_t) (end - p), SEP, SEP_LEN);
			one_request(&r, p, (size_t) ((sep != NULL ? sep : end) - p));
			if (sep == NULL) {
				break;
			}
			p = sep + SEP_LEN;
		}
	}
	dsi_registry_destroy(reg);
	return 0;
}
