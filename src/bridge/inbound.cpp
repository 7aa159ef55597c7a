// Inbound bridge: durable JetStream pull consumer -> ackring queue.
//
// The rule: a JetStream message is acked only after the ackring publish of
// it returned ok (for a sync queue that means its journal record is on
// disk). Each publish is keyed by the JetStream message — its Nats-Msg-Id
// when it has one, else stream name + stream seq + stored time — so when
// JetStream redelivers (our ack was lost, the bridge died between publish
// and ack, the ack wait ran out), the publish is a dedup hit in the queue and
// enqueues nothing. A full queue is answered with a nak with a delay: the
// message stays in JetStream (back-pressure), never dropped.
#include <nats/nats.h>

#include <mutex>
#include <optional>
#include <thread>

#include "ackring/ackring.hpp"
#include "ackring/bridge.hpp"
#include "common.hpp"
#include "nats_link.hpp"

namespace ackring::bridge {

using detail::mono_ms;

struct Inbound::Impl {
  InboundOptions o;
  std::atomic<bool> stop{false};
  std::optional<Queue> queue;
  std::optional<Producer> producer;
  std::filesystem::path queue_path;
  detail::FileId queue_id;
  std::uint32_t queue_max_message = 0;

  mutable std::mutex status_mu;
  BridgeStatus st;
  std::unique_ptr<detail::StatusPublisher> publisher;
  std::uint64_t next_lag_ms = 0;
  std::unique_ptr<detail::NatsLink> link;
  natsSubscription* sub = nullptr;

  ~Impl() {
    if (sub != nullptr) natsSubscription_Destroy(sub);  // before the link closes the connection
  }

  void log(const std::string& line) const {
    if (o.log) o.log(line);
  }
  template <class F>
  void with_status(F&& f) {
    std::lock_guard lock(status_mu);
    f(st);
  }

  void open_queue() {
    queue.emplace(Queue::open(o.queue));
    const QueueOptions qo = queue->options();
    if (!qo.dedup)
      throw BridgeError(BridgeErrorCode::queue,
                        "queue '" + queue->path().string() +
                            "' has no dedup table: the inbound bridge publishes keyed by the JetStream message so "
                            "that a redelivery is not a second message; create the queue with dedup on");
    queue_path = queue->path();
    queue_id = detail::FileId::of(queue_path);
    queue_max_message = qo.max_message_size;
    producer.emplace(queue->producer());
  }

  // The key of a JetStream message in the queue's dedup table.
  static std::string key_of(natsMsg* msg, const std::string& stream) {
    const char* id = nullptr;
    if (natsMsgHeader_Get(msg, "Nats-Msg-Id", &id) == NATS_OK && id != nullptr && *id != '\0')
      return std::string("nats-id:") + id;
    jsMsgMetaData* meta = nullptr;
    std::string key = "nats-seq:" + stream + ":";
    if (natsMsg_GetMetaData(&meta, msg) == NATS_OK && meta != nullptr) {
      // The stored time separates a stream that was deleted and created again
      // (its seqs restart) from the old one within the dedup window.
      key += std::to_string(meta->Sequence.Stream) + ":" + std::to_string(meta->Timestamp);
      jsMsgMetaData_Destroy(meta);
    }
    return key;
  }

  void reopen_queue() {
    log("queue '" + queue_path.string() + "' was removed or replaced; waiting for it to exist again");
    producer.reset();
    queue.reset();
    while (!stop.load(std::memory_order_relaxed)) {
      try {
        open_queue();
        publisher->retarget(queue_path);
        with_status([&](BridgeStatus& s) { ++s.queue_reopens; });
        log("queue '" + queue_path.string() + "' opened again");
        return;
      } catch (const Error&) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
  }

  void update_status(bool force) {
    const std::uint64_t now = mono_ms();
    if (force || now >= next_lag_ms) {
      next_lag_ms = now + 1000;
      jsConsumerInfo* ci = nullptr;
      jsOptions jo;
      jsOptions_Init(&jo);
      jo.Wait = 500;
      if (js_GetConsumerInfo(&ci, link->js(), o.stream.c_str(), o.consumer.c_str(), &jo, nullptr) == NATS_OK &&
          ci != nullptr) {
        with_status([&](BridgeStatus& s) { s.lag = ci->NumPending; });
        jsConsumerInfo_Destroy(ci);
      }
    }
    BridgeStatus snapshot;
    with_status([&](BridgeStatus& s) {
      s.connected = link->connected();
      s.reconnects = link->reconnects();
      snapshot = s;
    });
    publisher->maybe_write(snapshot, force);
  }

  // Checks the durable consumer the options name, or creates it when the
  // stream has none by that name.
  void ensure_consumer() {
    jsConsumerInfo* ci = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    const natsStatus s = js_GetConsumerInfo(&ci, link->js(), o.stream.c_str(), o.consumer.c_str(), nullptr, &jerr);
    if (s == NATS_OK && ci != nullptr) {
      const bool push = ci->Config != nullptr && ci->Config->DeliverSubject != nullptr;
      const bool explicit_ack = ci->Config != nullptr && ci->Config->AckPolicy == js_AckExplicit;
      jsConsumerInfo_Destroy(ci);
      if (push)
        throw BridgeError(BridgeErrorCode::no_stream, "consumer '" + o.consumer + "' of stream '" + o.stream +
                                                          "' is a push consumer; the bridge needs a pull consumer");
      if (!explicit_ack)
        throw BridgeError(BridgeErrorCode::no_stream,
                          "consumer '" + o.consumer + "' of stream '" + o.stream +
                              "' does not use explicit acks; the bridge acks each message after it is in the queue");
    } else if (jerr == JSConsumerNotFoundErr || s == NATS_NOT_FOUND) {
      create_consumer();
    } else {
      throw BridgeError(BridgeErrorCode::no_stream, "consumer '" + o.consumer + "' of stream '" + o.stream +
                                                        "': " + detail::nats_error(s));
    }
  }

  void create_consumer() {
    jsConsumerInfo* ci = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = o.consumer.c_str();
    cc.AckPolicy = js_AckExplicit;
    if (!o.filter_subject.empty()) cc.FilterSubject = o.filter_subject.c_str();
    const natsStatus s = js_AddConsumer(&ci, link->js(), o.stream.c_str(), &cc, nullptr, &jerr);
    if (s != NATS_OK)
      throw BridgeError(BridgeErrorCode::no_stream, "cannot create consumer '" + o.consumer + "' on stream '" +
                                                        o.stream + "': " + detail::nats_error(s));
    jsConsumerInfo_Destroy(ci);
    log("created durable pull consumer '" + o.consumer + "' on stream '" + o.stream + "'");
  }

  void subscribe() {
    jsErrCode jerr = static_cast<jsErrCode>(0);
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = o.stream.c_str();
    so.Consumer = o.consumer.c_str();
    const natsStatus s = js_PullSubscribe(&sub, link->js(), o.filter_subject.empty() ? nullptr : o.filter_subject.c_str(),
                                          o.consumer.c_str(), nullptr, &so, &jerr);
    if (s != NATS_OK)
      throw BridgeError(BridgeErrorCode::no_stream, "cannot pull from consumer '" + o.consumer + "' of stream '" +
                                                        o.stream + "': " + detail::nats_error(s));
  }

  void init_status() {
    st.name = o.name;
    st.direction = "in";
    st.pid = static_cast<std::int32_t>(::getpid());
    st.start_time = process_start_time(st.pid);
    st.queue = queue_path.string();
    st.server = o.nats.url;
    st.stream = o.stream;
    st.consumer = o.consumer;
    publisher = std::make_unique<detail::StatusPublisher>(queue_path, o.name);
  }

  [[nodiscard]] bool queue_replaced() const { return !(detail::FileId::of(queue_path) == queue_id); }

  // Fetches up to `want` messages into `list`; false (list destroyed) when
  // there is nothing to forward this round.
  bool fetch(natsMsgList& list, int want) {
    jsErrCode jerr = static_cast<jsErrCode>(0);
    const natsStatus s = natsSubscription_Fetch(&list, sub, want, 500, &jerr);
    if (s == NATS_TIMEOUT || (s == NATS_OK && list.Count == 0)) {
      natsMsgList_Destroy(&list);
      return false;
    }
    if (s != NATS_OK) {
      // Disconnected, server restarting, consumer briefly gone: retry.
      natsMsgList_Destroy(&list);
      with_status([&](BridgeStatus& b) { b.last_error = "fetch: " + detail::nats_error(s); });
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      return false;
    }
    return true;
  }

  enum class Forwarded : std::uint8_t { acked, backed_off, failed };

  // Publishes one message into the queue and acks it, or naks it: with a
  // delay when the queue is full (back-pressure), at once with `fatal` set
  // when it can never go in.
  Forwarded forward(natsMsg* msg, std::chrono::nanoseconds publish_wait, std::int64_t nak_delay_ms,
                    std::optional<BridgeError>& fatal) {
    const auto len = static_cast<std::size_t>(natsMsg_GetDataLength(msg));
    const Bytes payload(reinterpret_cast<const std::byte*>(natsMsg_GetData(msg)), len);
    const std::string key = key_of(msg, o.stream);
    if (len > queue_max_message) {
      natsMsg_Nak(msg, nullptr);
      fatal.emplace(BridgeErrorCode::too_large,
                    "message " + key + " of stream '" + o.stream + "' is " + std::to_string(len) +
                        " bytes: more than queue '" + queue_path.string() + "' takes (max_message_size " +
                        std::to_string(queue_max_message) +
                        "); it was given back to JetStream (nak); recreate the queue with a larger "
                        "max_message_size, or remove the message from the stream");
      return Forwarded::failed;
    }
    const PublishResult r = producer->publish(payload, PublishOptions{.key = key}, publish_wait);
    if (r.ok()) {
      // The ack may be lost (connection drop): JetStream then redelivers
      // after its ack wait, and the keyed publish above is a dedup hit.
      const natsStatus as = natsMsg_Ack(msg, nullptr);
      with_status([&](BridgeStatus& b) {
        if (r.duplicate) ++b.dedup_hits;
        else ++b.forwarded;
        if (as == NATS_OK) ++b.acked;
        else b.last_error = "ack: " + detail::nats_error(as);
      });
      return Forwarded::acked;
    }
    if (r.status == Status::queue_full || r.status == Status::timeout || r.status == Status::dedup_full) {
      natsMsg_NakWithDelay(msg, nak_delay_ms, nullptr);
      with_status([&](BridgeStatus& b) {
        ++b.retries;
        b.last_error = std::string("queue: ") + std::string(to_string(r.status)) + "; nak with delay";
      });
      return Forwarded::backed_off;
    }
    natsMsg_Nak(msg, nullptr);
    fatal.emplace(r.status == Status::too_large ? BridgeErrorCode::too_large : BridgeErrorCode::queue,
                  "publish of " + key + " into queue '" + queue_path.string() +
                      "' failed: " + std::string(to_string(r.status)));
    return Forwarded::failed;
  }

  // Forwards a fetched batch; after a back-off or a fatal error the rest is
  // handed back to JetStream. Returns whether it backed off.
  bool forward_batch(const natsMsgList& list, std::chrono::nanoseconds publish_wait, std::int64_t nak_delay_ms,
                     std::optional<BridgeError>& fatal, std::uint64_t& acked_total) {
    bool backed_off = false;
    for (int i = 0; i < list.Count; ++i) {
      natsMsg* msg = list.Msgs[i];
      if (backed_off || fatal) {
        // Back-pressure (or stopping): hand the rest back to JetStream.
        natsMsg_NakWithDelay(msg, nak_delay_ms, nullptr);
        with_status([&](BridgeStatus& b) { ++b.retries; });
        continue;
      }
      switch (forward(msg, publish_wait, nak_delay_ms, fatal)) {
        case Forwarded::acked: ++acked_total; break;
        case Forwarded::backed_off: backed_off = true; break;
        case Forwarded::failed: break;
      }
    }
    return backed_off;
  }
};

namespace {

void check_options(const InboundOptions& o) {
  if (o.queue.empty() || o.stream.empty() || o.consumer.empty())
    throw BridgeError(BridgeErrorCode::invalid_argument, "inbound bridge needs a queue, a stream and a consumer");
  if (o.consumer.find_first_of(". *>") != std::string::npos)
    throw BridgeError(BridgeErrorCode::invalid_argument,
                      "consumer name '" + o.consumer + "' may not contain '.', ' ', '*' or '>'");
  if (o.batch == 0) throw BridgeError(BridgeErrorCode::invalid_argument, "batch must be at least 1");
}

}  // namespace

Inbound::Inbound(InboundOptions options) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.o = std::move(options);
  check_options(m.o);
  if (m.o.name.empty()) m.o.name = "in." + m.o.consumer;
  // The queue first: it is local and cheap to check, and nothing is taken from JetStream yet.
  try {
    m.open_queue();
  } catch (const Error& e) {
    throw BridgeError(BridgeErrorCode::queue, e.what());
  }
  m.link = std::make_unique<detail::NatsLink>(m.o.nats, m.o.log);
  jsStreamInfo_Destroy(m.link->stream_info(m.o.stream));
  m.ensure_consumer();
  m.subscribe();
  m.init_status();
  m.log("pulling stream '" + m.o.stream + "' consumer '" + m.o.consumer + "' into queue '" +
        m.queue_path.filename().string() + "'");
}

Inbound::Inbound(Inbound&&) noexcept = default;
Inbound& Inbound::operator=(Inbound&&) noexcept = default;
Inbound::~Inbound() = default;

void Inbound::stop() noexcept { impl_->stop.store(true, std::memory_order_relaxed); }

BridgeStatus Inbound::status() const {
  std::lock_guard lock(impl_->status_mu);
  return impl_->st;
}

void Inbound::run(std::uint64_t max_messages) {
  Impl& m = *impl_;
  const auto publish_wait = std::chrono::duration_cast<std::chrono::nanoseconds>(m.o.publish_wait);
  const std::int64_t nak_delay_ms = static_cast<std::int64_t>(m.o.full_nak_delay.count());  // libnats takes ms
  std::optional<BridgeError> fatal;
  std::uint64_t acked_total = 0;
  while (!m.stop.load(std::memory_order_relaxed) && (max_messages == 0 || acked_total < max_messages) && !fatal) {
    m.update_status(false);
    // Checked before every batch: publishing into a queue file that was
    // removed would ack messages into a file nobody reads.
    if (m.queue_replaced()) {
      m.reopen_queue();
      if (!m.producer) break;
    }
    natsMsgList list{};
    const int want = static_cast<int>(max_messages == 0
                                          ? m.o.batch
                                          : std::min<std::uint64_t>(m.o.batch, max_messages - acked_total));
    if (!m.fetch(list, want)) continue;
    // Fetch may have waited 500 ms: check the queue file again before
    // publishing into it. What is left is the time to publish one batch: a
    // queue removed within it loses that batch with the rest of its contents
    // (removing a queue discards its messages).
    if (m.queue_replaced()) {
      for (int i = 0; i < list.Count; ++i) natsMsg_Nak(list.Msgs[i], nullptr);
      natsMsgList_Destroy(&list);
      m.reopen_queue();
      if (!m.producer) break;
      continue;
    }
    m.with_status([&](BridgeStatus& b) { b.in_flight = static_cast<std::uint64_t>(list.Count); });
    const bool backed_off = m.forward_batch(list, publish_wait, nak_delay_ms, fatal, acked_total);
    natsMsgList_Destroy(&list);
    m.with_status([&](BridgeStatus& b) { b.in_flight = 0; });
    if (backed_off) std::this_thread::sleep_for(m.o.full_nak_delay);
  }
  // Let the acks and naks written above reach the server before we return
  // (the connection is closed when the bridge is destroyed).
  natsConnection_FlushTimeout(m.link->connection(), 1000);
  m.update_status(true);
  if (fatal) throw *fatal;
}

}  // namespace ackring::bridge
