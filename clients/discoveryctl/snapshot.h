/*
 * discoveryctl snapshot save FILE: GET /v1/snapshot from the admin
 * endpoint (--admin) with libcurl, written to FILE atomically (a temporary
 * file beside it, fsync, rename) with mode 0600: a data file that
 * `discoveryd --data FILE` starts from. libcurl is discoveryctl's own
 * dependency here; libdiscovery does not link it.
 */
#ifndef DISCOVERYCTL_SNAPSHOT_H
#define DISCOVERYCTL_SNAPSHOT_H

#include "discoveryctl/ctl.h"

/* The snapshot command; returns an EXIT_*, having said why on failure. */
int ctl_cmd_snapshot(ctl *c);

#endif
