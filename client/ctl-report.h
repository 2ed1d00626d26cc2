/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * vmigratectl report: a migration as a picture. ctl-report.c draws it
 * from the statistics (no bus), ctl-report-run.c is the command.
 */

#include <stdbool.h>

#include <glib.h>
#include <systemd/sd-bus.h>

#include "ctl.h"

#define CTL_REPORT_WIDTH 960
#define CTL_REPORT_HEIGHT 540

/*
 * The picture of a migration leaving a host, from the a{sv} of
 * Domain.GetJobStats with its "history": remaining data (left axis) and
 * the guest's dirty rate and the link's throughput (right axis) against
 * time, one marker per pass sampled, the policy's steps, the switch to
 * post-copy, the switch-over with its downtime and the end; a title with
 * the domain, the destination, the result and the total time. A
 * self-contained SVG document of CTL_REPORT_WIDTH x CTL_REPORT_HEIGHT.
 * domain: the name for the title.
 *
 * Fails (-ENODATA / -EPROTO) with a sentence in *ret_error when there is
 * nothing to draw: an incoming migration (its passes are the source's), a
 * job that sent no memory, or statistics without a history (an older
 * vmigrated).
 */
int ctl_report_svg(GVariant *stats, const char *domain, char **ret_svg, char **ret_error);

/*
 * The command: Domain.GetJobStats of DOMAIN, its picture written to output
 * ('-': standard output). Returns a CTL_EXIT_* code, having said what went
 * wrong on stderr.
 */
int ctl_report_run(sd_bus *bus, const CtlHost *host, const char *domain, const char *output, bool quiet);
