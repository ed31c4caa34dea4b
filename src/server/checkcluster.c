/* The checker's verdicts in cluster mode (checkcluster.h). */
#include "server/checkcluster.h"

#include <stdio.h>

#include "common/error.h"
#include "common/text.h"
#include "common/timeutil.h"

void
dsi_check_log_transition(
    const dsi_log *log, const dsi_target *t, dsc_health prev, const char *reason)
{
	char          esc[96];
	dsi_log_field f[] = { DSI_LOG_STR("event", "health"), DSI_LOG_STR("service", t->service),
		DSI_LOG_STR("endpoint", t->endpoint),
		DSI_LOG_STR("health", dsi_health_name(t->state)), DSI_LOG_STR("reason", reason) };
	dsi_logf_fields(log, DSI_LOG_INFO, f, 5, "health %s %s: %s -> %s (%s)", t->service,
	    dsi_text_escape(t->endpoint, esc, sizeof(esc)), dsi_health_name(prev),
	    dsi_health_name(t->state), reason);
}

/* The registry's state of t; false when t is gone. */
static bool
stored_state(dsi_registry *r, const dsi_target *t, dsc_health *state)
{
	bool healthy;
	*state = DSC_HEALTH_UNKNOWN;
	return dsi_registry_is_healthy(r, t->service, t->endpoint, &healthy, state, NULL) == 0;
}

void
dsi_cluster_check_record(const dsi_checker_options *o, dsi_registry *r, const dsi_log *log,
    dsi_target *t, bool ok, const char *reason)
{
	dsc_health prev = (dsc_health) t->state, stored;
	t->state        = (uint8_t) dsi_check_transition(
	           (dsc_health) t->state, ok, &t->ok_run, &t->fail_run, o->rise, o->fall);
	if (dsi_registry_note_check(r, t->service, t->endpoint, dsi_wall_ms(), ok ? NULL : reason)
	        != 0
	    || !stored_state(r, t, &stored)) {
		return; /* deregistered meanwhile; its removal is in the inbox */
	}
	if (t->state != stored) {
		o->submit_health(
		    o->store_arg, t->service, t->endpoint, (dsc_health) t->state, reason);
	}
	if (t->state != prev) {
		dsi_check_log_transition(log, t, prev, reason);
	}
}

void
dsi_cluster_check_skip(dsi_registry *r, dsi_target *t)
{
	dsc_health stored;
	stored_state(r, t, &stored);
	t->state    = (uint8_t) stored;
	t->ok_run   = 0;
	t->fail_run = 0;
}

int64_t
dsi_cluster_check_ttl(
    const dsi_checker_options *o, dsi_registry *r, const dsi_log *log, dsi_target *t)
{
	int64_t    now = dsi_wall_ms(), grace_end = 0;
	dsc_health stored;
	if (dsi_registry_get_one(r, t->service, t->endpoint, NULL, &grace_end, NULL) != 0
	    || !stored_state(r, t, &stored)) {
		return -1;
	}
	if (o->owns == NULL || o->owns(o->store_arg, t->service, t->endpoint)) {
		bool       alive = o->ttl_alive(o->store_arg, t->service, t->endpoint);
		dsc_health want  = alive ? DSC_HEALTH_HEALTHY
		     : now >= grace_end  ? DSC_HEALTH_UNHEALTHY
		                         : stored;
		if (want != stored) {
			char why[96];
			snprintf(why, sizeof(why),
			    alive ? "heartbeat" : "no heartbeat within %u ms", t->ttl_ms);
			dsc_health prev = (dsc_health) t->state;
			t->state        = (uint8_t) want;
			o->submit_health(o->store_arg, t->service, t->endpoint, want, why);
			dsi_check_log_transition(log, t, prev, why);
		}
	} else {
		t->state = (uint8_t) stored;
	}
	/* Half a TTL: an expiry in etcd is seen within half a TTL. */
	return t->ttl_ms / 2 > 250 ? t->ttl_ms / 2 : 250;
}

bool
dsi_check_deregister_protected(dsi_registry *r, const dsi_log *log, dsi_check_protect *p)
{
	int64_t now = dsi_monotonic_ms();
	if (p->checked_ms != 0 && now - p->checked_ms < 1000) {
		return p->on;
	}
	size_t total, bad = dsi_registry_count_unhealthy(r, &total);
	bool   on     = total >= DSI_PROTECT_MIN && bad * 2 > total;
	p->checked_ms = now;
	if (on != p->on) {
		if (on) {
			dsi_warn(log,
			    "%zu of %zu instances are unhealthy: --deregister-after removes none "
			    "while more than half are (self-preservation)",
			    bad, total);
		} else {
			dsi_info(log,
			    "%zu of %zu instances are unhealthy: --deregister-after applies "
			    "again",
			    bad, total);
		}
	}
	p->on = on;
	return on;
}
