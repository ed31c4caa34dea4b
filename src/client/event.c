/*
 * Events as libdiscovery hands them out: decoding and validating a published
 * Event into a dsc_event (the one place that does), what identifies a change
 * across the nodes of one registry, and the names and frees of the API.
 */
#include <discovery/discovery.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client/internal.h"
#include "common/codec.h"
#include "common/name.h"

const char *
dsc_event_type_name(dsc_event_type t)
{
	switch (t) {
	case DSC_EVENT_REGISTERED:
		return "registered";
	case DSC_EVENT_DEREGISTERED:
		return "deregistered";
	case DSC_EVENT_HEALTH_CHANGED:
		return "health_changed";
	case DSC_EVENT_UPDATED:
		return "updated";
	case DSC_EVENT_SYNC:
		return "sync";
	case DSC_EVENT_UNSPECIFIED:
		break;
	}
	return "unspecified";
}

static bool
health_ok(int h)
{
	return h >= DSC_HEALTH_UNKNOWN && h <= DSC_HEALTH_UNHEALTHY;
}

/*
 * Every check an Event must pass before anyone sees it. A SYNC needs only
 * its type; a change needs a valid, normalized service name that matches
 * its instance's, a non-empty endpoint and known health states.
 */
static bool
event_valid(const Discovery__V1__Event *e)
{
	char name[DSI_NAME_MAX + 1], why[128];

	if (e->type == DISCOVERY__V1__EVENT_TYPE__EVENT_SYNC) {
		return true;
	}
	if (e->type < DISCOVERY__V1__EVENT_TYPE__EVENT_REGISTERED
	    || e->type > DISCOVERY__V1__EVENT_TYPE__EVENT_UPDATED) {
		return false;
	}
	if (e->instance == NULL || dsi_name_normalize(e->service, name, why, sizeof(why)) != 0
	    || strcmp(name, e->service) != 0 || e->instance->service == NULL
	    || strcmp(e->instance->service, e->service) != 0 || e->instance->endpoint == NULL
	    || e->instance->endpoint[0] == 0) {
		return false;
	}
	return health_ok((int) e->instance->health) && health_ok((int) e->previous);
}

/* Copies a validated wire event into a new dsc_event. Returns 0 or DSC_ENOMEM. */
static int
event_copy(const Discovery__V1__Event *e, dsc_event **out)
{
	dsc_event *ev = calloc(1, sizeof(*ev));
	bool       sync;

	if (ev == NULL) {
		return DSC_ENOMEM;
	}
	sync             = e->type == DISCOVERY__V1__EVENT_TYPE__EVENT_SYNC;
	ev->type         = (dsc_event_type) e->type;
	ev->previous     = (dsc_health) e->previous;
	ev->revision     = e->revision;
	ev->timestamp_ms = e->timestamp_ms;
	ev->service      = strdup(sync || e->service == NULL ? "" : e->service);
	ev->reason       = strdup(e->reason != NULL ? e->reason : "");
	if (ev->service == NULL || ev->reason == NULL
	    || dsi_inst_from_pb(&ev->instance, sync ? NULL : e->instance) != 0) {
		dsc_event_free(ev);
		return DSC_ENOMEM;
	}
	*out = ev;
	return 0;
}

/*
 * Decodes one message: 0 and *out (with the SYNC's sync_interval_ms in
 * *interval_ms), or DSC_EPROTO for bytes that are not a valid Event (the
 * caller skips them), or DSC_ENOMEM.
 */
int
dsi_event_decode(const void *buf, size_t len, dsc_event **out, uint32_t *interval_ms)
{
	Discovery__V1__Event *e = NULL;
	int                   rv;

	if (dsi_unpack(&discovery__v1__event__descriptor, buf, len, (ProtobufCMessage **) &e)
	    != 0) {
		return DSC_EPROTO;
	}
	rv           = event_valid(e) ? event_copy(e, out) : DSC_EPROTO;
	*interval_ms = e->sync_interval_ms;
	protobuf_c_message_free_unpacked(&e->base, NULL);
	return rv;
}

/* FNV-1a over s and its terminating NUL. */
static uint64_t
fnv(uint64_t h, const char *s)
{
	do {
		h = (h ^ (uint8_t) *s) * 1099511628211ULL;
	} while (*s++ != 0);
	return h;
}

/*
 * What makes a change the same change on another node of the registry:
 * not its time, which each node stamps, nor its reason text.
 */
uint64_t
dsi_event_digest(const dsc_event *ev)
{
	uint64_t h = 14695981039346656037ULL;
	h          = (h ^ (uint64_t) ev->type) * 1099511628211ULL;
	h          = (h ^ (uint64_t) ev->instance.health) * 1099511628211ULL;
	h          = fnv(h, ev->service);
	return fnv(h, ev->instance.endpoint != NULL ? ev->instance.endpoint : "");
}

void
dsc_event_free(dsc_event *ev)
{
	if (ev != NULL) {
		free(ev->service);
		free(ev->reason);
		dsi_inst_clear(&ev->instance);
		free(ev);
	}
}
