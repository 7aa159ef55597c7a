// Outbound bridge: ackring group -> JetStream subject, at-least-once, with a
// stable Nats-Msg-Id per message so that JetStream's duplicate window turns
// every re-send (after a lost ack, a reconnect, or a bridge crash) into a
// dropped duplicate.
//
// The rule everything below keeps: an ackring delivery is acked only after a
// JetStream publish ack (plain or Duplicate) for exactly that message — same
// queue file, same seq, same publish time, i.e. the same Nats-Msg-Id. Until
// then the message is held under an ackring lease that the bridge extends;
// if the bridge dies the lease comes back to the group (the member's process
// is seen dead) and the next bridge publishes it again with the same id.
//
// Threads: run() owns the ackring Consumer (one Consumer per thread). The
// publish-ack handler runs on a libnats thread and only appends to
// `completions_` under `mu_`; run() takes them from there.
#include <nats/nats.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "ackring/ackring.hpp"
#include "ackring/bridge.hpp"
#include "common.hpp"
#include "nats_link.hpp"

namespace ackring::bridge {

using detail::mono_ms;

std::string outbound_msg_id(std::string_view queue_file_name, std::uint64_t seq, std::uint64_t publish_time_ns) {
  std::string id = "ackring:";
  id += queue_file_name;
  id += ':';
  id += std::to_string(seq);
  id += ':';
  id += std::to_string(publish_time_ns);
  return id;
}

std::string outbound_key_msg_id(const std::array<std::uint64_t, 2>& key_fingerprint) {
  char hex[33];
  std::snprintf(hex, sizeof hex, "%016llx%016llx", static_cast<unsigned long long>(key_fingerprint[1]),
                static_cast<unsigned long long>(key_fingerprint[0]));
  return std::string("ackring-key:") + hex;
}

namespace {

constexpr const char* kHdrQueue = "Ackring-Queue";
constexpr const char* kHdrSeq = "Ackring-Seq";
constexpr const char* kHdrTime = "Ackring-Publish-Time";
constexpr const char* kHdrKeyed = "Ackring-Keyed";
constexpr const char* kHdrMsgId = "Nats-Msg-Id";

// One message taken from the group and not yet acked there.
struct Pending {
  Receipt receipt;
  std::string msg_id;
  std::vector<std::byte> payload;  // a copy: a re-send must not depend on the lease still holding the slot
  std::uint64_t publish_time_ns = 0;
  bool keyed = false;
  bool awaiting = false;            // a publish is outstanding (else: waiting for retry_at_ms)
  std::uint64_t sent_ms = 0;
  std::uint64_t retry_at_ms = 0;
  std::uint32_t failures = 0;
  std::uint64_t lease_until_ms = 0;
};

struct Completion {
  std::uint64_t seq = 0;
  std::string msg_id;
  bool ok = false;
  bool duplicate = false;
  natsStatus status = NATS_OK;
  int js_code = 0;
  std::string text;
};

// JetStream error codes that no retry can fix.
bool permanent(int js_code) {
  return js_code == JSStreamMessageExceedsMaximumErr || js_code == JSStreamNotFoundErr ||
         js_code == 10060 /* expected stream does not match */;
}

}  // namespace

struct Outbound::Impl {
  OutboundOptions o;
  std::atomic<bool> stop{false};

  // Filled by the ack handler (libnats thread), drained by run().
  std::mutex mu;
  std::condition_variable cv;
  bool waiting = false;  // run() sleeps on cv: only then is a wake-up (a futex call) worth making
  std::vector<Completion> completions;

  std::optional<Queue> queue;
  std::optional<Consumer> consumer;
  std::filesystem::path queue_path;
  std::string queue_file_name;
  detail::FileId queue_id;
  std::unordered_map<std::uint64_t, Pending> pending;
  std::int64_t stream_max_msg = -1;  // payload + headers JetStream accepts (-1: server's max_payload only)
  std::int64_t server_max_payload = 0;

  mutable std::mutex status_mu;  // status() may be called from another thread
  BridgeStatus st;
  std::unique_ptr<detail::StatusPublisher> publisher;
  std::optional<BridgeError> fatal;
  std::uint64_t next_housekeeping_ms = 0;
  std::uint64_t next_queue_check_ms = 0;

  // Declared last: destroyed first, so no ack handler runs into a dead Impl.
  std::unique_ptr<detail::NatsLink> link;

  void log(const std::string& line) const {
    if (o.log) o.log(line);
  }

  static void on_ack(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* closure) {
    auto* self = static_cast<Impl*>(closure);
    Completion c;
    const char* v = nullptr;
    if (natsMsgHeader_Get(msg, kHdrSeq, &v) == NATS_OK && v != nullptr) c.seq = std::strtoull(v, nullptr, 10);
    if (natsMsgHeader_Get(msg, kHdrMsgId, &v) == NATS_OK && v != nullptr) c.msg_id = v;
    if (pa != nullptr) {
      c.ok = true;
      c.duplicate = pa->Duplicate;
    } else if (pae != nullptr) {
      c.status = pae->Err;
      c.js_code = static_cast<int>(pae->ErrCode);
      c.text = pae->ErrText != nullptr ? pae->ErrText : natsStatus_GetText(pae->Err);
    }
    natsMsg_Destroy(msg);
    bool wake = false;
    {
      std::lock_guard lock(self->mu);
      self->completions.push_back(std::move(c));
      wake = self->waiting;
    }
    if (wake) self->cv.notify_one();
  }

  void open_queue() {
    queue.emplace(Queue::open(o.queue));
    queue_path = queue->path();
    queue_file_name = queue_path.filename().string();
    queue_id = detail::FileId::of(queue_path);
    ConsumerOptions co;
    co.lease = std::chrono::duration_cast<Millis>(o.lease);
    co.create_group = true;
    consumer.emplace(queue->consumer(o.group, co));
  }

  void set_error(const std::string& e) {
    std::lock_guard lock(status_mu);
    st.last_error = e;
  }

  template <class F>
  void with_status(F&& f) {
    std::lock_guard lock(status_mu);
    f(st);
  }

  void send(std::uint64_t seq, Pending& p) {
    natsMsg* m = nullptr;
    natsStatus s = natsMsg_Create(&m, o.subject.c_str(), nullptr, reinterpret_cast<const char*>(p.payload.data()),
                                  static_cast<int>(p.payload.size()));
    const std::string seq_text = std::to_string(seq);
    const std::string time_text = std::to_string(p.publish_time_ns);
    if (s == NATS_OK) s = natsMsgHeader_Set(m, kHdrQueue, queue_file_name.c_str());
    if (s == NATS_OK) s = natsMsgHeader_Set(m, kHdrSeq, seq_text.c_str());
    if (s == NATS_OK) s = natsMsgHeader_Set(m, kHdrTime, time_text.c_str());
    if (s == NATS_OK && p.keyed) s = natsMsgHeader_Set(m, kHdrKeyed, "true");
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MsgId = p.msg_id.c_str();
    po.ExpectStream = o.stream.c_str();
    po.MaxWait = o.nats.request_timeout.count();
    if (s == NATS_OK) s = js_PublishMsgAsync(link->js(), &m, &po);
    natsMsg_Destroy(m);  // no-op when the library took the message
    p.sent_ms = mono_ms();
    if (s == NATS_OK) {
      p.awaiting = true;
      return;
    }
    // Not sent (disconnected with a full reconnect buffer, ...): try again later.
    schedule_retry(p, "publish: " + detail::nats_error(s));
  }

  void schedule_retry(Pending& p, const std::string& why) {
    p.awaiting = false;
    ++p.failures;
    const std::uint64_t backoff = std::min<std::uint64_t>(2000, 50ull << std::min<std::uint32_t>(p.failures, 6));
    p.retry_at_ms = mono_ms() + backoff;
    with_status([&](BridgeStatus& s) {
      ++s.retries;
      s.last_error = why;
    });
  }

  // Takes up to the free room of new deliveries and publishes them; returns how many.
  std::size_t take_new(std::chrono::milliseconds wait) {
    const std::size_t room = o.max_in_flight > pending.size() ? o.max_in_flight - pending.size() : 0;
    if (room == 0 || fatal) return 0;
    Delivery batch[64];
    const std::size_t want = std::min<std::size_t>(room, 64);
    const std::size_t n = wait.count() > 0 ? consumer->receive_batch(std::span(batch, want), wait)
                                           : consumer->try_receive_batch(std::span(batch, want));
    const std::uint64_t now = mono_ms();
    for (std::size_t i = 0; i < n; ++i) {
      const Delivery& d = batch[i];
      const auto payload = d.payload();
      if (too_large_for_stream(payload.size())) {
        // Nothing of it was sent; its lease goes back when the bridge stops.
        fatal.emplace(BridgeErrorCode::too_large,
                      "message seq " + std::to_string(d.seq()) + " of queue '" + queue_file_name + "' is " +
                          std::to_string(payload.size()) + " bytes: more than stream '" + o.stream +
                          "' accepts (max_msg_size " + std::to_string(stream_max_msg) + ", server max_payload " +
                          std::to_string(server_max_payload) +
                          "); raise the stream's limit, or take the message out of the group (ackring sub)");
        // The rest of the batch is published as usual, so it is not left half-done.
        continue;
      }
      Pending p;
      p.receipt = d.receipt();
      p.msg_id = d.has_key() ? outbound_key_msg_id(d.key_fingerprint())
                             : outbound_msg_id(queue_file_name, d.seq(), d.publish_time_ns());
      p.payload.assign(payload.begin(), payload.end());
      p.publish_time_ns = d.publish_time_ns();
      p.keyed = d.has_key();
      p.lease_until_ms = now + static_cast<std::uint64_t>(o.lease.count());
      auto [it, inserted] = pending.insert_or_assign(d.seq(), std::move(p));
      (void)inserted;
      with_status([&](BridgeStatus& s) { ++s.forwarded; });
      send(d.seq(), it->second);
    }
    return n;
  }

  [[nodiscard]] bool too_large_for_stream(std::size_t size) const {
    // Headers take a few hundred bytes; leave room for them under max_payload.
    constexpr std::int64_t kHeaderRoom = 512;
    const auto sz = static_cast<std::int64_t>(size);
    if (stream_max_msg > 0 && sz + kHeaderRoom > stream_max_msg) return true;
    return server_max_payload > 0 && sz + kHeaderRoom > server_max_payload;
  }

  // Applies publish acks: ack the ackring delivery, or schedule a re-send.
  bool drain_completions() {
    std::vector<Completion> got;
    {
      std::lock_guard lock(mu);
      got.swap(completions);
    }
    for (Completion& c : got) {
      auto it = pending.find(c.seq);
      // An ack for a message we no longer hold (acked already, or a queue
      // that was replaced since): nothing to do.
      if (it == pending.end() || it->second.msg_id != c.msg_id) continue;
      Pending& p = it->second;
      if (c.ok) {
        const Status s = consumer->ack(p.receipt);
        with_status([&](BridgeStatus& b) {
          if (c.duplicate) ++b.dedup_hits;
          if (s == Status::ok) ++b.acked;
        });
        // lease_lost: the lease ran out and the message went to another
        // member (or will come back to us): it is in the stream, so a re-send
        // anywhere is a duplicate JetStream drops.
        pending.erase(it);
      } else if (permanent(c.js_code)) {
        fatal.emplace(c.js_code == JSStreamMessageExceedsMaximumErr ? BridgeErrorCode::too_large
                                                                     : BridgeErrorCode::rejected,
                      "JetStream refused message seq " + std::to_string(c.seq) + " of queue '" + queue_file_name +
                          "' for stream '" + o.stream + "': " + c.text + " (error " + std::to_string(c.js_code) +
                          ")");
        p.awaiting = false;
        p.retry_at_ms = UINT64_MAX;
      } else {
        schedule_retry(p, "publish ack: " + c.text);
      }
    }
    return !got.empty();
  }

  bool resend_due() {
    if (fatal) return false;
    const std::uint64_t now = mono_ms();
    const auto stale_ms = 2 * static_cast<std::uint64_t>(o.nats.request_timeout.count());
    bool any = false;
    for (auto& [seq, p] : pending) {
      if (!p.awaiting && p.retry_at_ms <= now) {
        send(seq, p);
        any = true;
      } else if (p.awaiting && now - p.sent_ms > stale_ms) {
        // No answer at all (the request was lost with a connection): send
        // again. If the first one did get stored, JetStream drops this one.
        schedule_retry(p, "no publish ack within " + std::to_string(stale_ms) + " ms");
      }
    }
    return any;
  }

  void extend_leases() {
    const std::uint64_t now = mono_ms();
    const auto lease = static_cast<std::uint64_t>(o.lease.count());
    for (auto it = pending.begin(); it != pending.end();) {
      Pending& p = it->second;
      if (p.lease_until_ms > now + lease / 2) {
        ++it;
        continue;
      }
      if (consumer->extend(p.receipt, std::chrono::duration_cast<Millis>(o.lease)) == Status::ok) {
        p.lease_until_ms = now + lease;
        ++it;
      } else {
        // Lost (the bridge stalled past its lease): the message is someone
        // else's now; whoever has it publishes it with the same id.
        it = pending.erase(it);
      }
    }
  }

  // The queue file was removed or replaced: what we hold belongs to a file
  // nobody uses; drop it and wait for the queue to exist again.
  void reopen_queue() {
    log("queue '" + queue_path.string() + "' was removed or replaced; waiting for it to exist again");
    pending.clear();
    consumer.reset();
    queue.reset();
    while (!stop.load(std::memory_order_relaxed)) {
      try {
        open_queue();
        publisher->retarget(queue_path);
        with_status([&](BridgeStatus& s) {
          ++s.queue_reopens;
          s.queue = queue_path.string();
        });
        log("queue '" + queue_path.string() + "' opened again");
        return;
      } catch (const Error&) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
  }

  void housekeeping(bool force_status = false) {
    const std::uint64_t now = mono_ms();
    if (!force_status && now < next_housekeeping_ms) return;
    next_housekeeping_ms = now + 100;
    extend_leases();
    std::uint64_t lag = 0;
    if (queue) {
      for (const GroupStats& g : queue->stats().groups)
        if (g.name == o.group) lag = g.lag;
    }
    BridgeStatus snapshot;
    with_status([&](BridgeStatus& s) {
      s.in_flight = pending.size();
      s.lag = lag;
      s.connected = link->connected();
      s.reconnects = link->reconnects();
      snapshot = s;
    });
    publisher->maybe_write(snapshot, force_status);
  }

  bool queue_replaced() {
    const std::uint64_t now = mono_ms();
    if (now < next_queue_check_ms) return false;
    next_queue_check_ms = now + 500;
    return !(detail::FileId::of(queue_path) == queue_id);
  }

  // Waits (bounded) for the publishes still outstanding, acking those that land.
  void settle_outstanding() {
    const std::uint64_t deadline = mono_ms() + static_cast<std::uint64_t>(o.nats.request_timeout.count());
    while (mono_ms() < deadline &&
           std::any_of(pending.begin(), pending.end(), [](const auto& kv) { return kv.second.awaiting; })) {
      {
        std::unique_lock lock(mu);
        waiting = true;
        cv.wait_for(lock, std::chrono::milliseconds(10), [&] { return !completions.empty(); });
        waiting = false;
      }
      drain_completions();
    }
  }
};

Outbound::Outbound(OutboundOptions options) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.o = std::move(options);
  if (m.o.queue.empty() || m.o.group.empty() || m.o.stream.empty() || m.o.subject.empty())
    throw BridgeError(BridgeErrorCode::invalid_argument, "outbound bridge needs a queue, a group, a stream and a subject");
  if (m.o.max_in_flight == 0)
    throw BridgeError(BridgeErrorCode::invalid_argument, "max_in_flight must be at least 1");
  if (m.o.lease.count() < 100)
    throw BridgeError(BridgeErrorCode::invalid_argument, "lease must be at least 100 ms");
  if (m.o.name.empty()) m.o.name = "out." + m.o.group;
  // Connect and check the stream before taking anything from the queue, so a
  // bad server, stream or subject leaves the group untouched.
  // No MaxPending in libnats (0): the bridge bounds what is outstanding
  // itself (max_in_flight). A bound in the library as well could fill up with
  // publishes whose acks were lost in a disconnect and stall every publish.
  m.link = std::make_unique<detail::NatsLink>(m.o.nats, m.o.log, &Impl::on_ack, &m, 0);
  jsStreamInfo* si = m.link->stream_info(m.o.stream);
  bool subject_ok = false;
  for (int i = 0; si->Config != nullptr && i < si->Config->SubjectsLen; ++i)
    subject_ok = subject_ok || detail::subject_matches(si->Config->Subjects[i], m.o.subject);
  if (si->Config != nullptr && si->Config->SubjectsLen == 0) subject_ok = m.o.subject == m.o.stream;
  std::string subjects;
  for (int i = 0; si->Config != nullptr && i < si->Config->SubjectsLen; ++i)
    subjects += (i ? ", " : "") + std::string(si->Config->Subjects[i]);
  m.stream_max_msg = si->Config != nullptr ? si->Config->MaxMsgSize : -1;
  const std::int64_t dup_window_ns = si->Config != nullptr ? si->Config->Duplicates : 0;
  jsStreamInfo_Destroy(si);
  if (!subject_ok)
    throw BridgeError(BridgeErrorCode::no_stream, "subject '" + m.o.subject + "' is not a subject of stream '" +
                                                      m.o.stream + "' (its subjects: " + subjects + ")");
  m.server_max_payload = natsConnection_GetMaxPayload(m.link->connection());
  try {
    m.open_queue();
  } catch (const Error& e) {
    throw BridgeError(BridgeErrorCode::queue, e.what());
  }
  m.st.name = m.o.name;
  m.st.direction = "out";
  m.st.pid = static_cast<std::int32_t>(::getpid());
  m.st.start_time = process_start_time(m.st.pid);
  m.st.queue = m.queue_path.string();
  m.st.group = m.o.group;
  m.st.server = m.o.nats.url;
  m.st.stream = m.o.stream;
  m.st.subject = m.o.subject;
  m.publisher = std::make_unique<detail::StatusPublisher>(m.queue_path, m.o.name);
  m.log("forwarding queue '" + m.queue_file_name + "' group '" + m.o.group + "' to stream '" + m.o.stream +
        "' subject '" + m.o.subject + "' (duplicate window " + std::to_string(dup_window_ns / 1'000'000'000) + " s)");
}

Outbound::Outbound(Outbound&&) noexcept = default;
Outbound& Outbound::operator=(Outbound&&) noexcept = default;
Outbound::~Outbound() = default;

void Outbound::stop() noexcept { impl_->stop.store(true, std::memory_order_relaxed); }

BridgeStatus Outbound::status() const {
  std::lock_guard lock(impl_->status_mu);
  return impl_->st;
}

void Outbound::run(std::uint64_t max_messages) {
  Impl& m = *impl_;
  auto done = [&] {
    if (m.stop.load(std::memory_order_relaxed)) return true;
    if (max_messages == 0) return false;
    std::lock_guard lock(m.status_mu);
    return m.st.acked >= max_messages;
  };
  while (!done() && !m.fatal) {
    if (m.queue_replaced()) m.reopen_queue();
    if (!m.consumer) break;  // stopped while waiting for the queue
    bool progress = m.drain_completions();
    progress = m.resend_due() || progress;
    // Block in receive only when nothing is outstanding; otherwise poll, so
    // publish acks are applied promptly.
    progress = m.take_new(m.pending.empty() ? std::chrono::milliseconds(20) : std::chrono::milliseconds(0)) > 0 ||
               progress;
    m.housekeeping();
    if (!progress && !m.pending.empty()) {
      std::unique_lock lock(m.mu);
      m.waiting = true;
      m.cv.wait_for(lock, std::chrono::milliseconds(2), [&] { return !m.completions.empty(); });
      m.waiting = false;
    }
  }
  m.settle_outstanding();
  m.housekeeping(true);
  if (m.fatal) throw *m.fatal;
}

}  // namespace ackring::bridge
