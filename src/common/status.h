/* Mapping between the library's dsc_err and the wire's StatusCode. */
#ifndef DSI_STATUS_H
#define DSI_STATUS_H

#include <discovery/discovery.h>
#include <discovery/v1/discovery.pb-c.h>

Discovery__V1__StatusCode dsi_status_from_err(int err);
int                       dsi_err_from_status(Discovery__V1__StatusCode st);

#endif
