/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>

/*
 * The byte relay of vmigrate-tunnel: the destination's end of a tunnelled
 * migration, between ssh (standard input and output) and the destination
 * QEMU's incoming migration socket. Blocking, single-threaded, no event
 * loop: the program does nothing else.
 *
 * Copies in_fd → sock_fd and sock_fd → out_fd until both directions have
 * ended. in_fd's EOF shuts down sock_fd's sending side; sock_fd's EOF
 * closes out_fd (the caller must not use it afterwards). in_fd and out_fd
 * may be the same socket. Returns 0 when both directions ended cleanly;
 * otherwise a negative errno, with *error saying which direction failed and
 * why ("writing to the migration socket: Broken pipe", "reading standard
 * input: ...").
 *
 * The first failure in either direction ends the relay at once, the other
 * direction abandoned: that is how an abort on one host reaches the other.
 * A reader of out_fd going away counts as a failure even while nothing is
 * waiting to be written to it.
 *
 * sock_fd must be a socket. An EOF is passed on to a socket with
 * shutdown(SHUT_WR), which ends the stream even if other fds refer to the
 * same socket (in_fd and out_fd may be two fds of one socket); out_fd is
 * then closed too, unless it is in_fd. Whatever the outcome, out_fd is
 * closed when the function returns; in_fd and sock_fd stay open and are
 * left non-blocking. The caller must ignore SIGPIPE: a write to a pipe
 * with no reader must come back as EPIPE, not kill the process.
 */
int tunnel_relay(int in_fd, int out_fd, int sock_fd, GError **error);
