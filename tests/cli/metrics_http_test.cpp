// ackring metrics --listen, scraped over loopback with curl and checked with
// `promtool check metrics` (tools/setup.sh installs the packages curl and
// prometheus), and metrics without names (every queue of the directory).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

#include "cli_runner.hpp"

namespace ackring::cli_test {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct Shell {
  int code = -1;
  std::string out;  // stdout and stderr
};

Shell shell(const std::string& command) {
  Shell r;
  FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) r.out.append(buf, n);
  const int status = ::pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

bool have(const char* tool) { return shell(std::string("command -v ") + tool).code == 0; }

struct Http {
  int status = 0;
  std::string headers;  // lower-cased
  std::string body;
};

// One GET with curl (no proxy, 10 s at most).
Http get(const std::string& url) {
  const Shell s = shell("curl -sS -i --noproxy '*' --max-time 10 '" + url + "'");
  Http h;
  const auto split = s.out.find("\r\n\r\n");
  if (s.code != 0 || split == std::string::npos) {
    ADD_FAILURE() << "curl " << url << " failed (" << s.code << "): " << s.out;
    return h;
  }
  h.headers = s.out.substr(0, split);
  for (char& c : h.headers) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  h.body = s.out.substr(split + 4);
  std::sscanf(h.headers.c_str(), "http/1.1 %d", &h.status);
  return h;
}

// The value of the sample `series` (name plus labels exactly as printed), or -1.
double sample(const std::string& text, const std::string& series) {
  const auto at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 2));
}

// `ackring metrics --listen ...` in the background, with the URL it printed.
struct Server {
  Background process;
  std::string url;  // http://127.0.0.1:PORT (no path)
  std::string banner;
};

Server start_server(const Cli& cli, std::vector<std::string> args) {
  args.insert(args.begin(), "metrics");
  int out = -1;
  Background b = cli.start_with_output(args, out);
  const std::string banner = read_until(out, "/metrics\n", std::chrono::seconds(10));
  ::close(out);
  std::smatch m;
  std::string url;
  if (std::regex_search(banner, m, std::regex(R"((http://[^ ]+):([0-9]+)/metrics)")))
    url = m[1].str() + ":" + m[2].str();
  else
    ADD_FAILURE() << "no URL in the banner: '" << banner << "'";
  return {std::move(b), url, banner};
}

// Stops it with `sig`; returns its exit code and checks that it went quickly.
int stop(Server& s, int sig) {
  const auto t0 = Clock::now();
  const int code = s.process.stop(sig);
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(5)) << "slow to stop on signal " << sig;
  return code;
}

#define REQUIRE_TOOLS()                                                                                     \
  do {                                                                                                      \
    if (!have("curl") || !have("promtool"))                                                                 \
      GTEST_FAIL() << "needs curl and promtool (Debian packages curl, prometheus; tools/setup.sh installs them)"; \
  } while (0)

TEST(CliMetricsHttp, should_serve_every_queue_over_loopback_reread_per_scrape_and_pass_promtool) {
  REQUIRE_TOOLS();
  Cli cli;
  cli.ok({"create", "q", "--group", "a", "--group", "b", "--max-deliveries", "1", "--lease", "50"});
  cli.ok({"create", "plain"});
  cli.ok({"create", "safe", "--durability", "sync"});
  cli.ok({"pub", "q"}, "1\n2\n3\n");
  cli.ok({"sub", "q", "-g", "a", "-n", "2"});
  // Group b: the three leases run out untaken; the next receive takes them
  // over past max deliveries (lease expiries) and dead-letters them.
  EXPECT_EQ(cli.run({"sub", "q", "-g", "b", "--no-ack", "--timeout", "20"}).out, "1\n2\n3\n");
  ::usleep(100'000);
  EXPECT_EQ(cli.run({"sub", "q", "-g", "b", "--no-ack", "--timeout", "300"}).code, 0);

  Server s = start_server(cli, {"--listen", "0"});  // no address: loopback; port 0: any free one
  ASSERT_EQ(s.url.rfind("http://127.0.0.1:", 0), 0u) << s.banner;
  EXPECT_NE(s.banner.find("every queue in " + cli.dir()), std::string::npos) << s.banner;

  Http r = get(s.url + "/metrics");
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.headers.find("content-type: text/plain; version=0.0.4; charset=utf-8\r"), std::string::npos)
      << r.headers;
  const std::string& m = r.body;
  for (const char* q : {"q", "plain", "safe", "q.dlq"})
    EXPECT_EQ(sample(m, std::string("ackring_up{queue=\"") + q + "\"}"), 1) << q << "\n" << m;
  EXPECT_EQ(sample(m, "ackring_published_total{queue=\"q\"}"), 3);
  EXPECT_EQ(sample(m, "ackring_group_acked_total{queue=\"q\",group=\"a\"}"), 2);
  EXPECT_EQ(sample(m, "ackring_group_dead_lettered_total{queue=\"q\",group=\"b\"}"), 3);
  EXPECT_EQ(sample(m, "ackring_dlq_depth{queue=\"q\"}"), 3);
  EXPECT_EQ(sample(m, "ackring_dlq_depth{queue=\"plain\"}"), 0);
  EXPECT_GE(sample(m, "ackring_group_lease_expiries_total{queue=\"q\",group=\"b\"}"), 3);
  EXPECT_EQ(sample(m, "ackring_group_lease_expiries_total{queue=\"q\",group=\"a\"}"), 0);
  EXPECT_GE(sample(m, "ackring_group_redelivered_total{queue=\"q\",group=\"b\"}"), 0);
  // Group a left message 3 unacked; group b settled everything (dead letters).
  EXPECT_GT(sample(m, "ackring_group_oldest_unacked_age_seconds{queue=\"q\",group=\"a\"}"), 0.05) << m;
  EXPECT_EQ(sample(m, "ackring_group_oldest_unacked_age_seconds{queue=\"q\",group=\"b\"}"), 0);
  EXPECT_EQ(sample(m, "ackring_journal_lag{queue=\"safe\"}"), 0);
  EXPECT_EQ(sample(m, "ackring_journal_lag{queue=\"plain\"}"), -1) << "no journal series without a journal";

  // promtool lints the exposition as Prometheus would parse it.
  const std::string file = cli.dir() + "/scrape.txt";
  std::ofstream(file) << m;
  const Shell lint = shell("promtool check metrics < '" + file + "'");
  EXPECT_EQ(lint.code, 0) << lint.out;
  EXPECT_EQ(lint.out, "") << "promtool found lint problems";
  // Straight from the endpoint too.
  const Shell piped = shell("curl -sS --noproxy '*' --max-time 10 '" + s.url + "/metrics' | promtool check metrics");
  EXPECT_EQ(piped.code, 0) << piped.out;

  // Every scrape reads the queues again, and sees queues created since.
  cli.ok({"pub", "q"}, "4\n5\n");
  cli.ok({"create", "later"});
  r = get(s.url + "/metrics");
  EXPECT_EQ(sample(r.body, "ackring_published_total{queue=\"q\"}"), 5);
  EXPECT_EQ(sample(r.body, "ackring_up{queue=\"later\"}"), 1);

  r = get(s.url + "/");
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.headers.find("content-type: text/html"), std::string::npos) << r.headers;
  EXPECT_NE(r.body.find("<a href=\"/metrics\">"), std::string::npos) << r.body;
  EXPECT_EQ(get(s.url + "/nope").status, 404);

  EXPECT_EQ(stop(s, SIGTERM), 0);
  EXPECT_NE(shell("curl -sS --noproxy '*' --max-time 2 '" + s.url + "/metrics'").code, 0) << "still serving";
}

// A free TCP port on 127.0.0.1 (bound to port 0, then released).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

// The real thing: a Prometheus server (Debian package prometheus) scrapes the
// exporter every 200 ms; its targets API must call the target up, with no
// scrape error, and its query API must return the samples.
TEST(CliMetricsHttp, should_be_scraped_by_a_prometheus_server) {
  if (!have("prometheus") || !have("curl")) GTEST_FAIL() << "needs prometheus and curl (tools/setup.sh installs them)";
  Cli cli;
  cli.ok({"create", "q", "--group", "g"});
  cli.ok({"pub", "q"}, "1\n2\n");
  Server s = start_server(cli, {"--listen", "0"});
  const std::string target = s.url.substr(std::string("http://").size());
  const std::string config = cli.dir() + "/prometheus.yml";
  std::ofstream(config) << "global: {scrape_interval: 200ms, scrape_timeout: 200ms}\n"
                        << "scrape_configs:\n  - job_name: ackring\n    static_configs: [{targets: [\"" << target
                        << "\"]}]\n";
  const int port = free_port();
  ASSERT_NE(port, 0);
  const std::string api = "http://127.0.0.1:" + std::to_string(port) + "/api/v1";
  const Shell started = shell("(exec prometheus --config.file='" + config + "' --storage.tsdb.path='" + cli.dir() +
                              "/tsdb' --web.listen-address=127.0.0.1:" + std::to_string(port) + " >'" + cli.dir() +
                              "/prometheus.log' 2>&1 & echo $!)");
  const pid_t prometheus = std::atoi(started.out.c_str());
  ASSERT_GT(prometheus, 0) << started.out;
  std::string targets, query;
  const auto deadline = Clock::now() + std::chrono::seconds(60);
  while (Clock::now() < deadline) {
    targets = shell("curl -sS --noproxy '*' --max-time 2 '" + api + "/targets'").out;
    query = shell("curl -sS --noproxy '*' --max-time 2 -G '" + api +
                  "/query' --data-urlencode 'query=ackring_published_total{queue=\"q\"}'")
                .out;
    if (targets.find("\"health\":\"up\"") != std::string::npos && query.find("\"value\"") != std::string::npos)
      break;
    ::usleep(200'000);
  }
  ::kill(prometheus, SIGTERM);
  EXPECT_NE(targets.find("\"health\":\"up\""), std::string::npos) << targets;
  EXPECT_NE(targets.find("\"lastError\":\"\""), std::string::npos) << targets;
  EXPECT_NE(query.find("\"2\"]"), std::string::npos) << "ackring_published_total{queue=\"q\"} as Prometheus stored it: "
                                                      << query;
  for (int i = 0; i < 100 && ::kill(prometheus, 0) == 0; ++i) ::usleep(50'000);
  EXPECT_EQ(stop(s, SIGTERM), 0);
}

TEST(CliMetricsHttp, should_serve_named_queues_only_read_a_missing_one_as_down_and_stop_on_sigint) {
  REQUIRE_TOOLS();
  Cli cli;
  cli.ok({"create", "q", "--group", "g"});
  cli.ok({"create", "not-exported"});
  Server s = start_server(cli, {"q", "missing", "--listen", "127.0.0.1:0"});
  ASSERT_EQ(s.url.rfind("http://127.0.0.1:", 0), 0u) << s.banner;
  EXPECT_NE(s.banner.find("serving metrics of 2 queues"), std::string::npos) << s.banner;
  const Http r = get(s.url + "/metrics");
  EXPECT_EQ(r.status, 200) << "an unreadable queue does not fail the scrape";
  EXPECT_EQ(sample(r.body, "ackring_up{queue=\"q\"}"), 1);
  EXPECT_EQ(sample(r.body, "ackring_up{queue=\"missing\"}"), 0);
  EXPECT_EQ(r.body.find("not-exported"), std::string::npos);
  EXPECT_EQ(get(s.url + "/metrics").status, 200);
  EXPECT_EQ(stop(s, SIGINT), 0);
}

TEST(CliMetricsHttp, should_exit_1_on_a_bad_or_busy_listen_address) {
  Cli cli;
  cli.ok({"create", "q"});
  for (const char* bad : {"", "x", "127.0.0.1:", "127.0.0.1:99999", "localhost:http"}) {
    const Result r = cli.run({"metrics", "q", "--listen", bad});
    EXPECT_EQ(r.code, 1) << bad << ": " << r.err;
  }
  REQUIRE_TOOLS();
  Server s = start_server(cli, {"q", "--listen", "0"});
  const std::string port = s.url.substr(s.url.rfind(':') + 1);
  const Result busy = cli.run({"metrics", "q", "--listen", "127.0.0.1:" + port}, {}, true, std::chrono::seconds(10));
  EXPECT_EQ(busy.code, 1) << busy.err;
  EXPECT_NE(busy.err.find("cannot listen on 127.0.0.1:" + port), std::string::npos) << busy.err;
  EXPECT_EQ(stop(s, SIGTERM), 0);
}

TEST(CliMetrics, should_print_every_queue_of_the_directory_without_names) {
  Cli cli;
  cli.ok({"create", "one"});
  cli.ok({"create", "two"});
  const std::string out = cli.ok({"metrics"});
  EXPECT_NE(out.find("ackring_up{queue=\"one\"} 1\n"), std::string::npos) << out;
  EXPECT_NE(out.find("ackring_up{queue=\"two\"} 1\n"), std::string::npos) << out;
}

}  // namespace
}  // namespace ackring::cli_test
