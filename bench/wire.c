/* Raw wire helpers: generated protobuf-c types, one nng REQ call. */
#include "wire.h"

#include <discovery/v1/discovery.pb-c.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/codec.h"
#include "common/request.h"

/* Packs req into a malloc'd buffer. */
static int
pack(const Discovery__V1__Request *req, void **buf, size_t *len)
{
	*len = protobuf_c_message_get_packed_size(&req->base);
	if ((*buf = malloc(*len > 0 ? *len : 1)) == NULL) {
		return -1;
	}
	protobuf_c_message_pack(&req->base, *buf);
	return 0;
}

int
bn_pack_resolve(const char *service, void **buf, size_t *len)
{
	Discovery__V1__ResolveRequest rr  = DISCOVERY__V1__RESOLVE_REQUEST__INIT;
	Discovery__V1__Request        req = DISCOVERY__V1__REQUEST__INIT;
	rr.service                        = (char *) service;
	req.call_case                     = DISCOVERY__V1__REQUEST__CALL_RESOLVE;
	req.resolve                       = &rr;
	return pack(&req, buf, len);
}

int
bn_pack_register(const dsc_registration *reg, void **buf, size_t *len)
{
	Discovery__V1__Request *req;
	int                     rv;

	if (dsi_request_register_new(&req, reg) != 0) {
		return -1;
	}
	rv = pack(req, buf, len);
	dsi_request_free(req);
	return rv;
}

int
bn_capture_reply(
    const char *url, const void *req, size_t len, int result, const char *path, size_t *reply_len)
{
	nng_socket s;
	int        rv  = -1;
	void      *buf = NULL;
	size_t     n   = 0;

	if (nng_req0_open(&s) != 0) {
		return -1;
	}
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 5000);
	if (nng_dial(s, url, NULL, 0) == 0 && nng_send(s, (void *) req, len, 0) == 0
	    && nng_recv(s, &buf, &n, NNG_FLAG_ALLOC) == 0) {
		Discovery__V1__Response *resp = NULL;
		if (dsi_unpack(
		        &discovery__v1__response__descriptor, buf, n, (ProtobufCMessage **) &resp)
		        == 0
		    && resp->status == DISCOVERY__V1__STATUS_CODE__STATUS_OK
		    && (int) resp->result_case == result) {
			FILE *f = fopen(path, "wb");
			if (f != NULL && fwrite(buf, 1, n, f) == n) {
				rv         = 0;
				*reply_len = n;
			}
			if (f != NULL) {
				fclose(f);
			}
		}
		if (resp != NULL) {
			protobuf_c_message_free_unpacked(&resp->base, NULL);
		}
		nng_free(buf, n);
	}
	nng_close(s);
	return rv;
}
