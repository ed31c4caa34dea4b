/* Raw wire helpers for the benches: packed requests and one raw REQ call. */
#ifndef BENCH_WIRE_H
#define BENCH_WIRE_H

#include <discovery/discovery.h>
#include <stddef.h>

/* Packs Request{resolve{service}} into *buf (malloc'd, the caller frees). Returns 0 or -1. */
int bn_pack_resolve(const char *service, void **buf, size_t *len);

/* Packs Request{register{...}} from reg, every metadata entry, into *buf (malloc'd, the caller
 * frees). Returns 0 or -1. */
int bn_pack_register(const dsc_registration *reg, void **buf, size_t *len);

/*
 * Sends one request on a fresh REQ socket and writes the reply's bytes to
 * path. Returns 0 when a reply with status OK and result kind `result`
 * (a Response oneof number: 10 register, 11 resolve, ...) came back; the
 * reply's size goes to *reply_len.
 */
int bn_capture_reply(
    const char *url, const void *req, size_t len, int result, const char *path, size_t *reply_len);

#endif
