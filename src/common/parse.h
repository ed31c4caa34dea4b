/*
 * Number parsers for settings and command-line values, shared by
 * discoveryd and discoveryctl. Each takes the whole string: no leading
 * spaces or signs, no trailing text, no "inf" or "nan".
 */
#ifndef DSI_PARSE_H
#define DSI_PARSE_H

#include <stdint.h>

/* A whole decimal number in [lo, hi] into *out. Returns 0 or DSC_EINVAL (*out untouched). */
int dsi_parse_uint(const char *s, uint64_t lo, uint64_t hi, uint64_t *out);

/* A whole decimal number in 0..UINT32_MAX. Returns 0 or DSC_EINVAL (*out untouched). */
int dsi_parse_u32(const char *s, uint32_t *out);

/*
 * Seconds with fractions ("0.5", "30", ".25") in [lo, hi] into whole
 * milliseconds, rounded to the nearest, except that a positive value never
 * becomes 0 ms. hi must be at most INT32_MAX / 1000. Returns 0 or
 * DSC_EINVAL (*ms untouched).
 */
int dsi_parse_seconds(const char *s, double lo, double hi, int *ms);

#endif
