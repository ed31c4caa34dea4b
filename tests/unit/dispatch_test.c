/* Dispatch: bytes in, a Response out, for good and hostile requests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <discovery/version.h>

#include "common/codec.h"
#include "server/dispatch.h"
#include "support/testutil.h"

typedef Discovery__V1__Response Response;
typedef Discovery__V1__Request  Request;

typedef struct fixture {
	dsi_registry *reg;
	dsi_dispatch  d;
	dsi_log       log;
} fixture;

static int
setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	if (f == NULL || dsi_registry_create(&f->reg, NULL) != 0) {
		return -1;
	}
	f->log        = (dsi_log) { .level = DSI_LOG_ERROR, .out = NULL }; /* quiet */
	f->d.registry = f->reg;
	f->d.log      = &f->log;
	*state        = f;
	return 0;
}

static int
teardown(void **state)
{
	fixture *f = *state;
	dsi_registry_destroy(f->reg);
	free(f);
	return 0;
}

static Response *
handle_bytes(fixture *f, const void *buf, size_t len)
{
	nng_msg  *reply = NULL;
	Response *r     = NULL;
	assert_int_equal(dsi_dispatch_handle(&f->d, buf, len, &reply), 0);
	assert_int_equal(dsi_unpack(&discovery__v1__response__descriptor, nng_msg_body(reply),
	                     nng_msg_len(reply), (ProtobufCMessage **) &r),
	    0);
	nng_msg_free(reply);
	return r;
}

static Response *
handle(fixture *f, Request *req)
{
	nng_msg *msg;
	assert_int_equal(dsi_pack(&req->base, &msg), 0);
	Response *r = handle_bytes(f, nng_msg_body(msg), nng_msg_len(msg));
	nng_msg_free(msg);
	return r;
}

static void
expect(Response *r, Discovery__V1__StatusCode st, const char *fragment)
{
	if (r->status != st) {
		fail_msg("status %d, want %d (message: %s)", r->status, st, r->message);
	}
	if (fragment != NULL && strstr(r->message, fragment) == NULL) {
		fail_msg("message \"%s\" lacks \"%s\"", r->message, fragment);
	}
	protobuf_c_message_free_unpacked(&r->base, NULL);
}

/* A register request with optional extras; the strings are borrowed. */
typedef struct regspec {
	const char *service, *endpoint, *health_path;
	uint32_t    ttl_ms;
	const char *key, *value;
} regspec;

static Response *
do_register(fixture *f, regspec s)
{
	Request                                       req = DISCOVERY__V1__REQUEST__INIT;
	Discovery__V1__RegisterRequest                rr  = DISCOVERY__V1__REGISTER_REQUEST__INIT;
	Discovery__V1__RegisterRequest__MetadataEntry e
	    = DISCOVERY__V1__REGISTER_REQUEST__METADATA_ENTRY__INIT;
	Discovery__V1__RegisterRequest__MetadataEntry *ep = &e;
	rr.service                                        = (char *) s.service;
	rr.endpoint                                       = (char *) s.endpoint;
	if (s.health_path != NULL) {
		rr.health_path = (char *) s.health_path;
	}
	rr.ttl_ms = s.ttl_ms;
	if (s.key != NULL) {
		e.key         = (char *) s.key;
		e.value       = (char *) s.value;
		rr.metadata   = &ep;
		rr.n_metadata = 1;
	}
	req.call_case = DISCOVERY__V1__REQUEST__CALL_REGISTER;
	req.register_ = &rr;
	return handle(f, &req);
}

static void
test_malformed_bytes(void **state)
{
	fixture *f = *state;
	expect(
	    handle_bytes(f, "", 0), DISCOVERY__V1__STATUS_CODE__STATUS_INVALID_ARGUMENT, "empty");
	expect(handle_bytes(f, "\xff\xfe\xfd", 3),
	    DISCOVERY__V1__STATUS_CODE__STATUS_INVALID_ARGUMENT, "not a discovery.v1.Request");
	/* A register field whose length runs past the end. */
	expect(handle_bytes(f, "\x52\x40\x0a\x02", 4),
	    DISCOVERY__V1__STATUS_CODE__STATUS_INVALID_ARGUMENT, NULL);
	/* Only an auth token: no call. */
	expect(handle_bytes(f, "\x0a\x01t", 3), DISCOVERY__V1__STATUS_CODE__STATUS_INVALID_ARGUMENT,
	    "no call");
	/* Field 20, a call from a newer client. */
	expect(handle_bytes(f, "\xa2\x01\x00", 3), DISCOVERY__V1__STATUS_CODE__STATUS_UNIMPLEMENTED,
	    "field 20");
	/* Every byte value alone must still get an answer. */
	for (int b = 0; b < 256; b++) {
		unsigned char one = (unsigned char) b;
		Response     *r   = handle_bytes(f, &one, 1);
		assert_true(r->status != DISCOVERY__V1__STATUS_CODE__STATUS_OK);
		protobuf_c_message_free_unpacked(&r->base, NULL);
	}
}

static void
test_every_call_shares_service_and_endpoint_numbers(void **state)
{
	/* validate_common reads fields 1 and 2 by number: the contract must hold. */
	const ProtobufCMessageDescriptor *d = &discovery__v1__request__descriptor;
	(void) state;
	for (unsigned n = 10; n <= 15; n++) {
		const ProtobufCFieldDescriptor   *f = protobuf_c_message_descriptor_get_field(d, n);
		const ProtobufCMessageDescriptor *sub = f->descriptor;
		const ProtobufCFieldDescriptor   *f1
		    = protobuf_c_message_descriptor_get_field(sub, 1);
		const ProtobufCFieldDescriptor *f2
		    = protobuf_c_message_descriptor_get_field(sub, 2);
		assert_string_equal(f1->name, "service");
		assert_int_equal(f1->type, PROTOBUF_C_TYPE_STRING);
		if (f2 != NULL && f2->type == PROTOBUF_C_TYPE_STRING) {
			assert_string_equal(f2->name, "endpoint");
		}
	}
}

static void
test_register_validation(void **state)
{
	fixture                        *f   = *state;
	const Discovery__V1__StatusCode BAD = DISCOVERY__V1__STATUS_CODE__STATUS_INVALID_ARGUMENT;

	expect(do_register(f, (regspec) { .service = "", .endpoint = "http://a:1" }), BAD, "empty");
	expect(do_register(f, (regspec) { .service = "-x", .endpoint = "http://a:1" }), BAD,
	    "start and end");
	expect(do_register(f, (regspec) { .service = "ok", .endpoint = "" }), BAD,
	    "endpoint is empty");
	expect(do_register(f, (regspec) { .service = "ok", .endpoint = "ftp://a:1" }), BAD,
	    "http://, https:// or tcp://");
	expect(do_register(f, (regspec) { .service = "ok", .endpoint = "http://u:p@a:1" }), BAD,
	    "user-info");
	expect(do_register(f,
	           (regspec) { .service = "ok", .endpoint = "http://a:1", .health_path = "/a b" }),
	    BAD, "health_path");
	expect(do_register(f,
	           (regspec) { .service = "ok", .endpoint = "http://a:1", .health_path = "/a#b" }),
	    BAD, "health_path");
	expect(
	    do_register(f,
	        (regspec) {
	            .service = "ok", .endpoint = "http://a:1", .health_path = NULL, .ttl_ms = 5 }),
	    BAD, "ttl_ms");
	expect(do_register(f,
	           (regspec) { .service = "ok",
	               .endpoint        = "http://a:1",
	               .health_path     = NULL,
	               .ttl_ms          = 0,
	               .key             = "",
	               .value           = "v" }),
	    BAD, "metadata key");
	expect(do_register(f,
	           (regspec) { .service = "ok",
	               .endpoint        = "http://a:1",
	               .health_path     = NULL,
	               .ttl_ms          = 0,
	               .key             = "a b",
	               .value           = "v" }),
	    BAD, "metadata key");
	expect(do_register(f,
	           (regspec) { .service = "ok",
	               .endpoint        = "http://a:1",
	               .health_path     = NULL,
	               .ttl_ms          = 0,
	               .key             = "k",
	               .value           = "\x01" }),
	    BAD, "metadata value");
	expect(do_register(f,
	           (regspec) { .service = "ok",
	               .endpoint        = "http://a:1",
	               .health_path     = NULL,
	               .ttl_ms          = 0,
	               .key             = "k",
	               .value           = "\xff\xfe" }),
	    BAD, "UTF-8");
	/* None of that stored anything. */
	assert_int_equal(dsi_registry_count(f->reg), 0);
	assert_int_equal(dsi_registry_revision(f->reg), 0);
}

static void
test_register_normalizes(void **state)
{
	fixture  *f = *state;
	Response *r = do_register(f,
	    (regspec) { .service = "Memory_Service",
	        .endpoint        = "http://m:9000",
	        .health_path     = "hz",
	        .ttl_ms          = 0,
	        .key             = "zone",
	        .value           = "eu" });
	assert_int_equal(r->status, DISCOVERY__V1__STATUS_CODE__STATUS_OK);
	assert_int_equal(r->result_case, DISCOVERY__V1__RESPONSE__RESULT_REGISTER);
	assert_string_equal(r->register_->instance->service, "memory-service");
	assert_string_equal(r->register_->instance->health_path, "/hz");
	assert_int_equal(r->revision, 1);
	protobuf_c_message_free_unpacked(&r->base, NULL);

	r = do_register(f, (regspec) { .service = "x", .endpoint = "http://m:9000" });
	assert_string_equal(r->register_->instance->health_path, "/health"); /* the default */
	protobuf_c_message_free_unpacked(&r->base, NULL);

	Request                       req = DISCOVERY__V1__REQUEST__INIT;
	Discovery__V1__ResolveRequest rq  = DISCOVERY__V1__RESOLVE_REQUEST__INIT;
	rq.service                        = "MEMORY_SERVICE";
	req.call_case                     = DISCOVERY__V1__REQUEST__CALL_RESOLVE;
	req.resolve                       = &rq;
	r                                 = handle(f, &req);
	assert_int_equal(r->status, DISCOVERY__V1__STATUS_CODE__STATUS_OK);
	assert_string_equal(r->resolve->instance->endpoint, "http://m:9000");
	assert_int_equal(r->revision, 2);
	protobuf_c_message_free_unpacked(&r->base, NULL);
}

static void
test_metadata_limit_is_resource_exhausted(void **state)
{
	fixture *f   = *state;
	char    *big = malloc(5000);
	memset(big, 'v', 4999);
	big[4999] = 0;
	expect(do_register(f,
	           (regspec) { .service = "ok",
	               .endpoint        = "http://a:1",
	               .health_path     = NULL,
	               .ttl_ms          = 0,
	               .key             = "k",
	               .value           = big }),
	    DISCOVERY__V1__STATUS_CODE__STATUS_RESOURCE_EXHAUSTED, "bytes");
	free(big);
}

static void
test_status_of_each_kind(void **state)
{
	fixture *f = *state;
	Request  req;

	expect(do_register(f, (regspec) { .service = "polled", .endpoint = "http://a:1" }),
	    DISCOVERY__V1__STATUS_CODE__STATUS_OK, NULL);

	Discovery__V1__IsHealthyRequest ih = DISCOVERY__V1__IS_HEALTHY_REQUEST__INIT;
	discovery__v1__request__init(&req);
	ih.service     = "nosuch";
	req.call_case  = DISCOVERY__V1__REQUEST__CALL_IS_HEALTHY;
	req.is_healthy = &ih;
	expect(handle(f, &req), DISCOVERY__V1__STATUS_CODE__STATUS_NOT_FOUND, NULL);

	Discovery__V1__HeartbeatRequest hb = DISCOVERY__V1__HEARTBEAT_REQUEST__INIT;
	discovery__v1__request__init(&req);
	hb.service    = "polled";
	hb.endpoint   = "http://a:1";
	req.call_case = DISCOVERY__V1__REQUEST__CALL_HEARTBEAT;
	req.heartbeat = &hb;
	expect(handle(f, &req), DISCOVERY__V1__STATUS_CODE__STATUS_FAILED_PRECONDITION, "ttl_ms");
	hb.endpoint = "not a url";
	expect(handle(f, &req), DISCOVERY__V1__STATUS_CODE__STATUS_INVALID_ARGUMENT, NULL);
	hb.endpoint = "";
	expect(handle(f, &req), DISCOVERY__V1__STATUS_CODE__STATUS_INVALID_ARGUMENT,
	    "endpoint is empty");

	Discovery__V1__ResolveRequest rs = DISCOVERY__V1__RESOLVE_REQUEST__INIT;
	discovery__v1__request__init(&req);
	rs.service      = "polled";
	rs.healthy_only = true;
	req.call_case   = DISCOVERY__V1__REQUEST__CALL_RESOLVE;
	req.resolve     = &rs;
	expect(
	    handle(f, &req), DISCOVERY__V1__STATUS_CODE__STATUS_UNAVAILABLE, "no healthy instance");
	rs.service = "nosuch";
	expect(handle(f, &req), DISCOVERY__V1__STATUS_CODE__STATUS_NOT_FOUND, NULL);

	Discovery__V1__GetAllRequest ga = DISCOVERY__V1__GET_ALL_REQUEST__INIT;
	discovery__v1__request__init(&req);
	ga.service    = "bad name";
	req.call_case = DISCOVERY__V1__REQUEST__CALL_GET_ALL;
	req.get_all   = &ga;
	expect(handle(f, &req), DISCOVERY__V1__STATUS_CODE__STATUS_INVALID_ARGUMENT, NULL);
	ga.service  = "";
	Response *r = handle(f, &req);
	assert_int_equal(r->status, DISCOVERY__V1__STATUS_CODE__STATUS_OK);
	assert_int_equal(r->get_all->n_instances, 1);
	assert_int_equal(r->get_all->revision, 1);
	assert_int_equal(r->revision, 1);
	protobuf_c_message_free_unpacked(&r->base, NULL);

	/* Status: no fields to validate; without server facts, the registry's state. */
	Discovery__V1__StatusRequest sr = DISCOVERY__V1__STATUS_REQUEST__INIT;
	discovery__v1__request__init(&req);
	req.call_case     = DISCOVERY__V1__REQUEST__CALL_SERVER_STATUS;
	req.server_status = &sr;
	r                 = handle(f, &req);
	assert_int_equal(r->status, DISCOVERY__V1__STATUS_CODE__STATUS_OK);
	assert_int_equal(r->result_case, DISCOVERY__V1__RESPONSE__RESULT_SERVER_STATUS);
	assert_string_equal(r->server_status->version, DSC_VERSION_STRING);
	assert_int_equal(r->server_status->instances, 1);
	assert_int_equal(r->server_status->services, 1);
	assert_int_equal(r->server_status->unknown, 1);
	assert_int_equal(r->server_status->revision, 1);
	assert_int_equal(r->revision, 1);
	assert_string_equal(r->server_status->data, ":memory:");
	protobuf_c_message_free_unpacked(&r->base, NULL);

	Discovery__V1__DeregisterRequest dr = DISCOVERY__V1__DEREGISTER_REQUEST__INIT;
	discovery__v1__request__init(&req);
	dr.service     = "polled";
	req.call_case  = DISCOVERY__V1__REQUEST__CALL_DEREGISTER;
	req.deregister = &dr;
	r              = handle(f, &req);
	assert_int_equal(r->status, DISCOVERY__V1__STATUS_CODE__STATUS_OK);
	assert_int_equal(r->deregister->removed, 1);
	assert_int_equal(r->revision, 2);
	protobuf_c_message_free_unpacked(&r->base, NULL);
}

/* Packs req, then turns every '@' on the wire into a 0 byte: protobuf-c packs C strings. */
static Response *
handle_with_nuls(fixture *f, Request *req)
{
	nng_msg *msg;
	assert_int_equal(dsi_pack(&req->base, &msg), 0);
	char  *b = nng_msg_body(msg);
	size_t n = nng_msg_len(msg);
	for (size_t i = 0; i < n; i++) {
		if (b[i] == '@') {
			b[i] = 0;
		}
	}
	Response *r = handle_bytes(f, b, n);
	nng_msg_free(msg);
	return r;
}

static void
test_nul_in_any_string_is_refused(void **state)
{
	fixture                        *f   = *state;
	const Discovery__V1__StatusCode BAD = DISCOVERY__V1__STATUS_CODE__STATUS_INVALID_ARGUMENT;
	static const struct {
		regspec     spec;
		const char *path;
	} regs[] = {
		{ { .service = "nul@evil", .endpoint = "http://a:1" }, "register.service" },
		{ { .service = "ok", .endpoint = "http://a:1@http://evil/" }, "register.endpoint" },
		{ { .service = "ok", .endpoint = "http://a:1", .health_path = "/h@x" },
		    "register.health_path" },
		{ { .service = "ok", .endpoint = "http://a:1", .key = "k@=x y", .value = "v" },
		    "register.metadata.key" },
		{ { .service = "ok", .endpoint = "http://a:1", .key = "k", .value = "v@w" },
		    "register.metadata.value" },
	};
	for (size_t i = 0; i < sizeof(regs) / sizeof(regs[0]); i++) {
		Request                        req = DISCOVERY__V1__REQUEST__INIT;
		Discovery__V1__RegisterRequest rr  = DISCOVERY__V1__REGISTER_REQUEST__INIT;
		Discovery__V1__RegisterRequest__MetadataEntry e
		    = DISCOVERY__V1__REGISTER_REQUEST__METADATA_ENTRY__INIT;
		Discovery__V1__RegisterRequest__MetadataEntry *ep = &e;
		rr.service                                        = (char *) regs[i].spec.service;
		rr.endpoint                                       = (char *) regs[i].spec.endpoint;
		if (regs[i].spec.health_path != NULL) {
			rr.health_path = (char *) regs[i].spec.health_path;
		}
		if (regs[i].spec.key != NULL) {
			e.key         = (char *) regs[i].spec.key;
			e.value       = (char *) regs[i].spec.value;
			rr.metadata   = &ep;
			rr.n_metadata = 1;
		}
		req.call_case = DISCOVERY__V1__REQUEST__CALL_REGISTER;
		req.register_ = &rr;
		Response *r   = handle_with_nuls(f, &req);
		if (strstr(r->message, regs[i].path) == NULL) {
			fail_msg("case %zu: \"%s\" does not name %s", i, r->message, regs[i].path);
		}
		expect(r, BAD, "NUL");
	}

	/* Every other call's service and endpoint. */
	Request                          req;
	Discovery__V1__ResolveRequest    rs = DISCOVERY__V1__RESOLVE_REQUEST__INIT;
	Discovery__V1__DeregisterRequest dr = DISCOVERY__V1__DEREGISTER_REQUEST__INIT;
	Discovery__V1__IsHealthyRequest  ih = DISCOVERY__V1__IS_HEALTHY_REQUEST__INIT;
	Discovery__V1__GetAllRequest     ga = DISCOVERY__V1__GET_ALL_REQUEST__INIT;
	Discovery__V1__HeartbeatRequest  hb = DISCOVERY__V1__HEARTBEAT_REQUEST__INIT;
	discovery__v1__request__init(&req);
	rs.service    = "nul@evil";
	req.call_case = DISCOVERY__V1__REQUEST__CALL_RESOLVE;
	req.resolve   = &rs;
	expect(handle_with_nuls(f, &req), BAD, "resolve.service holds a NUL");
	dr.service     = "ok";
	dr.endpoint    = "http://a:1@x";
	req.call_case  = DISCOVERY__V1__REQUEST__CALL_DEREGISTER;
	req.deregister = &dr;
	expect(handle_with_nuls(f, &req), BAD, "deregister.endpoint holds a NUL");
	dr.service  = "o@k";
	dr.endpoint = "";
	expect(handle_with_nuls(f, &req), BAD, "deregister.service holds a NUL");
	ih.service     = "ok";
	ih.endpoint    = "http://a:1@";
	req.call_case  = DISCOVERY__V1__REQUEST__CALL_IS_HEALTHY;
	req.is_healthy = &ih;
	expect(handle_with_nuls(f, &req), BAD, "is_healthy.endpoint holds a NUL");
	ga.service    = "@";
	req.call_case = DISCOVERY__V1__REQUEST__CALL_GET_ALL;
	req.get_all   = &ga;
	expect(handle_with_nuls(f, &req), BAD, "get_all.service holds a NUL");
	hb.service    = "ok";
	hb.endpoint   = "http://a:1@";
	req.call_case = DISCOVERY__V1__REQUEST__CALL_HEARTBEAT;
	req.heartbeat = &hb;
	expect(handle_with_nuls(f, &req), BAD, "heartbeat.endpoint holds a NUL");
	/* A token is judged too, even where none is needed. */
	req.auth_token = "tok@en";
	ga.service     = "ok";
	req.call_case  = DISCOVERY__V1__REQUEST__CALL_GET_ALL;
	expect(handle_with_nuls(f, &req), BAD, "auth_token holds a NUL");
	assert_int_equal(dsi_registry_count(f->reg), 0);
}

static void
test_nul_in_the_token_is_permission_denied(void **state)
{
	fixture                       *f   = *state;
	Request                        req = DISCOVERY__V1__REQUEST__INIT;
	Discovery__V1__RegisterRequest rr  = DISCOVERY__V1__REGISTER_REQUEST__INIT;

	f->d.token     = "s3cret";
	rr.service     = "ok";
	rr.endpoint    = "http://a:1";
	req.call_case  = DISCOVERY__V1__REQUEST__CALL_REGISTER;
	req.register_  = &rr;
	req.auth_token = "s3cret@junk";
	expect(
	    handle_with_nuls(f, &req), DISCOVERY__V1__STATUS_CODE__STATUS_PERMISSION_DENIED, "NUL");
	req.auth_token = "@s3cret";
	expect(
	    handle_with_nuls(f, &req), DISCOVERY__V1__STATUS_CODE__STATUS_PERMISSION_DENIED, "NUL");
	/* The token is judged before the fields. */
	req.auth_token = "s3cret@";
	rr.service     = "nul@evil";
	expect(
	    handle_with_nuls(f, &req), DISCOVERY__V1__STATUS_CODE__STATUS_PERMISSION_DENIED, "NUL");
	assert_int_equal(dsi_registry_count(f->reg), 0);
	req.auth_token = "s3cret";
	rr.service     = "ok";
	expect(handle(f, &req), DISCOVERY__V1__STATUS_CODE__STATUS_OK, NULL);
	f->d.token = NULL;
}

/* A register of n metadata entries, all with key and value given. */
static Response *
register_entries(fixture *f, size_t n, const char *key, const char *value)
{
	Request                                         req = DISCOVERY__V1__REQUEST__INIT;
	Discovery__V1__RegisterRequest                  rr  = DISCOVERY__V1__REGISTER_REQUEST__INIT;
	Discovery__V1__RegisterRequest__MetadataEntry  *ents = calloc(n, sizeof(*ents));
	Discovery__V1__RegisterRequest__MetadataEntry **ptrs = calloc(n, sizeof(*ptrs));
	assert_true(ents != NULL && ptrs != NULL);
	for (size_t i = 0; i < n; i++) {
		discovery__v1__register_request__metadata_entry__init(&ents[i]);
		ents[i].key   = (char *) key;
		ents[i].value = (char *) value;
		ptrs[i]       = &ents[i];
	}
	rr.service    = "dup";
	rr.endpoint   = "http://a:1";
	rr.metadata   = ptrs;
	rr.n_metadata = n;
	req.call_case = DISCOVERY__V1__REQUEST__CALL_REGISTER;
	req.register_ = &rr;
	Response *r   = handle(f, &req);
	free(ents);
	free(ptrs);
	return r;
}

static void
test_duplicate_metadata_keys_count_as_sent(void **state)
{
	fixture *f = *state;
	char     big[3001];
	memset(big, 'v', 3000);
	big[3000] = 0;

	/* 65 copies of one key: one key after de-duplication, but 65 entries of work. */
	expect(register_entries(f, 65, "k", "v"),
	    DISCOVERY__V1__STATUS_CODE__STATUS_RESOURCE_EXHAUSTED, "duplicate keys count");
	/* Two 3,000-byte values under one key: 6,000 bytes as sent. */
	expect(register_entries(f, 2, "k", big),
	    DISCOVERY__V1__STATUS_CODE__STATUS_RESOURCE_EXHAUSTED, "6002 bytes");
	assert_int_equal(dsi_registry_count(f->reg), 0);
	/* At the limit, duplicates are fine, and stored once. */
	Response *r = register_entries(f, 64, "k", "v");
	assert_int_equal(r->status, DISCOVERY__V1__STATUS_CODE__STATUS_OK);
	assert_int_equal(r->register_->instance->n_metadata, 1);
	protobuf_c_message_free_unpacked(&r->base, NULL);
}

static void
test_decode_cost_is_bounded_before_decoding(void **state)
{
	fixture *f   = *state;
	size_t   cap = 1024 * 1024 + 16, n = 0;
	uint8_t *b = malloc(cap);
	assert_non_null(b);

	/* 1 MiB of empty metadata entries in one register call. */
	size_t body = 1024 * 1024;
	b[n++]      = 0x52; /* field 10, length-delimited */
	size_t v    = body;
	for (; v >= 0x80; v >>= 7) {
		b[n++] = (uint8_t) (v | 0x80);
	}
	b[n++] = (uint8_t) v;
	for (size_t i = 0; i < body / 2; i++) {
		b[n++] = 0x1a;
		b[n++] = 0x00;
	}
	expect(handle_bytes(f, b, n), DISCOVERY__V1__STATUS_CODE__STATUS_RESOURCE_EXHAUSTED,
	    "524288 entries as sent");

	/* The register field repeated: protobuf-c would merge the copies' metadata. */
	n = 0;
	for (int copy = 0; copy < 2; copy++) {
		b[n++] = 0x52;
		b[n++] = 40 * 2;
		for (int i = 0; i < 40; i++) {
			b[n++] = 0x1a;
			b[n++] = 0x00;
		}
	}
	expect(handle_bytes(f, b, n), DISCOVERY__V1__STATUS_CODE__STATUS_RESOURCE_EXHAUSTED,
	    "80 entries as sent");

	/* Thousands of unknown fields, which protobuf-c would copy one by one. */
	n      = 0;
	b[n++] = 0x5a; /* field 11, resolve */
	b[n++] = 3;
	b[n++] = 0x0a;
	b[n++] = 1;
	b[n++] = 'a';
	for (int i = 0; i < 5000; i++) {
		b[n++] = 0xf8; /* field 31, varint 0 */
		b[n++] = 0x01;
		b[n++] = 0x00;
	}
	expect(handle_bytes(f, b, n), DISCOVERY__V1__STATUS_CODE__STATUS_INVALID_ARGUMENT,
	    "5002 fields");
	free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_malformed_bytes, setup, teardown),
		cmocka_unit_test(test_every_call_shares_service_and_endpoint_numbers),
		cmocka_unit_test_setup_teardown(test_register_validation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_register_normalizes, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_metadata_limit_is_resource_exhausted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status_of_each_kind, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nul_in_any_string_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_nul_in_the_token_is_permission_denied, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_duplicate_metadata_keys_count_as_sent, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_decode_cost_is_bounded_before_decoding, setup, teardown),
	};
	return cmocka_run_group_tests(tests, tu_curl_setup, tu_curl_teardown);
}
