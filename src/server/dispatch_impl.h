/*
 * Inside dispatch: one call in flight, and the handlers of the kinds table
 * (dispatch_calls.c), which dispatch.c runs after validating the fields
 * common to every kind.
 */
#ifndef DSI_DISPATCH_IMPL_H
#define DSI_DISPATCH_IMPL_H

#include <stdbool.h>
#include <stdint.h>

#include "common/name.h"
#include "server/dispatch.h"
#include "server/endpoint.h"
#include "server/validate.h"
#include "server/wirescan.h"

/* One call in flight: validated inputs, the result, and what to free. */
typedef struct dsi_call {
	dsi_write               w; /* first: the call as a write waiting for the writer */
	const dsi_dispatch     *d;
	const struct kind      *k;
	Discovery__V1__Request *msg;  /* the decoded request */
	dsi_wirescan            scan; /* what the bytes held before decoding */
	const ProtobufCMessage *req;  /* the kind's own request message */
	dsi_reply_fn            done;
	void                   *done_arg;
	char                    service[DSI_NAME_MAX + 1];
	const char             *service_or_null; /* NULL when empty and optional */
	const char             *endpoint;        /* NULL when empty and optional */
	uint64_t                revision;
	int                     result;  /* a write's, from apply to reply */
	bool                    created; /* register: a new instance */
	uint32_t                removed; /* deregister */
	char                    message[320];
	char                    peer[80]; /* a write's client address; "" when not known */
	int64_t                 start_ns; /* when it arrived, for the duration metric */
	union {
		Discovery__V1__RegisterResponse   reg;
		Discovery__V1__ResolveResponse    resolve;
		Discovery__V1__DeregisterResponse dereg;
		Discovery__V1__IsHealthyResponse  is_healthy;
		Discovery__V1__GetAllResponse     get_all;
		Discovery__V1__HeartbeatResponse  heartbeat;
		Discovery__V1__StatusResponse     status;
	} out;
	dsi_instance *one; /* exported data the reply points into */
	dsi_instances many;
	/* Register's checked inputs, kept from the check until the write is applied. */
	char             path[DSI_HEALTH_PATH_MAX + 2];
	dsc_kv          *kv;
	dsi_registration reg;
} dsi_call;

/*
 * The handlers: check on the receiving thread; with a writer, prepare on
 * its thread and commit under its apply mutex; run without one.
 */
int dsi_call_check_register(dsi_call *c);
int dsi_call_prepare_register(dsi_call *c, uint32_t pending_service, uint32_t pending_total);
int dsi_call_prepare_deregister(dsi_call *c, uint32_t pending_service, uint32_t pending_total);
int dsi_call_commit_register(dsi_call *c);
int dsi_call_commit_deregister(dsi_call *c);
int dsi_call_do_register(dsi_call *c);
int dsi_call_do_resolve(dsi_call *c);
int dsi_call_do_deregister(dsi_call *c);
int dsi_call_do_is_healthy(dsi_call *c);
int dsi_call_do_get_all(dsi_call *c);
int dsi_call_do_heartbeat(dsi_call *c);
int dsi_call_prepare_heartbeat(dsi_call *c, uint32_t pending_service, uint32_t pending_total);
int dsi_call_commit_heartbeat(dsi_call *c);
int dsi_call_do_status(dsi_call *c);

#endif
