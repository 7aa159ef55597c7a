// The status file of a running bridge (ackring::bridge::Outbound/Inbound):
// its counters, readable by `ackring stat`, `metrics` and `top` without
// talking to the bridge and without touching the queue file.
//
// Where: next to the queue file, as a hidden file
//   <queue dir>/.<queue file name>.bridge-<bridge name>
// e.g. /dev/shm/.ackring.orders.bridge-out.billing. Hidden, so `ackring ls`
// (files named ackring.*) does not take it for a queue. The bridge rewrites
// it atomically (write a temporary file, rename) a few times a second, and
// removes it when it stops cleanly. After a SIGKILL it stays behind; pid and
// process start time let a reader tell that its writer is dead (a reused pid
// has another start time).
//
// This part needs no NATS client: the CLI reads status files in every build.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace ackring::bridge {

struct BridgeStatus {
  std::string name;         // "out.billing", "in.orders-durable", or --name
  std::string direction;    // "out" (ackring -> JetStream) or "in" (JetStream -> ackring)
  std::int32_t pid = 0;
  std::uint64_t start_time = 0;  // /proc/<pid>/stat field 22 (clock ticks since boot)
  bool alive = false;            // filled by read_bridge_statuses: pid runs with that start time
  std::string queue;             // queue file path
  std::string group;             // out: the ackring group it consumes
  std::string server;            // NATS URL
  std::string stream;
  std::string subject;           // out: subject it publishes to
  std::string consumer;          // in: durable JetStream consumer it pulls from
  bool connected = false;        // to the NATS server, at the last update
  std::uint64_t forwarded = 0;   // out: JetStream publishes sent; in: ackring publishes that stored a new message
  std::uint64_t acked = 0;       // out: ackring acks after a JetStream publish ack; in: JetStream acks sent
  std::uint64_t in_flight = 0;   // taken from the source, not yet acked there
  std::uint64_t retries = 0;     // out: re-sends after an error or timeout; in: naks (queue full, ...)
  std::uint64_t dedup_hits = 0;  // out: publish acks with Duplicate (a re-send JetStream dropped); in: ackring duplicates
  std::uint64_t lag = 0;         // out: the group's lag in the queue; in: the consumer's pending count in JetStream
  std::uint64_t reconnects = 0;  // NATS reconnections since start
  std::uint64_t queue_reopens = 0;  // the queue file was removed or replaced and opened again
  std::uint64_t updated_unix_ms = 0;
  std::string last_error;        // the last transient error, empty if none
};

// The status file of bridge `name` on the queue file `queue_file`.
[[nodiscard]] std::filesystem::path bridge_status_path(const std::filesystem::path& queue_file,
                                                       std::string_view name);

// Writes `status` atomically (temporary file + rename). Throws ackring::Error.
void write_bridge_status(const std::filesystem::path& queue_file, const BridgeStatus& status);

// Removes the status file of bridge `name` (clean stop).
void remove_bridge_status(const std::filesystem::path& queue_file, std::string_view name) noexcept;

// Every status file of bridges on `queue_file`, with `alive` set; files that
// do not parse are skipped. Never throws.
[[nodiscard]] std::vector<BridgeStatus> read_bridge_statuses(const std::filesystem::path& queue_file) noexcept;

// Start time of a process (field 22 of /proc/<pid>/stat), 0 if it is gone.
[[nodiscard]] std::uint64_t process_start_time(std::int32_t pid) noexcept;

}  // namespace ackring::bridge
