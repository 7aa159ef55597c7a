#include "cli_runner.hpp"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <utmp.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>

extern char** environ;

namespace ackring::cli_test {

namespace {

using Clock = std::chrono::steady_clock;

int exit_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// argv/envp arrays pointing into `strings` (which must outlive them).
std::vector<char*> c_array(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

std::vector<std::string> command_line(const std::vector<std::string>& args) {
  std::vector<std::string> argv{binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

std::string describe(const std::vector<std::string>& args) {
  std::string s = "ackring";
  for (const auto& a : args) s += " " + a;
  return s;
}

}  // namespace

const char* binary() noexcept { return ACKRING_CLI_PATH; }

std::string read_until(int fd, const std::string& wanted, std::chrono::milliseconds limit) {
  std::string got;
  const auto deadline = Clock::now() + limit;
  while (got.find(wanted) == std::string::npos && Clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    char buf[4096];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;  // the writer closed it (exited)
    got.append(buf, static_cast<std::size_t>(n));
  }
  return got;
}

Background::~Background() {
  if (pid_ > 0) (void)stop(SIGKILL);
}

int Background::stop(int sig) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, sig);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  return exit_status(status);
}

int Background::wait(std::chrono::milliseconds limit) {
  if (pid_ <= 0) return -1;
  const auto deadline = Clock::now() + limit;
  int status = 0;
  while (Clock::now() < deadline) {
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return exit_status(status);
    }
    ::usleep(10'000);
  }
  (void)stop(SIGKILL);
  return -1;
}

Cli::Cli() {
  std::signal(SIGPIPE, SIG_IGN);  // a child that exits before reading all of stdin is not our death
  std::string templ = (std::filesystem::temp_directory_path() / "ackring-cli-test.XXXXXX").string();
  if (::mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  dir_ = templ;
}

Cli::~Cli() {
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

std::vector<std::string> Cli::environment(bool with_env) const {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e)
    if (std::strncmp(*e, "ACKRING_", 8) != 0) env.emplace_back(*e);  // no setting of the caller's leaks in
  if (with_env) env.push_back("ACKRING_SHM_DIR=" + dir_);
  env.push_back("ACKRING_JOURNAL_DIR=" + journal_dir());
  env.insert(env.end(), extra_env_.begin(), extra_env_.end());
  return env;
}

Result Cli::run(const std::vector<std::string>& args, const std::string& input, bool with_env,
                std::chrono::milliseconds limit) const {
  return run_as(-1, args, input, with_env, limit);
}

Result Cli::run_as(uid_t uid, const std::vector<std::string>& args, const std::string& input, bool with_env,
                   std::chrono::milliseconds limit) const {
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe2: " << std::strerror(errno);
    return {};
  }
  auto argv_s = command_line(args);
  auto env_s = environment(with_env);
  auto argv = c_array(argv_s);
  auto envp = c_array(env_s);
  pid_t pid = -1;
  int rc = 0;
  if (uid == static_cast<uid_t>(-1)) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    rc = ::posix_spawn(&pid, binary(), &fa, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
  } else {
    // posix_spawn cannot change the user: fork, drop privileges, exec.
    pid = ::fork();
    if (pid == 0) {
      if (::dup2(in[0], 0) < 0 || ::dup2(out[1], 1) < 0 || ::dup2(err[1], 2) < 0) ::_exit(126);
      if (::setgroups(0, nullptr) != 0 || ::setgid(uid) != 0 || ::setuid(uid) != 0) ::_exit(126);
      ::execve(binary(), argv.data(), envp.data());
      ::_exit(127);
    }
    rc = pid < 0 ? errno : 0;
  }
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  Result r;
  if (rc != 0) {
    ADD_FAILURE() << "spawn " << binary() << ": " << std::strerror(rc);
    ::close(in[1]);
    ::close(out[0]);
    ::close(err[0]);
    return r;
  }
  ::fcntl(in[1], F_SETFL, O_NONBLOCK);
  std::size_t written = 0;
  int to_child = in[1];
  if (input.empty()) {
    ::close(to_child);
    to_child = -1;
  }
  int from_out = out[0], from_err = err[0];
  const auto deadline = Clock::now() + limit;
  bool killed = false;
  while (from_out >= 0 || from_err >= 0) {
    pollfd fds[3] = {{from_out, POLLIN, 0}, {from_err, POLLIN, 0}, {to_child, POLLOUT, 0}};
    ::poll(fds, 3, 100);
    char buf[65536];
    auto drain = [&](int& fd, std::string& sink, short revents) {
      if (fd < 0 || (revents & (POLLIN | POLLHUP | POLLERR)) == 0) return;
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n > 0)
        sink.append(buf, static_cast<std::size_t>(n));
      else if (n == 0 || errno != EINTR) {
        ::close(fd);
        fd = -1;
      }
    };
    drain(from_out, r.out, fds[0].revents);
    drain(from_err, r.err, fds[1].revents);
    if (to_child >= 0 && (fds[2].revents & (POLLOUT | POLLERR | POLLHUP)) != 0) {
      const ssize_t n = ::write(to_child, input.data() + written, input.size() - written);
      if (n > 0) written += static_cast<std::size_t>(n);
      if ((n < 0 && errno != EAGAIN && errno != EINTR) || written == input.size()) {
        ::close(to_child);
        to_child = -1;
      }
    }
    if (!killed && Clock::now() > deadline) {
      ADD_FAILURE() << describe(args) << " ran longer than " << limit.count() << " ms; killed";
      ::kill(pid, SIGKILL);
      killed = true;
    }
  }
  if (to_child >= 0) ::close(to_child);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  r.code = exit_status(status);
  return r;
}

std::string Cli::ok(const std::vector<std::string>& args, const std::string& input) const {
  const Result r = run(args, input);
  EXPECT_EQ(r.code, 0) << describe(args) << "\nstdout: " << r.out << "\nstderr: " << r.err;
  return r.out;
}

nlohmann::json Cli::json(const std::vector<std::string>& args) const {
  const std::string out = ok(args);
  try {
    return nlohmann::json::parse(out);
  } catch (const std::exception& e) {
    ADD_FAILURE() << describe(args) << " printed invalid JSON (" << e.what() << "):\n" << out;
    return nullptr;
  }
}

Background Cli::start(const std::vector<std::string>& args) const { return spawn_background(args, nullptr); }

Background Cli::start_with_output(const std::vector<std::string>& args, int& stdout_fd) const {
  return spawn_background(args, &stdout_fd);
}

Background Cli::spawn_background(const std::vector<std::string>& args, int* stdout_fd) const {
  int out[2] = {-1, -1};
  if (stdout_fd != nullptr && ::pipe2(out, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe2: " << std::strerror(errno);
    return Background(-1);
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  if (stdout_fd != nullptr)
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  else
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  auto argv_s = command_line(args);
  auto env_s = environment(true);
  auto argv = c_array(argv_s);
  auto envp = c_array(env_s);
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, binary(), &fa, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) ADD_FAILURE() << "posix_spawn: " << std::strerror(rc);
  if (stdout_fd != nullptr) {
    ::close(out[1]);
    *stdout_fd = out[0];
  }
  return Background(rc == 0 ? pid : -1);
}

Cli::TerminalRun Cli::run_on_terminal(const std::vector<std::string>& args, const std::string& wait_for,
                                      const std::string& keys) const {
  TerminalRun t;
  int master = -1, slave = -1;
  winsize ws{};
  ws.ws_row = 40;
  ws.ws_col = 160;
  if (::openpty(&master, &slave, nullptr, nullptr, &ws) != 0) {
    ADD_FAILURE() << "openpty: " << std::strerror(errno);
    return t;
  }
  ::tcgetattr(slave, &t.before);
  auto argv_s = command_line(args);
  auto env_s = environment(true);
  env_s.push_back("TERM=xterm");
  auto argv = c_array(argv_s);
  auto envp = c_array(env_s);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(master);
    if (::login_tty(slave) != 0) ::_exit(126);  // new session; the pty becomes stdin/out/err and controlling tty
    ::execve(binary(), argv.data(), envp.data());
    ::_exit(127);
  }
  // The parent keeps `slave` open: the terminal outlives the child, so its
  // settings can be read after the exit.
  auto read_some = [&](int timeout_ms) {
    pollfd p{master, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) > 0 && (p.revents & POLLIN) != 0) {
      char buf[8192];
      const ssize_t n = ::read(master, buf, sizeof buf);
      if (n > 0) t.screen.append(buf, static_cast<std::size_t>(n));
    }
  };
  const auto shown_by = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < shown_by && t.screen.find(wait_for) == std::string::npos) read_some(50);
  t.saw_text = t.screen.find(wait_for) != std::string::npos;
  if (!keys.empty()) (void)!::write(master, keys.data(), keys.size());
  const auto exit_by = Clock::now() + std::chrono::seconds(10);
  int status = 0;
  for (;;) {
    read_some(20);
    const pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) break;
    if (Clock::now() > exit_by) {
      ADD_FAILURE() << describe(args) << " did not exit after the keys were typed; killed";
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      break;
    }
  }
  read_some(0);
  t.code = exit_status(status);
  ::tcgetattr(slave, &t.after);
  ::close(master);
  ::close(slave);
  return t;
}

}  // namespace ackring::cli_test
