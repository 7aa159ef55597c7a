// bridge out / bridge in: run one NATS JetStream bridge process
// (include/ackring/bridge.hpp) in the foreground, logging each event on
// stderr, until SIGINT/SIGTERM. Built in when libnats was found at configure
// time (ACKRING_HAVE_BRIDGE); otherwise `ackring bridge` says how to get it.
#include <CLI/CLI.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <memory>
#include <mutex>
#include <string>

#include "commands.hpp"

#ifdef ACKRING_HAVE_BRIDGE
#include <ackring/bridge.hpp>
#endif

namespace ackring::cli {

namespace {

struct BridgeCliOptions {
  std::string queue;
  std::string server = "nats://127.0.0.1:4222";
  std::string stream;
  std::string group;     // out
  std::string subject;   // out
  std::string consumer;  // in
  std::string filter_subject;
  std::string name;
  std::uint32_t max_in_flight = 512;
  std::uint32_t lease_ms = 30'000;
  std::uint32_t batch = 256;
  std::uint32_t nak_delay_ms = 200;
  std::uint32_t connect_timeout_ms = 2000;
  std::uint32_t request_timeout_ms = 5000;
  std::uint64_t count = 0;
  bool quiet = false;
};

#ifdef ACKRING_HAVE_BRIDGE

// The running bridge, reached from the signal handler: stop() only stores a flag.
std::atomic<bridge::Outbound*> g_out{nullptr};
std::atomic<bridge::Inbound*> g_in{nullptr};
// A signal that came while the bridge was still connecting stops it before it runs.
std::atomic<bool> g_stop_requested{false};

void on_bridge_stop_signal(int) {
  g_stop_requested.store(true);
  if (auto* o = g_out.load()) o->stop();
  if (auto* i = g_in.load()) i->stop();
}

void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_bridge_stop_signal;
  sigemptyset(&sa.sa_mask);
  for (const int s : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(s, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
}

bridge::LogFn logger(bool quiet) {
  if (quiet) return {};
  auto mu = std::make_shared<std::mutex>();
  // Called from libnats threads too (connection events): one line at a time.
  return [mu](std::string_view line) {
    char stamp[32];
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    std::strftime(stamp, sizeof stamp, "%H:%M:%SZ", &tm);
    std::lock_guard lock(*mu);
    std::fprintf(stderr, "ackring bridge %s: %.*s\n", stamp, static_cast<int>(line.size()), line.data());
    std::fflush(stderr);
  };
}

bridge::NatsOptions nats_options(const BridgeCliOptions& o) {
  bridge::NatsOptions n;
  n.url = o.server;
  n.connect_timeout = std::chrono::milliseconds(o.connect_timeout_ms);
  n.request_timeout = std::chrono::milliseconds(o.request_timeout_ms);
  return n;
}

Exit exit_of(bridge::BridgeErrorCode c) {
  switch (c) {
    case bridge::BridgeErrorCode::unreachable:
    case bridge::BridgeErrorCode::no_stream:
      return Exit::not_found;
    case bridge::BridgeErrorCode::queue:
    case bridge::BridgeErrorCode::invalid_argument:
    case bridge::BridgeErrorCode::too_large:
    case bridge::BridgeErrorCode::rejected:
      return Exit::usage;
  }
  return Exit::usage;
}

void summary(const bridge::BridgeStatus& s, const bridge::LogFn& log) {
  if (!log) return;
  log("stopped: forwarded " + std::to_string(s.forwarded) + ", acked " + std::to_string(s.acked) + ", retries " +
      std::to_string(s.retries) + ", dedup hits " + std::to_string(s.dedup_hits) + ", reconnects " +
      std::to_string(s.reconnects));
}

template <class Bridge, class Options>
int run_bridge(Options options, std::uint64_t count, std::atomic<Bridge*>& slot) {
  stand_by_as_journal_writer();  // a sync queue needs a journal writer for publishes / deliveries
  const bridge::LogFn log = options.log;
  install_stop_handlers();
  try {
    Bridge b(std::move(options));
    slot.store(&b);
    if (g_stop_requested.load()) b.stop();
    try {
      b.run(count);
    } catch (...) {
      slot.store(nullptr);
      summary(b.status(), log);
      throw;
    }
    slot.store(nullptr);
    summary(b.status(), log);
  } catch (const bridge::BridgeError& e) {
    throw Failure(exit_of(e.code()), e.what());
  }
  return static_cast<int>(Exit::ok);
}

int run_out(const BridgeCliOptions& o) {
  bridge::OutboundOptions b;
  b.queue = o.queue;
  b.group = o.group;
  b.stream = o.stream;
  b.subject = o.subject;
  b.nats = nats_options(o);
  b.max_in_flight = o.max_in_flight;
  b.lease = std::chrono::milliseconds(o.lease_ms);
  b.name = o.name;
  b.log = logger(o.quiet);
  return run_bridge<bridge::Outbound>(std::move(b), o.count, g_out);
}

int run_in(const BridgeCliOptions& o) {
  bridge::InboundOptions b;
  b.queue = o.queue;
  b.stream = o.stream;
  b.consumer = o.consumer;
  b.filter_subject = o.filter_subject;
  b.nats = nats_options(o);
  b.batch = o.batch;
  b.full_nak_delay = std::chrono::milliseconds(o.nak_delay_ms);
  b.name = o.name;
  b.log = logger(o.quiet);
  return run_bridge<bridge::Inbound>(std::move(b), o.count, g_in);
}

#else

int run_out(const BridgeCliOptions&) {
  throw Failure(Exit::usage,
                "this ackring was built without the NATS bridge (libnats was not found at configure time); "
                "install libnats-dev and build again");
}
int run_in(const BridgeCliOptions& o) { return run_out(o); }

#endif

void add_shared(CLI::App* cmd, const std::shared_ptr<BridgeCliOptions>& o) {
  cmd->add_option("QUEUE", o->queue, "Queue name or path")->required();
  cmd->add_option("--server,-s", o->server, "NATS server URL")->type_name("URL")->capture_default_str();
  cmd->add_option("--stream", o->stream, "JetStream stream (must exist)")->required()->type_name("S");
  cmd->add_option("--name", o->name, "Name of this bridge in stat/top (default: out.GROUP / in.CONSUMER)")
      ->type_name("NAME");
  cmd->add_option("-n,--count", o->count, "Stop after N messages were acked on both sides (default: run until "
                                          "SIGINT/SIGTERM)")
      ->type_name("N");
  cmd->add_option("--connect-timeout", o->connect_timeout_ms,
                  "Give up (exit 2) if the server cannot be reached at start within MS ms")
      ->type_name("MS")
      ->capture_default_str()
      ->check(CLI::Range(1u, 600'000u));
  cmd->add_option("--request-timeout", o->request_timeout_ms, "Wait for a JetStream answer (publish ack, API) MS ms")
      ->type_name("MS")
      ->capture_default_str()
      ->check(CLI::Range(10u, 600'000u));
  cmd->add_flag("--quiet,-q", o->quiet, "Log nothing but errors");
}

}  // namespace

void add_bridge_commands(CLI::App& app, Globals& globals, Action& action) {
  auto* bridge = app.add_subcommand("bridge", "Bridge a queue to or from NATS JetStream (at-least-once, "
                                              "no duplicates in the stream)");
  bridge->footer(
      "Each bridge is one long-running process; run it under a supervisor. It survives NATS server restarts\n"
      "(reconnects for ever, with back-off) and its own crash (messages are re-sent with the same\n"
      "Nats-Msg-Id, which JetStream's duplicate window drops). 'ackring stat QUEUE' shows its counters.");

  auto out = std::make_shared<BridgeCliOptions>();
  auto* o = bridge->add_subcommand("out", "Consume a group of QUEUE and publish each message to JetStream; ack it "
                                          "in the queue after JetStream's publish ack");
  add_shared(o, out);
  o->add_option("--group,-g", out->group, "Group to consume (created at the oldest message if missing)")
      ->required()
      ->type_name("G");
  o->add_option("--subject", out->subject, "Subject to publish to (one of the stream's subjects)")
      ->required()
      ->type_name("SUBJ");
  o->add_option("--max-in-flight", out->max_in_flight, "Publishes awaiting a JetStream ack at once")
      ->type_name("N")
      ->capture_default_str()
      ->check(CLI::Range(1u, 65'536u));
  o->add_option("--lease", out->lease_ms, "Lease of each message in the queue while it is being published "
                                          "(extended as needed)")
      ->type_name("MS")
      ->capture_default_str()
      ->check(CLI::Range(100u, 3'600'000u));
  o->footer(
      "Headers: Nats-Msg-Id 'ackring:<queue file>:<seq>:<publish time ns>' (the same for every re-send;\n"
      "a keyed message: 'ackring-key:<the key's fingerprint>'), Ackring-Queue, Ackring-Seq,\n"
      "Ackring-Publish-Time, Ackring-Keyed.\n"
      "The stream's duplicate window must be longer than a bridge restart takes.\n"
      "Example: ackring bridge out orders -g billing --server nats://10.0.0.5:4222 --stream ORDERS "
      "--subject orders.new");
  add_common_options(*o, globals);
  o->callback([out, &action] { set_action(action, [out] { return run_out(*out); }); });

  auto in = std::make_shared<BridgeCliOptions>();
  auto* i = bridge->add_subcommand("in", "Pull from a durable JetStream consumer and publish into QUEUE keyed by the "
                                         "JetStream message; ack JetStream after the queue has it");
  add_shared(i, in);
  i->add_option("--consumer", in->consumer, "Durable pull consumer (created with explicit acks if missing)")
      ->required()
      ->type_name("DURABLE");
  i->add_option("--filter-subject", in->filter_subject, "Subject filter when creating the consumer")
      ->type_name("SUBJ");
  i->add_option("--batch", in->batch, "Messages per fetch")->type_name("N")->capture_default_str()->check(
      CLI::Range(1u, 10'000u));
  i->add_option("--nak-delay", in->nak_delay_ms, "When the queue is full: nak with this delay (back-pressure)")
      ->type_name("MS")
      ->capture_default_str()
      ->check(CLI::Range(1u, 3'600'000u));
  i->footer(
      "The queue must exist and have its dedup table (the default): a message JetStream redelivers is a\n"
      "dedup hit, not a second message, within the queue's dedup window.\n"
      "Example: ackring bridge in orders --server nats://10.0.0.5:4222 --stream ORDERS --consumer host-b");
  add_common_options(*i, globals);
  i->callback([in, &action] { set_action(action, [in] { return run_in(*in); }); });
}

}  // namespace ackring::cli
