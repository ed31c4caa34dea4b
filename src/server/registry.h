/*
 * The registry: every registered instance, in memory, keyed by
 * (service, endpoint), behind one read-write lock.
 *
 * Inputs are already validated and normalized (see dispatch.c). Reads take
 * the read lock only; resolve never waits on I/O. Results are exported
 * copies, so no caller ever holds a pointer into the registry.
 */
#ifndef DSI_REGISTRY_H
#define DSI_REGISTRY_H

#include <discovery/discovery.h>
#include <discovery/v1/discovery.pb-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct dsi_registry dsi_registry;

/*
 * An exported instance: one allocation holding the message, its metadata
 * entries and every string. free() releases it; never pass it to
 * protobuf_c_message_free_unpacked.
 */
typedef Discovery__V1__Instance dsi_instance;

typedef struct dsi_registry_limits {
	uint32_t max_instances; /* in total */
	uint32_t max_instances_per_service;
	uint32_t max_metadata_entries;
	uint32_t max_metadata_bytes; /* keys plus values */
} dsi_registry_limits;

/*
 * The protocol's metadata limits and no instance caps (discoveryd sets
 * those from its options table). dsi_registry_create(NULL) uses these.
 */
void dsi_registry_limits_default(dsi_registry_limits *l);

/*
 * Where an instance came from, stored with it: the configuration (YAML
 * services, PREFIX<NAME>=URL variables), which reconciles what it
 * registered on start and on reload, or the API, which configuration
 * never touches. The last registration of an instance sets it.
 */
typedef enum dsi_origin {
	DSI_ORIGIN_API    = 0,
	DSI_ORIGIN_CONFIG = 1,
} dsi_origin;

/* What Register stores. Strings are borrowed for the call's duration. */
typedef struct dsi_registration {
	const char   *service;  /* normalized */
	const char   *endpoint; /* validated */
	const dsc_kv *metadata; /* duplicates allowed: the last one wins */
	size_t        n_metadata;
	const char   *health_path; /* normalized: starts with '/' */
	uint32_t      ttl_ms;
	uint32_t      weight;
	int64_t       registered_at_ms; /* a new instance's; 0: now */
	uint8_t       origin;           /* a dsi_origin */
} dsi_registration;

/* A list of exported instances; release with dsi_instances_free. */
typedef struct dsi_instances {
	dsi_instance **items;
	size_t         count;
} dsi_instances;

void dsi_instances_free(dsi_instances *list);

/*
 * One registry change, in revision order. instance is an exported copy the
 * observer takes ownership of (NULL for SYNC, or when the copy could not be
 * allocated); strings are valid during the call only.
 */
typedef struct dsi_change {
	Discovery__V1__EventType type;
	const char              *service; /* "" for SYNC */
	dsi_instance            *instance;
	dsc_health               previous; /* HEALTH_CHANGED: the old state */
	uint64_t                 revision;
	int64_t                  timestamp_ms;
	const char              *reason;
} dsi_change;

/*
 * Called under the registry's write lock for every change, so calls come
 * in revision order. It must only queue memory work: no I/O, no registry
 * calls.
 */
typedef void (*dsi_change_fn)(void *arg, dsi_change *ch);

/* Sets the observer; call before the registry is shared. */
void dsi_registry_set_observer(dsi_registry *r, dsi_change_fn fn, void *arg);

/* Emits a SYNC change carrying the current revision, in order with the rest. */
void dsi_registry_sync(dsi_registry *r);

int  dsi_registry_create(dsi_registry **out, const dsi_registry_limits *limits);
void dsi_registry_destroy(dsi_registry *r);

/*
 * Every function below returns 0 or a dsc_err and, when rev is not NULL,
 * stores the registry revision after the call, success or not. Exported
 * instances (out) belong to the caller. On failure nothing is changed,
 * nothing is published, and out is untouched.
 */

/*
 * A change decided once: dsi_registry_prepare_* builds everything it needs
 * (metadata, records, copies for the reply and the observer, room in the
 * service's array, the revisions it takes) without changing the registry
 * and under the read lock only; dsi_registry_commit then applies exactly
 * that change and cannot fail. The store's SQL comes from the same
 * prepared change (dsi_registry_op_get), so the file and memory agree.
 *
 * Between a prepare and its commit no other change may add or remove
 * instances of that service or change that instance, except the ones
 * prepared before it and committed in order (pending counts them). The
 * store's writer keeps this rule with its conflicts; the in-memory calls
 * below (register, deregister, reap) keep it with the registry's writer
 * mutex. Health may change in between: commit takes it as it finds it.
 */
typedef struct dsi_registry_op dsi_registry_op;

/* What a prepared change does, for the store's SQL and the writer's counts. */
typedef struct dsi_registry_op_info {
	bool        creates;   /* register: a new instance */
	bool        changes;   /* anything stored differs (false: a no-op) */
	uint32_t    removes;   /* deregister and reap: instances removed */
	uint64_t    revisions; /* revisions the commit takes */
	const char *service;
	const char *endpoint;    /* NULL: every instance of service */
	const char *health_path; /* register, below: as stored */
	uint32_t    ttl_ms;
	uint32_t    weight;
	int64_t     registered_at_ms;
	const char *meta; /* "key\0value\0" pairs, sorted by key, keys unique */
	uint32_t    meta_len;
	uint32_t    n_meta;
	uint8_t     origin; /* register: a dsi_origin */
	/* A health change (cluster mode, dsi_registry_prepare_health): */
	bool        sets_health;
	uint8_t     health; /* a dsc_health */
	const char *reason;
} dsi_registry_op_info;

/*
 * Prepares a register: adds the instance, or updates metadata, health path,
 * ttl and weight of an existing one while keeping its health. A register
 * that changes nothing takes no revision. pending_service and
 * pending_total are instances prepared before this one and not committed
 * yet: the limits count them. DSC_ELIMIT (with why) when a limit would be
 * passed. want_copy: the commit hands out an exported copy.
 */
int dsi_registry_prepare_register(dsi_registry *r, const dsi_registration *reg,
    uint32_t pending_service, uint32_t pending_total, int64_t now_ms, bool want_copy,
    dsi_registry_op **out, char *why, size_t why_len);

/* Prepares the removal of one instance, or of every instance of service (endpoint NULL). */
int dsi_registry_prepare_deregister(
    dsi_registry *r, const char *service, const char *endpoint, dsi_registry_op **out);

/*
 * Prepares a --deregister-after removal: DSC_ENOTFOUND unless the instance
 * has been UNHEALTHY for at least after_ms. The commit removes it whatever
 * its state by then (the removal is already stored).
 */
int dsi_registry_prepare_reap(dsi_registry *r, const char *service, const char *endpoint,
    int64_t after_ms, int64_t now_ms, dsi_registry_op **out);

/*
 * Prepares a change of one instance's health (cluster mode: health goes
 * through the writer and the cluster's store like any change). No change,
 * and no revision, when the instance already has that state. DSC_ENOTFOUND
 * if it is not registered.
 */
int dsi_registry_prepare_health(dsi_registry *r, const char *service, const char *endpoint,
    dsc_health health, const char *reason, int64_t now_ms, dsi_registry_op **out);

const dsi_registry_op_info *dsi_registry_op_get(const dsi_registry_op *op);

/*
 * Applies op and frees it. *out (when op was prepared with want_copy) is
 * the instance as registered; *rev the revision after the change.
 */
void dsi_registry_commit(dsi_registry *r, dsi_registry_op *op, dsi_instance **out, uint64_t *rev);

/* Frees an op that will not be committed. NULL is fine. */
void dsi_registry_op_free(dsi_registry_op *op);

/* Prepare and commit, under the registry's writer mutex: for the in-memory path. */
int dsi_registry_register(dsi_registry *r, const dsi_registration *reg, int64_t now_ms,
    dsi_instance **out, bool *created, uint64_t *rev, char *why, size_t why_len);

/*
 * Nacos's protection threshold (0 to 1; 0: off): while a service's healthy
 * share of instances is below it, Resolve picks among all of them, healthy
 * or not, even when asked for healthy ones, so that a few survivors do not
 * take the whole load. Takes effect at once (a reload sets it).
 */
void dsi_registry_set_protection(dsi_registry *r, double threshold);

/* Moves the revision forward to rev (never back); for a restart. */
void dsi_registry_set_revision(dsi_registry *r, uint64_t rev);

/*
 * Round-robin, weighted, among healthy instances; among all when none is
 * healthy, unless healthy_only (then DSC_EUNAVAILABLE). DSC_ENOTFOUND for an
 * unknown service. Under the protection threshold, among all (see below).
 */
int dsi_registry_resolve(
    dsi_registry *r, const char *service, bool healthy_only, dsi_instance **out, uint64_t *rev);

/* endpoint NULL removes every instance of service. Idempotent. Prepare and commit. */
int dsi_registry_deregister(
    dsi_registry *r, const char *service, const char *endpoint, uint32_t *removed, uint64_t *rev);

/*
 * With an endpoint: that instance's state (DSC_ENOTFOUND if absent).
 * Without: healthy when any instance is; state is the best state found.
 */
int dsi_registry_is_healthy(dsi_registry *r, const char *service, const char *endpoint,
    bool *healthy, dsc_health *state, uint64_t *rev);

/* Sorted by (service, endpoint); service NULL lists every service. */
int dsi_registry_get_all(dsi_registry *r, const char *service, dsi_instances *out, uint64_t *rev);

/* Every instance whose origin is origin (a dsi_origin), in no particular order. */
int dsi_registry_get_origin(dsi_registry *r, uint8_t origin, dsi_instances *out);

/*
 * An exported copy of one instance (out may be NULL) and when its TTL runs
 * out locally (ttl_deadline_ms may be NULL): for a TTL instance the end of
 * its grace after registration, moved by each local heartbeat. DSC_ENOTFOUND.
 */
int dsi_registry_get_one(dsi_registry *r, const char *service, const char *endpoint,
    dsi_instance **out, int64_t *ttl_deadline_ms, uint64_t *rev);

/*
 * Marks a TTL instance alive: HEALTHY, with its TTL counted from now.
 * DSC_ESTATE for an instance registered without a TTL.
 */
int dsi_registry_heartbeat(dsi_registry *r, const char *service, const char *endpoint,
    int64_t now_ms, dsi_instance **out, uint64_t *rev);

/*
 * Records a health result: the state, the check time, and last_error (NULL
 * or "" when the check passed). Only a change of state is a change: it
 * bumps the revision and is reported with reason.
 */
int dsi_registry_set_health(dsi_registry *r, const char *service, const char *endpoint,
    dsc_health health, int64_t now_ms, const char *last_error, const char *reason, uint64_t *rev);

/* Records a check's time and error without changing the state (cluster mode). */
int dsi_registry_note_check(dsi_registry *r, const char *service, const char *endpoint,
    int64_t now_ms, const char *last_error);

/*
 * For a TTL instance: marks it UNHEALTHY when no heartbeat came within its
 * TTL, and stores in *next_ms when to look again. DSC_ENOTFOUND if gone.
 * TTL deadlines are wall-clock milliseconds, like every time the registry
 * keeps; a newly registered instance gets one full TTL of grace.
 */
int dsi_registry_ttl_expire(
    dsi_registry *r, const char *service, const char *endpoint, int64_t now_ms, int64_t *next_ms);

/*
 * Removes the instance if it has been UNHEALTHY for at least after_ms
 * (--deregister-after). *removed tells whether it did. Prepare and commit.
 */
int dsi_registry_reap(dsi_registry *r, const char *service, const char *endpoint, int64_t after_ms,
    int64_t now_ms, bool *removed);

/* Whether dsi_registry_reap would remove the instance now. */
bool dsi_registry_reap_due(
    dsi_registry *r, const char *service, const char *endpoint, int64_t after_ms, int64_t now_ms);

uint64_t dsi_registry_revision(dsi_registry *r);
size_t   dsi_registry_count(dsi_registry *r); /* instances in total */
/* Instances UNHEALTHY now, and in total (*total): one pass under the read lock. */
size_t dsi_registry_count_unhealthy(dsi_registry *r, size_t *total);

/*
 * Tests only: the registry's next n allocations succeed and every one after
 * fails, until called again with -1 (never fail). Per registry, no global.
 */
void dsi_registry_fail_alloc_after(dsi_registry *r, long n);

#endif
