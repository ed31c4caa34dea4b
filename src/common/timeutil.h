/* Clocks: wall time for what clients see, monotonic time for deadlines. */
#ifndef DSI_TIMEUTIL_H
#define DSI_TIMEUTIL_H

#include <stdint.h>

int64_t dsi_wall_ms(void);      /* Unix time in milliseconds */
int64_t dsi_monotonic_ms(void); /* CLOCK_MONOTONIC in milliseconds */

#endif
