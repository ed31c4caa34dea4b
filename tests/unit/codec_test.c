/* The generic codec and the status mapping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include <discovery/discovery.h>

#include "common/codec.h"
#include "common/status.h"

static void
test_roundtrip_request(void **state)
{
	Discovery__V1__Request                        req = DISCOVERY__V1__REQUEST__INIT;
	Discovery__V1__RegisterRequest                rr  = DISCOVERY__V1__REGISTER_REQUEST__INIT;
	Discovery__V1__RegisterRequest__MetadataEntry e
	    = DISCOVERY__V1__REGISTER_REQUEST__METADATA_ENTRY__INIT;
	Discovery__V1__RegisterRequest__MetadataEntry *ep = &e;
	nng_msg                                       *msg;
	Discovery__V1__Request                        *got;
	(void) state;

	e.key          = "zone";
	e.value        = "eu-1";
	rr.service     = "memory";
	rr.endpoint    = "http://m:9000";
	rr.metadata    = &ep;
	rr.n_metadata  = 1;
	rr.ttl_ms      = 5000;
	req.auth_token = "t";
	req.call_case  = DISCOVERY__V1__REQUEST__CALL_REGISTER;
	req.register_  = &rr;
	assert_int_equal(dsi_pack(&req.base, &msg), 0);
	assert_int_equal(dsi_unpack(&discovery__v1__request__descriptor, nng_msg_body(msg),
	                     nng_msg_len(msg), (ProtobufCMessage **) &got),
	    0);
	nng_msg_free(msg);
	assert_int_equal(got->call_case, DISCOVERY__V1__REQUEST__CALL_REGISTER);
	assert_string_equal(got->register_->service, "memory");
	assert_string_equal(got->register_->endpoint, "http://m:9000");
	assert_int_equal(got->register_->n_metadata, 1);
	assert_string_equal(got->register_->metadata[0]->value, "eu-1");
	assert_int_equal(got->register_->ttl_ms, 5000);
	assert_string_equal(got->auth_token, "t");
	protobuf_c_message_free_unpacked(&got->base, NULL);
}

static void
test_event_service_is_first_bytes(void **state)
{
	/* Subscribers filter on 0x0A len name: service must lead the encoding. */
	Discovery__V1__Event ev = DISCOVERY__V1__EVENT__INIT;
	nng_msg             *msg;
	(void) state;
	ev.service  = "memory";
	ev.type     = DISCOVERY__V1__EVENT_TYPE__EVENT_REGISTERED;
	ev.revision = 7;
	assert_int_equal(dsi_pack(&ev.base, &msg), 0);
	assert_memory_equal(nng_msg_body(msg), "\x0a\x06memory", 8);
	nng_msg_free(msg);
}

static void
test_garbage_is_eproto(void **state)
{
	static const struct {
		const char *bytes;
		size_t      len;
	} bad[] = {
		{ "\xff\xff\xff", 3 }, { "\x0a\x7fshort", 7 }, /* length past the end */
		{ "\x52\x05\x0a\x03"
		  "ab",
		    6 },       /* nested message truncated */
		{ "\x0f", 1 }, /* invalid wire type */
	};
	(void) state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ProtobufCMessage *m = NULL;
		if (dsi_unpack(&discovery__v1__request__descriptor, bad[i].bytes, bad[i].len, &m)
		    != DSC_EPROTO) {
			fail_msg("case %zu decoded", i);
		}
	}
}

static void
test_empty_decodes_as_empty_message(void **state)
{
	Discovery__V1__Request *got;
	(void) state;
	assert_int_equal(
	    dsi_unpack(&discovery__v1__request__descriptor, NULL, 0, (ProtobufCMessage **) &got),
	    0);
	assert_int_equal(got->call_case, DISCOVERY__V1__REQUEST__CALL__NOT_SET);
	protobuf_c_message_free_unpacked(&got->base, NULL);
}

static void
test_status_mapping(void **state)
{
	static const struct {
		Discovery__V1__StatusCode st;
		int                       err;
		int                       number;
	} map[] = {
		{ DISCOVERY__V1__STATUS_CODE__STATUS_OK, DSC_OK, 0 },
		{ DISCOVERY__V1__STATUS_CODE__STATUS_INVALID_ARGUMENT, DSC_EINVAL, 3 },
		{ DISCOVERY__V1__STATUS_CODE__STATUS_NOT_FOUND, DSC_ENOTFOUND, 5 },
		{ DISCOVERY__V1__STATUS_CODE__STATUS_PERMISSION_DENIED, DSC_EPERM, 7 },
		{ DISCOVERY__V1__STATUS_CODE__STATUS_RESOURCE_EXHAUSTED, DSC_ELIMIT, 8 },
		{ DISCOVERY__V1__STATUS_CODE__STATUS_FAILED_PRECONDITION, DSC_ESTATE, 9 },
		{ DISCOVERY__V1__STATUS_CODE__STATUS_UNIMPLEMENTED, DSC_ENOTSUP, 12 },
		{ DISCOVERY__V1__STATUS_CODE__STATUS_INTERNAL, DSC_EINTERNAL, 13 },
		{ DISCOVERY__V1__STATUS_CODE__STATUS_UNAVAILABLE, DSC_EUNAVAILABLE, 14 },
		{ DISCOVERY__V1__STATUS_CODE__STATUS_UNAUTHENTICATED, DSC_EAUTH, 16 },
	};
	(void) state;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		assert_int_equal((int) map[i].st, map[i].number); /* gRPC's numbers */
		assert_int_equal(dsi_status_from_err(map[i].err), map[i].st);
		assert_int_equal(dsi_err_from_status(map[i].st), map[i].err);
	}
	assert_int_equal(
	    dsi_status_from_err(DSC_ENOMEM), DISCOVERY__V1__STATUS_CODE__STATUS_INTERNAL);
	/* A status this build does not know is still a failure. */
	assert_int_equal(dsi_err_from_status((Discovery__V1__StatusCode) 99), DSC_EINTERNAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_request),
		cmocka_unit_test(test_event_service_is_first_bytes),
		cmocka_unit_test(test_garbage_is_eproto),
		cmocka_unit_test(test_empty_decodes_as_empty_message),
		cmocka_unit_test(test_status_mapping),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
