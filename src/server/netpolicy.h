/*
 * Which addresses discoveryd may contact for an endpoint: link-local ranges
 * (cloud metadata services) are refused by default, and --allow-endpoint /
 * --deny-endpoint CIDR lists make the policy explicit.
 */
#ifndef DSI_NETPOLICY_H
#define DSI_NETPOLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DSI_NETPOLICY_MAX 64

/* Denied whatever the configuration says: link-local, where cloud metadata services live. */
#define DSI_NETPOLICY_DENY_V4 "169.254.0.0/16"
#define DSI_NETPOLICY_DENY_V6 "fe80::/10"

typedef struct dsi_cidr {
	int     family; /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	int     prefix;
	char    text[64];
} dsi_cidr;

typedef struct dsi_netpolicy {
	dsi_cidr allow[DSI_NETPOLICY_MAX];
	size_t   n_allow;
	dsi_cidr deny[DSI_NETPOLICY_MAX + 2];
	size_t   n_deny;
} dsi_netpolicy;

/* The defaults: deny DSI_NETPOLICY_DENY_V4 and _V6, allow everything else. */
void dsi_netpolicy_init(dsi_netpolicy *p);

/* Parses "a.b.c.d/n", "x::y/n" or a bare address. Returns 0 or DSC_EINVAL with why. */
int dsi_cidr_parse(const char *text, dsi_cidr *out, char *why, size_t why_len);

/* Adds a rule. Returns 0, or DSC_EINVAL / DSC_ELIMIT with why. */
int dsi_netpolicy_add(dsi_netpolicy *p, bool allow, const char *cidr, char *why, size_t why_len);

/*
 * Decides for one address (family AF_INET with 4 bytes, or AF_INET6 with
 * 16). IPv6 that embeds IPv4 is judged as that IPv4 address: mapped
 * (::ffff:a.b.c.d) and compatible (::a.b.c.d) alone; NAT64 (64:ff9b::/96)
 * and 6to4 (2002::/16) must pass as both. An address an allow
 * rule covers is permitted; else one a deny rule covers is refused; else,
 * when allow rules exist, it is refused (an allow list); else permitted.
 * On refusal why names the rule.
 */
bool dsi_netpolicy_permits(
    const dsi_netpolicy *p, int family, const uint8_t *addr, char *why, size_t why_len);

/*
 * The same for an endpoint's host as curl gives it: IP literals are decided
 * now, judged as the address a resolver would connect to (trailing dots
 * dropped; IPv4 in any inet_aton form: 2852039166, 0xa9.0xfe.0.1, octal
 * parts; IPv6 in brackets, zone ignored). Names are always permitted here:
 * the checker decides when it connects.
 */
bool dsi_netpolicy_permits_host(
    const dsi_netpolicy *p, const char *host, char *why, size_t why_len);

#endif
