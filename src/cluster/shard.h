/*
 * Who checks which instance: rendezvous (highest random weight) hashing over
 * the live members' names. Each member scores every instance with a stable
 * 64-bit hash of (member name, service, endpoint); the highest score owns it.
 * A member's departure moves only the instances it owned; a join takes about
 * 1/n of the instances, each from whichever member held it. Pure functions:
 * no etcd, no state, the same answer on every node for the same names.
 */
#ifndef DSI_CLUSTER_SHARD_H
#define DSI_CLUSTER_SHARD_H

#include <stddef.h>
#include <stdint.h>

/* dsi_shard_owner's answer when there is no member. */
#define DSI_SHARD_NONE SIZE_MAX

/*
 * The weight of member for the instance (service, endpoint): FNV-1a 64 over
 * the three strings, each followed by a NUL (so "ab","c" and "a","bc"
 * differ), then a 64-bit finalizer (splitmix64's) so that names differing in
 * one byte still spread. Stable across versions and machines: changing it
 * moves every instance at an upgrade, so don't.
 */
uint64_t dsi_shard_weight(const char *member, const char *service, const char *endpoint);

/*
 * The index in names[n] of the member that owns (service, endpoint): the
 * highest weight, ties (vanishingly rare) to the smallest name, so the
 * order of names does not matter. DSI_SHARD_NONE when n is 0.
 */
size_t dsi_shard_owner(
    const char *const *names, size_t n, const char *service, const char *endpoint);

#endif
