// ackring._ackring: the Python binding, written with pybind11 over the C API
// (include/ackring/ackring.h) rather than over the C++ classes, so that the
// Python package depends only on the stable C ABI (libackring_c.so.1) and
// shares the C API's argument checks and error mapping.
//
// Lifetimes. A received payload points into the queue's shared mapping. The
// mapping lives while any C handle of the queue lives, so every Python object
// that can reach the mapping holds the queue handle through a shared_ptr:
// Producer, Consumer and Message each keep it, and Queue.close() only drops
// the Queue's own reference. A memoryview of a payload keeps its Message (its
// buffer owner) alive, so reading one is never a use-after-unmap; what it
// shows after the message is settled is whatever the slot holds by then.
//
// Blocking calls release the GIL and wait in slices of at most kSliceNs,
// checking for signals between slices, so Ctrl-C (KeyboardInterrupt)
// interrupts a receive or publish that waits without limit.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "ackring/ackring.h"

namespace py = pybind11;

namespace {

constexpr std::int64_t kSliceNs = 100'000'000;  // longest wait without checking for signals

// ---- errors ----
// Error (base, .status holds the C status code), with subclasses for the
// outcomes callers catch. Those that mean the same as a built-in exception
// derive from it too (Timeout is a TimeoutError, NotFound a FileNotFoundError).
struct Errors {
  PyObject* base = nullptr;
  PyObject* queue_full = nullptr;
  PyObject* timeout = nullptr;
  PyObject* lease_lost = nullptr;
  PyObject* too_large = nullptr;
  PyObject* invalid_argument = nullptr;
  PyObject* not_found = nullptr;
  PyObject* already_exists = nullptr;
};
Errors g_errors;

[[noreturn]] void raise_status(ackring_status s, const char* what = nullptr) {
  PyObject* type = g_errors.base;
  switch (s) {
    case ACKRING_QUEUE_FULL: type = g_errors.queue_full; break;
    case ACKRING_TIMEOUT:
    case ACKRING_E_TIMEOUT: type = g_errors.timeout; break;
    case ACKRING_LEASE_LOST: type = g_errors.lease_lost; break;
    case ACKRING_TOO_LARGE: type = g_errors.too_large; break;
    case ACKRING_E_INVALID_ARGUMENT: type = g_errors.invalid_argument; break;
    case ACKRING_E_NOT_FOUND: type = g_errors.not_found; break;
    case ACKRING_E_ALREADY_EXISTS: type = g_errors.already_exists; break;
    default: break;
  }
  const std::string message = what != nullptr ? what : ackring_last_error();
  py::object error = py::reinterpret_steal<py::object>(PyObject_CallFunction(type, "s", message.c_str()));
  if (!error) throw py::error_already_set();
  error.attr("status") = static_cast<int>(s);
  PyErr_SetObject(type, error.ptr());
  throw py::error_already_set();
}

void check(ackring_status s) {
  if (s != ACKRING_OK) raise_status(s);
}

// timeout in seconds (None: no limit) -> C nanoseconds (negative: no limit).
std::int64_t to_ns(const std::optional<double>& seconds) {
  if (!seconds) return ACKRING_FOREVER;
  if (std::isnan(*seconds) || *seconds < 0) throw py::value_error("timeout must be None or >= 0 seconds");
  if (*seconds > 9e9) return ACKRING_FOREVER;
  return static_cast<std::int64_t>(std::llround(*seconds * 1e9));
}

std::uint64_t to_ms(double seconds, const char* what) {
  if (std::isnan(seconds) || seconds < 0) throw py::value_error(std::string(what) + " must be >= 0 seconds");
  return static_cast<std::uint64_t>(std::llround(seconds * 1e3));
}

// Calls `attempt(slice_ns)` (with the GIL released) until it returns
// something other than ACKRING_TIMEOUT or the whole timeout has passed;
// between slices, pending signals run their Python handlers (Ctrl-C raises).
template <class F>
ackring_status wait_in_slices(std::int64_t timeout_ns, F&& attempt) {
  if (timeout_ns == 0) return attempt(0);  // never blocks: releasing the GIL would cost more than the call
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    std::int64_t slice = kSliceNs;
    if (timeout_ns > 0) {
      const std::int64_t elapsed =
          std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count();
      if (elapsed >= timeout_ns) return ACKRING_TIMEOUT;
      slice = std::min(slice, timeout_ns - elapsed);
    }
    ackring_status s;
    {
      py::gil_scoped_release nogil;
      s = attempt(slice);
    }
    if (s != ACKRING_TIMEOUT) return s;
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
  }
}

// ---- handles ----

using QueueRef = std::shared_ptr<ackring_queue>;

QueueRef adopt(ackring_queue* q) { return QueueRef(q, ackring_queue_close); }

// A handle used by two threads at once would break the C++ API's one-thread
// rule; this flag turns that into an exception instead of a data race.
class Busy {
 public:
  explicit Busy(std::atomic<bool>& flag) : flag_(flag) {
    if (flag_.exchange(true, std::memory_order_acquire))
      throw std::runtime_error("ackring: a Producer or Consumer is used by two threads at once");
  }
  ~Busy() { flag_.store(false, std::memory_order_release); }
  Busy(const Busy&) = delete;
  Busy& operator=(const Busy&) = delete;

 private:
  std::atomic<bool>& flag_;
};

struct ConsumerCore {
  QueueRef queue;
  ackring_consumer* consumer = nullptr;  // NULL once closed
  std::string group;
  std::atomic<bool> busy{false};
  ~ConsumerCore() { ackring_consumer_close(consumer); }
  ackring_consumer* get() const {
    if (consumer == nullptr) throw std::runtime_error("ackring: the consumer is closed");
    return consumer;
  }
};

class Message {
 public:
  Message(std::shared_ptr<ConsumerCore> core, const ackring_message& m) : core_(std::move(core)), m_(m) {}

  std::uint64_t seq() const { return m_.seq; }
  std::uint32_t deliveries() const { return m_.deliveries; }
  bool redelivered() const { return m_.deliveries > 1; }
  bool has_key() const { return (m_.flags & ACKRING_MESSAGE_HAS_KEY) != 0; }
  // The 16-byte fingerprint of the publish key (the queue keeps no more), or None.
  py::object key() const {
    if (!has_key()) return py::none();
    return py::bytes(reinterpret_cast<const char*>(m_.key_fingerprint), sizeof m_.key_fingerprint);
  }
  bool replayed() const { return (m_.flags & ACKRING_MESSAGE_REPLAYED) != 0; }
  std::uint64_t publish_time_ns() const { return m_.publish_time_ns; }
  bool settled() const { return settled_; }
  std::size_t length() const { return m_.length; }
  py::bytes bytes() const { return {static_cast<const char*>(m_.payload), m_.length}; }
  py::str text() const {
    return py::reinterpret_steal<py::str>(
        check_ptr(PyUnicode_DecodeUTF8(static_cast<const char*>(m_.payload), static_cast<Py_ssize_t>(m_.length),
                                       "strict")));
  }
  py::buffer_info buffer() const {
    return py::buffer_info(const_cast<void*>(m_.payload), 1, py::format_descriptor<std::uint8_t>::format(), 1,
                           {static_cast<py::ssize_t>(m_.length)}, {1}, /*readonly=*/true);
  }

  // Settling uses the consumer: the same one-thread-at-a-time rule applies.
  void ack() {
    Busy busy(core_->busy);
    settle(ackring_ack(consumer(), &m_));
  }
  void nack(double delay) {
    const std::uint64_t ms = to_ms(delay, "delay");
    Busy busy(core_->busy);
    settle(ackring_nack(consumer(), &m_, ms));
  }
  void extend(double lease) {
    const std::uint64_t ms = to_ms(lease, "lease");
    Busy busy(core_->busy);
    check(ackring_extend(consumer(), &m_, ms));
  }
  void reject() {
    Busy busy(core_->busy);
    settle(ackring_reject(consumer(), &m_));
  }

  // Consumer::process_once with a Python handler: an exception from it is
  // carried across the C call and raised again; nothing is recorded then.
  bool process_once(const py::object& self, const py::object& handler) {
    struct Call {
      const py::object* self;
      const py::object* handler;
      std::optional<py::error_already_set> error;
    } call{&self, &handler, std::nullopt};
    auto trampoline = [](const ackring_message*, void* user) -> int {
      auto* c = static_cast<Call*>(user);
      try {
        (*c->handler)(*c->self);
        return 0;
      } catch (py::error_already_set& e) {
        c->error = std::move(e);
        return 1;
      }
    };
    Busy busy(core_->busy);
    const ackring_status s = ackring_process_once(consumer(), &m_, trampoline, &call);
    if (s == ACKRING_HANDLER_FAILED && call.error) throw std::move(*call.error);
    if (s == ACKRING_DUPLICATE) {
      settled_ = true;
      return false;
    }
    settle(s);
    return true;
  }

  const ackring_message& raw() const { return m_; }
  ackring_consumer* consumer() const { return core_->get(); }
  void mark_settled() { settled_ = true; }

 private:
  static PyObject* check_ptr(PyObject* p) {
    if (p == nullptr) throw py::error_already_set();
    return p;
  }
  void settle(ackring_status s) {
    check(s);
    settled_ = true;
  }

  std::shared_ptr<ConsumerCore> core_;  // keeps the consumer's queue mapping alive
  ackring_message m_;
  bool settled_ = false;
};

class Consumer {
 public:
  explicit Consumer(std::shared_ptr<ConsumerCore> core) : core_(std::move(core)) {}

  std::optional<Message> receive(const std::optional<double>& timeout) {
    Busy busy(core_->busy);
    ackring_consumer* c = core_->get();
    ackring_message m;
    const ackring_status s =
        wait_in_slices(to_ns(timeout), [&](std::int64_t slice) { return ackring_receive(c, &m, slice); });
    if (s == ACKRING_TIMEOUT || s == ACKRING_EMPTY) return std::nullopt;
    check(s);
    return Message(core_, m);
  }

  std::vector<Message> receive_batch(std::size_t max, const std::optional<double>& timeout) {
    if (max == 0) throw py::value_error("max must be > 0");
    Busy busy(core_->busy);
    ackring_consumer* c = core_->get();
    std::vector<ackring_message> raw(max);
    std::size_t n = 0;
    const ackring_status s = wait_in_slices(
        to_ns(timeout), [&](std::int64_t slice) { return ackring_receive_batch(c, raw.data(), max, slice, &n); });
    std::vector<Message> out;
    if (s == ACKRING_TIMEOUT || s == ACKRING_EMPTY) return out;
    check(s);
    out.reserve(n);
    for (std::size_t i = 0; i < n; ++i) out.emplace_back(core_, raw[i]);
    return out;
  }

  std::size_t ack_batch(const std::vector<Message*>& messages) {
    Busy busy(core_->busy);
    ackring_consumer* c = core_->get();
    std::vector<ackring_message> raw;
    raw.reserve(messages.size());
    for (const Message* m : messages) raw.push_back(m->raw());
    std::size_t acked = 0;
    const ackring_status s = ackring_ack_batch(c, raw.data(), raw.size(), &acked);
    if (s != ACKRING_OK && s != ACKRING_LEASE_LOST) raise_status(s);
    // Acked now or settled before (a lost lease is another delivery's to
    // settle): either way not this handle's to ack again, e.g. in `with msg:`.
    for (Message* m : messages) m->mark_settled();
    return acked;
  }

  // Consumer::process_once_batch with a Python handler, under process_once's
  // rule for an exception from it: the messages before it are acked, it and
  // the rest are not, and it is raised again.
  py::dict process_once_batch(const py::list& messages, const py::object& handler) {
    std::vector<Message*> held;
    std::vector<ackring_message> raw;
    for (py::handle item : messages) {
      held.push_back(&item.cast<Message&>());
      raw.push_back(held.back()->raw());
    }
    struct Call {
      const py::list* messages;
      const py::object* handler;
      const ackring_message* first;
      std::optional<py::error_already_set> error;
      std::size_t failed_at = 0;
    } call{&messages, &handler, raw.data(), std::nullopt};
    auto trampoline = [](const ackring_message* m, void* user) -> int {
      auto* c = static_cast<Call*>(user);
      const auto i = static_cast<std::size_t>(m - c->first);
      try {
        (*c->handler)((*c->messages)[i]);
        return 0;
      } catch (py::error_already_set& e) {
        c->error = std::move(e);
        c->failed_at = i;
        return 1;
      }
    };
    Busy busy(core_->busy);
    ackring_process_counts counts{};
    const ackring_status s =
        ackring_process_once_batch(core_->get(), raw.data(), raw.size(), trampoline, &call, &counts);
    if (s == ACKRING_HANDLER_FAILED) {
      for (std::size_t i = 0; i < call.failed_at; ++i) held[i]->mark_settled();
      if (call.error) throw std::move(*call.error);
    }
    if (s != ACKRING_OK && s != ACKRING_LEASE_LOST) raise_status(s);
    for (Message* m : held) m->mark_settled();
    py::dict d;
    d["handled"] = counts.handled;
    d["duplicates"] = counts.duplicates;
    d["acked"] = counts.acked;
    d["unrecorded"] = counts.unrecorded;
    return d;
  }

  void close() {
    ackring_consumer_close(core_->consumer);
    core_->consumer = nullptr;
  }
  bool closed() const { return core_->consumer == nullptr; }
  const std::string& group() const { return core_->group; }

 private:
  std::shared_ptr<ConsumerCore> core_;
};

struct PublishResult {
  std::uint64_t seq;
  bool duplicate;
};

class Producer {
 public:
  Producer(QueueRef queue, ackring_producer* p) : queue_(std::move(queue)), p_(p) {}
  ~Producer() { ackring_producer_close(p_); }
  Producer(const Producer&) = delete;
  Producer& operator=(const Producer&) = delete;

  PublishResult publish(const py::object& payload, const py::object& key, const std::optional<double>& timeout) {
    Busy busy(busy_);
    ackring_producer* p = get();
    // The payload and key are read with the GIL released: take a buffer
    // view of them first (bytes-like objects), or encode a str as UTF-8.
    py::object data_holder, key_holder;
    const void* data = nullptr;
    std::size_t length = 0;
    std::optional<py::buffer_info> data_view;
    if (PyBytes_CheckExact(payload.ptr())) {  // the common case, without a buffer request
      data = PyBytes_AS_STRING(payload.ptr());
      length = static_cast<std::size_t>(PyBytes_GET_SIZE(payload.ptr()));
    } else {
      data_view = view(payload, data_holder, "payload");
      data = data_view->ptr;
      length = static_cast<std::size_t>(data_view->size);
    }
    std::optional<py::buffer_info> key_view;
    if (!key.is_none()) key_view = view(key, key_holder, "key");
    ackring_publish_result r{};
    const ackring_status s = wait_in_slices(to_ns(timeout), [&](std::int64_t slice) {
      if (key_view)
        return ackring_publish_keyed(p, data, length, key_view->ptr, static_cast<std::size_t>(key_view->size), slice,
                                     &r);
      return ackring_publish(p, data, length, slice, &r);
    });
    check(s);
    return {r.seq, r.duplicate != 0};
  }

  PublishResult publish_batch(const py::list& payloads, const std::optional<double>& timeout) {
    Busy busy(busy_);
    ackring_producer* p = get();
    std::vector<py::object> holders(payloads.size());
    std::vector<py::buffer_info> views;
    std::vector<ackring_buffer> buffers;
    views.reserve(payloads.size());
    for (std::size_t i = 0; i < payloads.size(); ++i) {
      views.push_back(view(payloads[i], holders[i], "payload"));
      buffers.push_back({views.back().ptr, static_cast<std::size_t>(views.back().size)});
    }
    if (buffers.empty()) throw py::value_error("publish_batch needs at least one payload");
    ackring_publish_result r{};
    check(wait_in_slices(to_ns(timeout), [&](std::int64_t slice) {
      return ackring_publish_batch(p, buffers.data(), buffers.size(), slice, &r);
    }));
    return {r.seq, r.duplicate != 0};
  }

  // (payload, key) pairs, key None: unkeyed. Not all or nothing: the error
  // raised for a message that failed carries `results`, those of the
  // messages before it (published or duplicate).
  std::vector<PublishResult> publish_keyed_batch(const py::list& messages, const std::optional<double>& timeout) {
    Busy busy(busy_);
    ackring_producer* p = get();
    const std::size_t n = messages.size();
    std::vector<py::object> holders(2 * n);
    std::vector<py::buffer_info> views;  // held (not released) while the bytes are read without the GIL
    views.reserve(2 * n);
    std::vector<ackring_keyed_buffer> buffers;
    buffers.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      const py::handle item = messages[i];
      if (!py::isinstance<py::tuple>(item) || py::len(item) != 2)
        throw py::value_error("publish_keyed_batch takes (payload, key) pairs");
      const auto pair = py::reinterpret_borrow<py::tuple>(item);
      views.push_back(view(pair[0], holders[2 * i], "payload"));
      ackring_keyed_buffer b{views.back().ptr, static_cast<std::size_t>(views.back().size), nullptr, 0};
      if (!pair[1].is_none()) {
        views.push_back(view(pair[1], holders[2 * i + 1], "key"));
        b.key = views.back().ptr;
        b.key_length = static_cast<std::size_t>(views.back().size);
      }
      buffers.push_back(b);
    }
    std::vector<ackring_publish_result> raw(n);
    std::size_t done = 0;
    const ackring_status s = wait_in_slices(to_ns(timeout), [&](std::int64_t slice) {
      std::size_t published = 0;
      const ackring_status r =
          ackring_publish_keyed_batch(p, buffers.data() + done, n - done, slice, raw.data() + done, &published);
      done += published;
      return r;
    });
    std::vector<PublishResult> out;
    out.reserve(done);
    for (std::size_t i = 0; i < done; ++i) out.push_back({raw[i].seq, raw[i].duplicate != 0});
    if (s != ACKRING_OK) {
      try {
        raise_status(s);
      } catch (py::error_already_set& e) {
        e.value().attr("results") = py::cast(out);
        throw;
      }
    }
    return out;
  }

  void close() {
    ackring_producer_close(p_);
    p_ = nullptr;
  }
  bool closed() const { return p_ == nullptr; }

 private:
  ackring_producer* get() const {
    if (p_ == nullptr) throw std::runtime_error("ackring: the producer is closed");
    return p_;
  }
  // A contiguous byte view of bytes/bytearray/memoryview, or of a str encoded as UTF-8.
  static py::buffer_info view(py::handle obj, py::object& holder, const char* what) {
    if (py::isinstance<py::str>(obj)) {
      holder = py::reinterpret_steal<py::object>(PyUnicode_AsUTF8String(obj.ptr()));
      if (!holder) throw py::error_already_set();
    } else if (PyObject_CheckBuffer(obj.ptr())) {
      holder = py::reinterpret_borrow<py::object>(obj);
    } else {
      throw py::type_error(std::string(what) + " must be bytes-like or str");
    }
    py::buffer_info info = py::reinterpret_borrow<py::buffer>(holder).request();
    if (info.ndim > 1 || (info.ndim == 1 && info.strides[0] != info.itemsize))
      throw py::value_error(std::string(what) + " must be a contiguous buffer");
    info.size *= info.itemsize;  // bytes
    return info;
  }

  QueueRef queue_;
  ackring_producer* p_;
  std::atomic<bool> busy_{false};
};

// ---- options from keyword arguments ----

void set_queue_option(ackring_queue_options& o, const std::string& k, const py::handle& v, std::string& dir) {
  auto u32 = [&] { return v.cast<std::uint32_t>(); };
  auto u64 = [&] { return v.cast<std::uint64_t>(); };
  if (k == "capacity") o.capacity = u32();
  else if (k == "max_message_size") o.max_message_size = u32();
  else if (k == "default_lease_ms") o.default_lease_ms = u64();
  else if (k == "max_deliveries") o.max_deliveries = u32();
  else if (k == "max_groups") o.max_groups = u32();
  else if (k == "max_members") o.max_members = u32();
  else if (k == "max_producers") o.max_producers = u32();
  else if (k == "claim_timeout_ms") o.claim_timeout_ms = u64();
  else if (k == "mode") o.mode = u32();
  else if (k == "dedup") o.dedup = v.cast<bool>() ? 1 : 0;
  else if (k == "dedup_entries") o.dedup_entries = u32();
  else if (k == "dedup_window_ms") o.dedup_window_ms = u64();
  else if (k == "dedup_full_policy") {
    const auto s = v.cast<std::string>();
    if (s == "refuse") o.dedup_full_policy = ACKRING_DEDUP_FULL_REFUSE;
    else if (s == "evict_oldest") o.dedup_full_policy = ACKRING_DEDUP_FULL_EVICT_OLDEST;
    else throw py::value_error("dedup_full_policy must be 'refuse' or 'evict_oldest'");
  } else if (k == "dedup_bloom") o.dedup_bloom = v.cast<bool>() ? 1 : 0;
  else if (k == "durability") {
    const auto s = v.cast<std::string>();
    if (s == "none") o.durability = ACKRING_DURABILITY_NONE;
    else if (s == "async") o.durability = ACKRING_DURABILITY_ASYNC;
    else if (s == "sync") o.durability = ACKRING_DURABILITY_SYNC;
    else throw py::value_error("durability must be 'none', 'async' or 'sync'");
  } else if (k == "journal_dir") {
    dir = py::str(v).cast<std::string>();
    o.journal_dir = dir.c_str();
  } else if (k == "async_flush_interval_ms") o.async_flush_interval_ms = u64();
  else if (k == "journal_retain_bytes") o.journal_retain_bytes = u64();
  else if (k == "journal_retain_age_s") o.journal_retain_age_s = u64();
  else if (k == "publish_timestamp") {
    const auto s = v.cast<std::string>();
    if (s == "precise") o.publish_timestamp = ACKRING_PUBLISH_TIMESTAMP_PRECISE;
    else if (s == "coarse") o.publish_timestamp = ACKRING_PUBLISH_TIMESTAMP_COARSE;
    else throw py::value_error("publish_timestamp must be 'precise' or 'coarse'");
  }
  else throw py::type_error("unknown queue option '" + k + "'");
}

ackring_queue_options queue_options(const py::kwargs& kw, std::string& dir) {
  ackring_queue_options o;
  ackring_queue_options_init(&o);
  for (auto [k, v] : kw) set_queue_option(o, k.cast<std::string>(), v, dir);
  return o;
}

std::uint32_t overflow_of(const std::string& s) {
  if (s == "block") return ACKRING_OVERFLOW_BLOCK;
  if (s == "drop") return ACKRING_OVERFLOW_DROP;
  throw py::value_error("overflow must be 'block' or 'drop'");
}
std::uint32_t start_of(const std::string& s) {
  if (s == "earliest") return ACKRING_START_EARLIEST;
  if (s == "latest") return ACKRING_START_LATEST;
  throw py::value_error("start must be 'earliest' or 'latest'");
}

class Queue {
 public:
  explicit Queue(QueueRef q) : q_(std::move(q)) {}

  static Queue create(const std::string& name, const py::kwargs& kw) {
    std::string dir;
    const ackring_queue_options o = queue_options(kw, dir);
    ackring_queue* q = nullptr;
    check(ackring_queue_create(name.c_str(), &o, &q));
    return Queue(adopt(q));
  }
  static Queue open(const std::string& name) {
    ackring_queue* q = nullptr;
    check(ackring_queue_open(name.c_str(), &q));
    return Queue(adopt(q));
  }
  static Queue open_or_create(const std::string& name, const py::kwargs& kw) {
    std::string dir;
    const ackring_queue_options o = queue_options(kw, dir);
    ackring_queue* q = nullptr;
    check(ackring_queue_open_or_create(name.c_str(), &o, &q));
    return Queue(adopt(q));
  }
  static Queue recover(const std::string& name, const std::optional<std::string>& journal_dir, const py::kwargs& kw) {
    std::string dir;
    std::optional<ackring_queue_options> o;
    if (kw.size() > 0) o = queue_options(kw, dir);
    ackring_queue* q = nullptr;
    check(ackring_queue_recover(name.c_str(), journal_dir ? journal_dir->c_str() : nullptr, o ? &*o : nullptr,
                                nullptr, &q));
    return Queue(adopt(q));
  }
  static bool destroy(const std::string& name) {
    const ackring_status s = ackring_queue_destroy(name.c_str());
    if (s == ACKRING_E_NOT_FOUND) return false;
    check(s);
    return true;
  }

  Producer* producer() {
    ackring_producer* p = nullptr;
    check(ackring_queue_producer(get(), &p));
    return new Producer(q_, p);
  }

  Consumer consumer(const std::string& group, const std::optional<double>& lease, const std::string& mode,
                    bool create_group, const std::string& overflow, const std::string& start, std::uint64_t spin_us,
                    std::uint64_t linger_us) {
    ackring_consumer_options o;
    ackring_consumer_options_init(&o);
    if (mode == "at_least_once") o.mode = ACKRING_AT_LEAST_ONCE;
    else if (mode == "at_most_once") o.mode = ACKRING_AT_MOST_ONCE;
    else throw py::value_error("mode must be 'at_least_once' or 'at_most_once'");
    if (lease) o.lease_ms = to_ms(*lease, "lease");
    o.create_group = create_group ? 1 : 0;
    o.group_overflow = overflow_of(overflow);
    o.group_start = start_of(start);
    o.spin_us = spin_us;
    o.linger_us = linger_us;
    auto core = std::make_shared<ConsumerCore>();
    core->queue = q_;
    core->group = group;
    check(ackring_queue_consumer(get(), group.c_str(), &o, &core->consumer));
    return Consumer(std::move(core));
  }

  void create_group(const std::string& group, const std::string& overflow, const std::string& start,
                    const py::object& backoff) {
    ackring_group_options o;
    ackring_group_options_init(&o);
    o.overflow = overflow_of(overflow);
    o.start = start_of(start);
    set_backoff(o, backoff);
    check(ackring_queue_create_group(get(), group.c_str(), &o));
  }
  void set_redelivery(const std::string& group, const py::object& backoff) {
    ackring_group_options o;
    ackring_group_options_init(&o);
    set_backoff(o, backoff);
    check(ackring_queue_set_redelivery(get(), group.c_str(), &o));
  }
  // backoff: None (no back-off) or a dict with initial_ms and optionally
  // multiplier, max_ms, jitter ("none", "equal", "full").
  static void set_backoff(ackring_group_options& o, const py::object& backoff) {
    if (backoff.is_none()) return;
    const auto d = backoff.cast<py::dict>();
    for (const auto& [key, value] : d) {
      const auto k = key.cast<std::string>();
      if (k == "initial_ms") o.redelivery_initial_ms = value.cast<std::uint64_t>();
      else if (k == "multiplier") o.redelivery_multiplier = value.cast<double>();
      else if (k == "max_ms") o.redelivery_max_ms = value.cast<std::uint64_t>();
      else if (k == "jitter") o.redelivery_jitter = jitter_of(value.cast<std::string>());
      else throw py::value_error("backoff has no key '" + k + "' (initial_ms, multiplier, max_ms, jitter)");
    }
  }
  static std::uint32_t jitter_of(const std::string& s) {
    if (s == "none") return ACKRING_JITTER_NONE;
    if (s == "equal") return ACKRING_JITTER_EQUAL;
    if (s == "full") return ACKRING_JITTER_FULL;
    throw py::value_error("jitter must be 'none', 'equal' or 'full'");
  }
  bool remove_group(const std::string& group) {
    const ackring_status s = ackring_queue_remove_group(get(), group.c_str());
    if (s == ACKRING_E_NOT_FOUND) return false;
    check(s);
    return true;
  }
  std::uint64_t purge(const std::optional<std::string>& group) {
    std::uint64_t n = 0;
    check(ackring_queue_purge(get(), group ? group->c_str() : nullptr, &n));
    return n;
  }

  py::dict stats() {
    ackring_stats* raw = nullptr;
    check(ackring_queue_stats(get(), &raw));
    std::unique_ptr<ackring_stats, void (*)(ackring_stats*)> s(raw, ackring_stats_free);
    ackring_queue_info q{};
    q.size = sizeof q;
    check(ackring_stats_queue(s.get(), &q));
    py::dict out;
    out["path"] = q.path;
    out["capacity"] = q.capacity;
    out["max_message_size"] = q.max_message_size;
    out["tail"] = q.tail;
    out["published"] = q.published;
    out["aborted"] = q.aborted;
    out["min_floor"] = q.min_floor;
    out["depth"] = q.depth;
    out["durable_seq"] = q.durable_seq;
    out["dedup_hits"] = q.dedup_hits;
    out["dedup_live"] = q.dedup_live;
    out["dedup_keyed_published"] = q.dedup_keyed_published;
    out["dedup_hit_ratio"] = q.dedup_hit_ratio;
    out["producers"] = q.producers;
    py::list groups;
    for (std::size_t i = 0; i < q.groups; ++i) {
      ackring_group_info g{};
      g.size = sizeof g;
      check(ackring_stats_group(s.get(), i, &g));
      py::dict d;
      d["name"] = g.name;
      d["overflow"] = g.overflow == ACKRING_OVERFLOW_DROP ? "drop" : "block";
      d["floor"] = g.floor;
      d["next"] = g.next;
      d["in_flight"] = g.in_flight;
      d["lag"] = g.lag;
      d["delivered"] = g.delivered;
      d["acked"] = g.acked;
      d["redelivered"] = g.redelivered;
      d["nacked"] = g.nacked;
      d["dead_lettered"] = g.dead_lettered;
      d["dropped"] = g.dropped;
      d["lease_expiries"] = g.lease_expiries;
      d["oldest_unacked_seq"] = g.oldest_unacked_seq;
      d["oldest_unacked_age_ms"] = g.oldest_unacked_age_ms;
      d["waiting_redelivery"] = g.waiting_redelivery;
      py::dict by;
      by["expiry"] = g.redelivered_expiry;
      by["death"] = g.redelivered_death;
      by["nack"] = g.redelivered_nack;
      by["released"] = g.redelivered_released;
      d["redelivered_by"] = by;
      d["process_once_skips"] = g.process_once_skips;
      py::dict latency;
      latency["count"] = g.ack_latency_count;
      latency["p50_ms"] = g.ack_latency_p50_ms;
      latency["p99_ms"] = g.ack_latency_p99_ms;
      d["ack_latency"] = latency;
      d["min_member_lease_ms"] = g.min_member_lease_ms;
      d["lease_below_p99"] = g.lease_below_p99 != 0;
      py::dict backoff;
      backoff["initial_ms"] = g.redelivery_initial_ms;
      backoff["multiplier"] = g.redelivery_multiplier;
      backoff["max_ms"] = g.redelivery_max_ms;
      backoff["jitter"] = g.redelivery_jitter == ACKRING_JITTER_FULL ? "full"
                          : g.redelivery_jitter == ACKRING_JITTER_NONE ? "none" : "equal";
      d["redelivery"] = backoff;
      py::list members;
      for (std::size_t j = 0; j < g.members; ++j) {
        ackring_member_info m{};
        m.size = sizeof m;
        check(ackring_stats_member(s.get(), i, j, &m));
        py::dict md;
        md["index"] = m.index;
        md["pid"] = m.pid;
        md["alive"] = m.alive != 0;
        md["delivered"] = m.delivered;
        md["acked"] = m.acked;
        md["in_flight"] = m.in_flight;
        md["idle_ms"] = m.idle_ms;
        md["redelivered"] = m.redelivered;
        md["nacked"] = m.nacked;
        members.append(md);
      }
      d["members"] = members;
      groups.append(d);
    }
    out["groups"] = groups;
    return out;
  }

  std::vector<std::string> group_names() {
    std::vector<std::string> names;
    const py::dict s = stats();  // kept alive: the loop below reads from it
    for (auto g : s["groups"]) names.push_back(g["name"].cast<std::string>());
    return names;
  }

  void close() { q_.reset(); }
  bool closed() const { return !q_; }

 private:
  ackring_queue* get() const {
    if (!q_) throw std::runtime_error("ackring: the queue is closed");
    return q_.get();
  }
  QueueRef q_;
};

PyObject* new_error(py::module_& m, const char* name, PyObject* bases, const char* doc) {
  const std::string qualified = std::string("ackring.") + name;
  PyObject* type = PyErr_NewExceptionWithDoc(qualified.c_str(), doc, bases, nullptr);
  if (type == nullptr) throw py::error_already_set();
  m.add_object(name, py::handle(type));  // the module keeps a reference
  return type;
}

}  // namespace

PYBIND11_MODULE(_ackring, m) {
  m.doc() = "ackring: shared-memory message queues (binding over the C API; use the ackring package)";
  m.attr("__version__") = ackring_version();

  g_errors.base = new_error(m, "Error", PyExc_Exception, "An ackring failure; .status holds the C status code.");
  auto with = [](PyObject* a, PyObject* b) { return py::make_tuple(py::handle(a), py::handle(b)).release().ptr(); };
  g_errors.queue_full = new_error(m, "QueueFull", g_errors.base, "No room in the ring (publish with timeout=0).");
  g_errors.timeout = new_error(m, "Timeout", with(g_errors.base, PyExc_TimeoutError), "Nothing happened in time.");
  g_errors.lease_lost = new_error(m, "LeaseLost", g_errors.base,
                                  "The message was settled already, or its lease ran out and it was handed out again.");
  g_errors.too_large = new_error(m, "TooLarge", with(g_errors.base, PyExc_ValueError),
                                 "The payload is longer than the queue's max_message_size.");
  g_errors.invalid_argument = new_error(m, "InvalidArgument", with(g_errors.base, PyExc_ValueError), "Bad argument.");
  g_errors.not_found = new_error(m, "NotFound", with(g_errors.base, PyExc_FileNotFoundError), "No such queue or group.");
  g_errors.already_exists =
      new_error(m, "AlreadyExists", with(g_errors.base, PyExc_FileExistsError), "The queue or group exists already.");

  py::class_<PublishResult>(m, "PublishResult")
      .def_readonly("seq", &PublishResult::seq)
      .def_readonly("duplicate", &PublishResult::duplicate)
      .def("__repr__", [](const PublishResult& r) {
        return "PublishResult(seq=" + std::to_string(r.seq) + ", duplicate=" + (r.duplicate ? "True" : "False") + ")";
      });

  py::class_<Message>(m, "Message", py::buffer_protocol())
      .def_buffer(&Message::buffer)
      .def_property_readonly("payload", [](py::object self) { return py::memoryview(self); })
      .def_property_readonly("seq", &Message::seq)
      .def_property_readonly("deliveries", &Message::deliveries)
      .def_property_readonly("redelivered", &Message::redelivered)
      .def_property_readonly("has_key", &Message::has_key)
      .def_property_readonly("key", &Message::key,
                             "16-byte XXH3-128 fingerprint of the publish key (the queue keeps no more), or None")
      .def_property_readonly("replayed", &Message::replayed)
      .def_property_readonly("publish_time_ns", &Message::publish_time_ns)
      .def_property_readonly("settled", &Message::settled)
      .def("__len__", &Message::length)
      .def("bytes", &Message::bytes)
      .def("text", &Message::text)
      .def("ack", &Message::ack)
      .def("nack", &Message::nack, py::arg("delay") = 0.0)
      .def("extend", &Message::extend, py::arg("lease"))
      .def("reject", &Message::reject)
      .def("process_once", [](py::object self, py::object handler) {
        return self.cast<Message&>().process_once(self, handler);
      }, py::arg("handler"))
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](Message& msg, py::object type, py::object, py::object) {
        // Unsettled at the end of the block: acked if the block succeeded,
        // given back at once if it raised.
        if (!msg.settled()) {
          if (type.is_none()) msg.ack();
          else msg.nack(0.0);
        }
        return false;
      })
      .def("__repr__", [](const Message& msg) {
        return "Message(seq=" + std::to_string(msg.seq()) + ", deliveries=" + std::to_string(msg.deliveries()) +
               ", length=" + std::to_string(msg.length()) + ")";
      });

  py::class_<Consumer>(m, "Consumer")
      .def("receive", &Consumer::receive, py::arg("timeout") = py::none())
      .def("receive_batch", &Consumer::receive_batch, py::arg("max"), py::arg("timeout") = py::none())
      .def("ack_batch", &Consumer::ack_batch, py::arg("messages"))
      .def("process_once_batch", &Consumer::process_once_batch, py::arg("messages"), py::arg("handler"))
      .def("close", &Consumer::close)
      .def_property_readonly("closed", &Consumer::closed)
      .def_property_readonly("group", &Consumer::group)
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](Consumer& c, py::object, py::object, py::object) { c.close(); return false; })
      .def("__iter__", [](py::object self) { return self; })
      .def("__next__", [](Consumer& c) {
        // Iteration waits without limit (Ctrl-C interrupts) and ends when
        // the consumer is closed.
        if (c.closed()) throw py::stop_iteration();
        auto msg = c.receive(std::nullopt);
        if (!msg) throw py::stop_iteration();
        return std::move(*msg);
      });

  py::class_<Producer>(m, "Producer")
      .def("publish", &Producer::publish, py::arg("payload"), py::arg("key") = py::none(),
           py::arg("timeout") = py::none())
      .def("publish_batch", &Producer::publish_batch, py::arg("payloads"), py::arg("timeout") = py::none())
      .def("publish_keyed_batch", &Producer::publish_keyed_batch, py::arg("messages"),
           py::arg("timeout") = py::none())
      .def("close", &Producer::close)
      .def_property_readonly("closed", &Producer::closed)
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](Producer& p, py::object, py::object, py::object) { p.close(); return false; });

  py::class_<Queue>(m, "Queue")
      .def_static("create", &Queue::create, py::arg("name"))
      .def_static("open", &Queue::open, py::arg("name"))
      .def_static("open_or_create", &Queue::open_or_create, py::arg("name"))
      .def_static("recover", &Queue::recover, py::arg("name"), py::arg("journal_dir") = py::none())
      .def_static("destroy", &Queue::destroy, py::arg("name"))
      .def("producer", &Queue::producer)
      .def("consumer", &Queue::consumer, py::arg("group"), py::arg("lease") = py::none(),
           py::arg("mode") = "at_least_once", py::arg("create_group") = true, py::arg("overflow") = "block",
           py::arg("start") = "earliest", py::arg("spin_us") = 50, py::arg("linger_us") = 0)
      .def("create_group", &Queue::create_group, py::arg("group"), py::arg("overflow") = "block",
           py::arg("start") = "earliest", py::arg("backoff") = py::none())
      .def("set_redelivery", &Queue::set_redelivery, py::arg("group"), py::arg("backoff"))
      .def("remove_group", &Queue::remove_group, py::arg("group"))
      .def("purge", &Queue::purge, py::arg("group") = py::none())
      .def("group_names", &Queue::group_names)
      .def("stats", &Queue::stats)
      .def("close", &Queue::close)
      .def_property_readonly("closed", &Queue::closed)
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](Queue& q, py::object, py::object, py::object) { q.close(); return false; });
}
