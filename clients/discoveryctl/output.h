/*
 * discoveryctl's output: every byte a reply puts on the terminal passes
 * through here, escaped (put_clean) or as valid JSON (json_string).
 * stdout carries answers; stderr carries one "discoveryctl: ..." line per failure.
 */
#ifndef DISCOVERYCTL_OUTPUT_H
#define DISCOVERYCTL_OUTPUT_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include <stdio.h>

#include "discoveryctl/ctl.h"

/* One line on stderr: "discoveryctl: ...". Every failure says exactly one. */
void ctl_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* After a failed connection to url: a hint on stderr when one fits the error (rv). */
void ctl_connect_hint(const ctl *c, const char *url, int rv);

/* Writes s with C0 controls and DEL as \xNN, so no reply can drive the terminal. */
void ctl_put_clean(FILE *f, const char *s);

/*
 * Every JSON discoveryctl prints is built with jansson through these.
 * ctl_json_text: s as a JSON string, always valid: bytes that are not UTF-8
 * become U+FFFD. ctl_json_instance: an Instance with the protobuf field names.
 * ctl_json_print: one compact line on stdout; takes o (NULL: says so on stderr).
 */
json_t *ctl_json_text(const char *s);
json_t *ctl_json_instance(const dsc_instance *x);
void    ctl_json_print(json_t *o);

/* An instance, as JSON or as "field: value" lines. */
void ctl_print_instance(const ctl *c, const dsc_instance *x);

/* One line per instance under a header (plain output of list). */
void ctl_print_table(const dsc_instance_list *list);

/* list --json: {"revision":N,"instances":[...]} */
void ctl_print_list_json(const dsc_instance_list *list);

/* A service's verdict, then each instance's health, last check and last error. */
void ctl_print_service_health(
    const ctl *c, const char *service, bool healthy, dsc_health state, const dsc_instance_list *l);

/* One watch event, as one line or one JSON object; plain output skips SYNC. */
void ctl_print_event(const ctl *c, const dsc_event *ev);

/* status: "field: value" lines, or one JSON object with GET /v1/status's names. */
void ctl_print_status(const ctl *c, const dsc_server_status *st);

/* wait's answer: "ready: SERVICE..." or {"ready":...,"missing":[...],"unhealthy":[...]}. */
void ctl_print_wait_ready(const ctl *c, const dsc_wait_status *st, size_t n);
void ctl_print_wait_json(const ctl *c, bool ready, const dsc_wait_status *st, size_t n);

#endif
