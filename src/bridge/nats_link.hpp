// NatsLink: one NATS connection with its JetStream context, owned (RAII) by a
// bridge. It connects once at start (failure: BridgeError(unreachable) —
// a typo in the URL must not look like an outage), then reconnects forever
// with a doubling back-off, counting reconnects and logging each state
// change. Callbacks run on libnats threads: they only touch atomics and the
// log function, which must be thread-safe.
#pragma once

#include <nats/nats.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <cstdint>
#include <string>
#include <string_view>

#include "ackring/bridge.hpp"

namespace ackring::bridge::detail {

class NatsLink {
 public:
  // `async` (outbound): the publish-ack handler and the bound on pending async publishes.
  NatsLink(const NatsOptions& options, LogFn log, jsPubAckHandler ack_handler = nullptr, void* ack_closure = nullptr,
           std::int64_t max_pending = 0);
  ~NatsLink();
  NatsLink(const NatsLink&) = delete;
  NatsLink& operator=(const NatsLink&) = delete;

  [[nodiscard]] natsConnection* connection() const noexcept { return nc_; }
  [[nodiscard]] jsCtx* js() const noexcept { return js_; }
  [[nodiscard]] bool connected() const noexcept;
  [[nodiscard]] std::uint64_t reconnects() const noexcept { return reconnects_.load(std::memory_order_relaxed); }
  [[nodiscard]] const std::string& url() const noexcept { return url_; }

  // The stream's configuration, or BridgeError(no_stream) naming what to do.
  // The caller destroys the result with jsStreamInfo_Destroy.
  [[nodiscard]] jsStreamInfo* stream_info(const std::string& stream) const;

  void log(std::string_view line) const {
    if (log_) log_(line);
  }

 private:
  static void on_disconnected(natsConnection* nc, void* closure);
  static void on_reconnected(natsConnection* nc, void* closure);
  static void on_closed(natsConnection* nc, void* closure);
  static std::int64_t reconnect_delay(natsConnection* nc, int attempts, void* closure);

  std::string url_;
  LogFn log_;
  std::int64_t wait_ms_;
  std::int64_t wait_max_ms_;
  std::int64_t request_ms_;
  natsOptions* opts_ = nullptr;
  natsConnection* nc_ = nullptr;
  jsCtx* js_ = nullptr;
  std::atomic<std::uint64_t> reconnects_{0};
  // The closed callback is the last one libnats makes: the destructor waits
  // for it, so no callback runs on a destroyed link.
  std::mutex closed_mu_;
  std::condition_variable closed_cv_;
  bool closed_ = false;
  std::atomic<bool> closing_{false};
};

// "NATS error: <text> (<details from the library's error stack>)".
[[nodiscard]] std::string nats_error(natsStatus s);

// True if `subject` matches the NATS subject pattern `pattern` ('*' one token, '>' the rest).
[[nodiscard]] bool subject_matches(std::string_view pattern, std::string_view subject);

}  // namespace ackring::bridge::detail
