#include "nats_link.hpp"

#include <algorithm>
#include <chrono>

namespace ackring::bridge::detail {

std::string nats_error(natsStatus s) {
  std::string text = natsStatus_GetText(s);
  natsStatus last = NATS_OK;
  const char* detail = nats_GetLastError(&last);
  // The error stack repeats the status text behind a source location: add it only when it says more.
  if (detail != nullptr && *detail != '\0' && std::string_view(detail).find(text) == std::string_view::npos)
    text += std::string(" (") + detail + ")";
  return text;
}

bool subject_matches(std::string_view pattern, std::string_view subject) {
  for (;;) {
    const auto pd = pattern.find('.');
    const auto sd = subject.find('.');
    const std::string_view pt = pattern.substr(0, pd);
    const std::string_view st = subject.substr(0, sd);
    if (pt == ">") return !subject.empty();
    if (pt != "*" && pt != st) return false;
    if (pd == std::string_view::npos || sd == std::string_view::npos) return pd == sd;
    pattern.remove_prefix(pd + 1);
    subject.remove_prefix(sd + 1);
  }
}

NatsLink::NatsLink(const NatsOptions& options, LogFn log, jsPubAckHandler ack_handler, void* ack_closure,
                   std::int64_t max_pending)
    : url_(options.url),
      log_(std::move(log)),
      wait_ms_(std::max<std::int64_t>(1, options.reconnect_wait.count())),
      wait_max_ms_(std::max<std::int64_t>(1, options.reconnect_wait_max.count())),
      request_ms_(std::max<std::int64_t>(1, options.request_timeout.count())) {
  auto fail = [&](natsStatus s, const std::string& what) {
    const std::string msg = what + ": " + nats_error(s);
    if (js_ != nullptr) jsCtx_Destroy(js_);
    if (nc_ != nullptr) natsConnection_Destroy(nc_);
    if (opts_ != nullptr) natsOptions_Destroy(opts_);
    js_ = nullptr;
    nc_ = nullptr;
    opts_ = nullptr;
    return BridgeError(BridgeErrorCode::unreachable, msg);
  };
  natsStatus s = natsOptions_Create(&opts_);
  if (s == NATS_OK) s = natsOptions_SetURL(opts_, url_.c_str());
  if (s != NATS_OK) {
    BridgeError e = fail(s, "bad NATS server URL '" + url_ + "'");
    throw BridgeError(BridgeErrorCode::invalid_argument, e.what());
  }
  s = natsOptions_SetTimeout(opts_, std::max<std::int64_t>(1, options.connect_timeout.count()));
  // Reconnect for ever: the bridge is a long-running process and a server
  // restart is routine. What was published meanwhile is retried by the bridge.
  if (s == NATS_OK) s = natsOptions_SetMaxReconnect(opts_, -1);
  if (s == NATS_OK) s = natsOptions_SetCustomReconnectDelay(opts_, &NatsLink::reconnect_delay, this);
  if (s == NATS_OK) s = natsOptions_SetDisconnectedCB(opts_, &NatsLink::on_disconnected, this);
  if (s == NATS_OK) s = natsOptions_SetReconnectedCB(opts_, &NatsLink::on_reconnected, this);
  if (s == NATS_OK) s = natsOptions_SetClosedCB(opts_, &NatsLink::on_closed, this);
  if (s != NATS_OK) throw fail(s, "NATS options");
  s = natsConnection_Connect(&nc_, opts_);
  if (s != NATS_OK)
    throw fail(s, "cannot connect to NATS server " + url_ + " (is nats-server running, with -js?)");
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = request_ms_;
  if (ack_handler != nullptr) {
    jo.PublishAsync.AckHandler = ack_handler;
    jo.PublishAsync.AckHandlerClosure = ack_closure;
    jo.PublishAsync.MaxPending = max_pending;
  }
  s = natsConnection_JetStream(&js_, nc_, &jo);
  if (s != NATS_OK) throw fail(s, "JetStream context on " + url_);
  this->log("connected to " + url_);
}

NatsLink::~NatsLink() {
  if (js_ != nullptr) jsCtx_Destroy(js_);
  if (nc_ != nullptr) {
    closing_.store(true, std::memory_order_relaxed);
    natsConnection_Close(nc_);
    std::unique_lock lock(closed_mu_);
    closed_cv_.wait_for(lock, std::chrono::seconds(5), [this] { return closed_; });
    lock.unlock();
    natsConnection_Destroy(nc_);
  }
  if (opts_ != nullptr) natsOptions_Destroy(opts_);
}

bool NatsLink::connected() const noexcept { return natsConnection_Status(nc_) == NATS_CONN_STATUS_CONNECTED; }

jsStreamInfo* NatsLink::stream_info(const std::string& stream) const {
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  const natsStatus s = js_GetStreamInfo(&si, js_, stream.c_str(), nullptr, &jerr);
  if (s == NATS_OK && si != nullptr) return si;
  if (jerr == JSStreamNotFoundErr || s == NATS_NOT_FOUND)
    throw BridgeError(BridgeErrorCode::no_stream,
                      "stream '" + stream + "' not found on " + url_ + "; create it first (e.g. 'nats stream add')");
  if (s == NATS_NO_RESPONDERS || jerr == JSNotEnabledErr || jerr == JSNotEnabledForAccountErr)
    throw BridgeError(BridgeErrorCode::no_stream,
                      "JetStream is not enabled on " + url_ + "; start nats-server with -js");
  throw BridgeError(BridgeErrorCode::no_stream, "stream '" + stream + "' on " + url_ + ": " + nats_error(s));
}

void NatsLink::on_disconnected(natsConnection*, void* closure) {
  if (static_cast<NatsLink*>(closure)->closing_.load(std::memory_order_relaxed)) return;  // our own close
  static_cast<NatsLink*>(closure)->log("disconnected from " + static_cast<NatsLink*>(closure)->url_ +
                                       "; reconnecting with back-off");
}

void NatsLink::on_reconnected(natsConnection*, void* closure) {
  auto* self = static_cast<NatsLink*>(closure);
  self->reconnects_.fetch_add(1, std::memory_order_relaxed);
  self->log("reconnected to " + self->url_);
}

void NatsLink::on_closed(natsConnection*, void* closure) {
  auto* self = static_cast<NatsLink*>(closure);
  std::lock_guard lock(self->closed_mu_);
  self->closed_ = true;
  self->closed_cv_.notify_all();
}

std::int64_t NatsLink::reconnect_delay(natsConnection*, int attempts, void* closure) {
  const auto* self = static_cast<NatsLink*>(closure);
  std::int64_t d = self->wait_ms_;
  for (int i = 1; i < attempts && d < self->wait_max_ms_; ++i) d *= 2;
  return std::min(d, self->wait_max_ms_);
}

}  // namespace ackring::bridge::detail
