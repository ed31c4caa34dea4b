/*
 * The text of dsc_err codes and health states, for the server and the
 * internal library. libdiscovery's public dsc_strerror and dsc_health_name
 * return these same strings: the one table is DSC_ERRORS in
 * <discovery/discovery.h>, expanded here only.
 */
#ifndef DSI_ERROR_H
#define DSI_ERROR_H

#include <discovery/discovery.h>

/* A static message for err; "unknown error" for a code not in DSC_ERRORS. */
const char *dsi_strerror(int err);

/* A static name: "healthy", "unhealthy" or "unknown" (for anything else). */
const char *dsi_health_name(dsc_health h);

#endif
