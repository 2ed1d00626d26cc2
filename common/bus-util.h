/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <glib.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

G_DEFINE_AUTOPTR_CLEANUP_FUNC(sd_bus, sd_bus_flush_close_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(sd_bus_message, sd_bus_message_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(sd_bus_slot, sd_bus_slot_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(sd_bus_creds, sd_bus_creds_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(sd_bus_track, sd_bus_track_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(sd_event, sd_event_unref)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(sd_event_source, sd_event_source_unref)
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(sd_bus_error, sd_bus_error_free)

#define BUS_NAME "org.vmigrate.Migrate1"
#define BUS_MANAGER_PATH "/org/vmigrate/Migrate1"
#define BUS_DOMAIN_PREFIX "/org/vmigrate/Migrate1/domain"
#define BUS_MANAGER_INTERFACE "org.vmigrate.Migrate1.Manager"
#define BUS_DOMAIN_INTERFACE "org.vmigrate.Migrate1.Domain"
#define BUS_JOB_PREFIX "/org/vmigrate/Migrate1/job"
#define BUS_JOB_INTERFACE "org.vmigrate.Migrate1.Job"
#define BUS_EVACUATION_PREFIX "/org/vmigrate/Migrate1/evacuation"
#define BUS_EVACUATION_INTERFACE "org.vmigrate.Migrate1.Evacuation"
#define BUS_INCOMING_INTERFACE "org.vmigrate.Migrate1.Incoming"
