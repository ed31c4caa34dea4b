/*
 * A TCP relay on loopback that a test can cut, for network partitions
 * without privileges: a process given the relay's port instead of its
 * peer's reaches the peer through it until tp_cut, and then nothing gets
 * through either way, as when packets are dropped: connections stay open
 * and silent (no reset, no end of stream), new ones are accepted and held.
 * After tp_heal everything flows again: bytes sent over an open connection
 * during the cut are delivered then, late, as TCP would after a partition
 * shorter than its retransmission limit; connections accepted during the
 * cut are closed (their SYN never arrived), so their callers retry.
 * tp_cut and tp_heal return once the relay thread acts on them.
 */
#ifndef TP_TCPPROXY_H
#define TP_TCPPROXY_H

#include <stdbool.h>

typedef struct tp_proxy tp_proxy;

/* Relays 127.0.0.1:<a port of its own> to 127.0.0.1:target_port. 0 or -1. */
int tp_start(tp_proxy **out, int target_port);
int tp_port(const tp_proxy *p);
/* Connections accepted so far: proof that the process under test used the relay. */
long tp_accepted(tp_proxy *p);
void tp_cut(tp_proxy *p);
void tp_heal(tp_proxy *p);
/* Closes every connection and the listener; NULL is ignored. */
void tp_stop(tp_proxy *p);

#endif
