/*
 * Server lists: the comma-separated "url[,url...]" that dsc_client_open,
 * dsc_watch_open, dsc_view_open and dsc_wait_for accept, split and checked
 * in one place (client failover, docs/clients.md).
 */
#ifndef DSI_CLIENT_URLLIST_H
#define DSI_CLIENT_URLLIST_H

#include <discovery/discovery.h>
#include <stddef.h>

/* The longest URL one entry may hold, in bytes. */
#define DSI_URL_MAX 1024

/* The entries of one list, in the order given. Owns the strings. */
typedef struct dsi_url_list {
	size_t n;
	char  *url[DSC_MAX_SERVERS];
} dsi_url_list;

/*
 * Splits text at commas; blanks around an entry are dropped. Refuses (with
 * why saying which entry and what is wrong) an empty list or entry, blanks
 * or control bytes inside an entry, an entry without "scheme://", one
 * longer than DSI_URL_MAX, the same URL twice, and more than
 * DSC_MAX_SERVERS entries. Syntax only: whether nng can dial an entry is
 * dsc_url_list_check's question. Returns 0 and fills *out (release with
 * dsi_url_list_free), or DSC_EINVAL / DSC_ENOMEM with *out zeroed.
 */
int dsi_url_list_parse(dsi_url_list *out, const char *text, char *why, size_t why_len);

/* Frees what l owns and zeroes it; a zeroed l is a no-op. */
void dsi_url_list_free(dsi_url_list *l);

#endif
