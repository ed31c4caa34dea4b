/* The Register request builder: every field and every metadata entry reach the wire. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include <discovery/discovery.h>

#include "common/codec.h"
#include "common/request.h"

/* Packs req and decodes it again, as the server would. */
static Discovery__V1__Request *
through_the_wire(const Discovery__V1__Request *req)
{
	nng_msg                *msg;
	Discovery__V1__Request *got = NULL;
	assert_int_equal(dsi_pack(&req->base, &msg), 0);
	assert_int_equal(dsi_unpack(&discovery__v1__request__descriptor, nng_msg_body(msg),
	                     nng_msg_len(msg), (ProtobufCMessage **) &got),
	    0);
	nng_msg_free(msg);
	return got;
}

static void
test_every_field(void **state)
{
	dsc_kv                  md[] = { { "zone", "eu-1" }, { "tier", "gold" } };
	dsc_registration        reg  = { .service = "memory",
		        .endpoint                 = "http://127.0.0.1:9000",
		        .metadata                 = md,
		        .n_metadata               = 2,
		        .health_path              = "/ready",
		        .ttl_ms                   = 5000,
		        .weight                   = 7 };
	Discovery__V1__Request *req;
	(void) state;

	assert_int_equal(dsi_request_register_new(&req, &reg), 0);
	req->auth_token                     = "secret"; /* borrowed, as documented */
	Discovery__V1__Request         *got = through_the_wire(req);
	Discovery__V1__RegisterRequest *rr  = got->register_;
	assert_int_equal(got->call_case, DISCOVERY__V1__REQUEST__CALL_REGISTER);
	assert_string_equal(got->auth_token, "secret");
	assert_string_equal(rr->service, "memory");
	assert_string_equal(rr->endpoint, "http://127.0.0.1:9000");
	assert_string_equal(rr->health_path, "/ready");
	assert_int_equal(rr->ttl_ms, 5000);
	assert_int_equal(rr->weight, 7);
	assert_int_equal(rr->n_metadata, 2);
	assert_string_equal(rr->metadata[0]->key, "zone");
	assert_string_equal(rr->metadata[0]->value, "eu-1");
	assert_string_equal(rr->metadata[1]->key, "tier");
	assert_string_equal(rr->metadata[1]->value, "gold");
	protobuf_c_message_free_unpacked(&got->base, NULL);
	dsi_request_free(req);
}

/* bench/wire.c once capped metadata at 8 entries without saying so. */
static void
test_no_metadata_cap(void **state)
{
	enum { N = 100 };
	char                    keys[N][16], values[N][16];
	dsc_kv                  md[N];
	dsc_registration        reg = { .service = "svc", .endpoint = "tcp://127.0.0.1:1" };
	Discovery__V1__Request *req;
	(void) state;

	for (int i = 0; i < N; i++) {
		snprintf(keys[i], sizeof(keys[i]), "k%d", i);
		snprintf(values[i], sizeof(values[i]), "v%d", i);
		md[i] = (dsc_kv) { keys[i], values[i] };
	}
	reg.metadata   = md;
	reg.n_metadata = N;
	assert_int_equal(dsi_request_register_new(&req, &reg), 0);
	Discovery__V1__Request *got = through_the_wire(req);
	assert_int_equal(got->register_->n_metadata, N);
	for (int i = 0; i < N; i++) {
		assert_string_equal(got->register_->metadata[i]->key, keys[i]);
		assert_string_equal(got->register_->metadata[i]->value, values[i]);
	}
	protobuf_c_message_free_unpacked(&got->base, NULL);
	dsi_request_free(req);
}

/* NULL strings go out as "", and no metadata is an empty list. */
static void
test_nulls_are_empty(void **state)
{
	dsc_kv                  md[] = { { NULL, NULL } };
	dsc_registration        reg  = { .metadata = md, .n_metadata = 1 };
	Discovery__V1__Request *req;
	(void) state;

	assert_int_equal(dsi_request_register_new(&req, &reg), 0);
	Discovery__V1__Request *got = through_the_wire(req);
	assert_string_equal(got->auth_token, "");
	assert_string_equal(got->register_->service, "");
	assert_string_equal(got->register_->endpoint, "");
	assert_string_equal(got->register_->health_path, "");
	assert_int_equal(got->register_->n_metadata, 1);
	assert_string_equal(got->register_->metadata[0]->key, "");
	assert_string_equal(got->register_->metadata[0]->value, "");
	protobuf_c_message_free_unpacked(&got->base, NULL);
	dsi_request_free(req);

	reg.metadata   = NULL;
	reg.n_metadata = 0;
	assert_int_equal(dsi_request_register_new(&req, &reg), 0);
	assert_int_equal(req->register_->n_metadata, 0);
	assert_null(req->register_->metadata);
	dsi_request_free(req);
	dsi_request_free(NULL);
}

/* Bad arguments fail and leave *out alone. */
static void
test_invalid(void **state)
{
	dsc_registration        reg  = { .service = "svc", .endpoint = "e", .n_metadata = 3 };
	Discovery__V1__Request  mark = DISCOVERY__V1__REQUEST__INIT;
	Discovery__V1__Request *req  = &mark;
	(void) state;

	assert_int_equal(dsi_request_register_new(&req, &reg), DSC_EINVAL);
	assert_ptr_equal(req, &mark);
	assert_int_equal(dsi_request_register_new(&req, NULL), DSC_EINVAL);
	assert_ptr_equal(req, &mark);
	reg.metadata   = (const dsc_kv *) &reg; /* never read: the count is refused first */
	reg.n_metadata = SIZE_MAX;
	assert_int_equal(dsi_request_register_new(&req, &reg), DSC_ENOMEM);
	assert_ptr_equal(req, &mark);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_field),
		cmocka_unit_test(test_no_metadata_cap),
		cmocka_unit_test(test_nulls_are_empty),
		cmocka_unit_test(test_invalid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
