// Queues used across containers and users (README "Containers and users"):
// shared by Unix users through a group (create --group-owner, a setgid queue
// directory), and a process of another pid namespace as stat and rm see it.
#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "cli_runner.hpp"

namespace ackring::cli_test {
namespace {

namespace fs = std::filesystem;

gid_t gid_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_gid;
}

mode_t mode_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

// Users here: root creates; uid 1 (daemon, primary group daemon = gid 1)
// uses the queue through the group; uid 65534 (nobody) is in neither.
constexpr uid_t kDaemon = 1;
constexpr uid_t kNobody = 65534;

TEST(CliGroupOwner, should_let_a_member_of_the_group_publish_and_consume_after_create_group_owner) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to act as other users";
  ASSERT_NE(::getgrgid(kDaemon), nullptr);
  Cli cli;
  fs::permissions(cli.dir(), fs::perms::others_exec, fs::perm_options::add);
  const std::string out = cli.ok({"create", "shared", "--mode", "0660", "--group-owner", "daemon", "--group", "g"});
  EXPECT_NE(out.find("mode 0660, group owner daemon"), std::string::npos) << out;
  EXPECT_EQ(gid_of(cli.path_of("shared")), kDaemon);
  EXPECT_EQ(mode_of(cli.path_of("shared")), 0660u);

  // (pub reads a message given as a file: the test's stdin pipe belongs to root.)
  const std::string message = cli.dir() + "/message";
  std::ofstream(message) << "from daemon\n";
  fs::permissions(message, fs::perms::others_read, fs::perm_options::add);
  Result r = cli.run_as(kDaemon, {"pub", "shared", "--file", message});
  EXPECT_EQ(r.code, 0) << r.err;
  r = cli.run_as(kDaemon, {"sub", "shared", "-g", "g", "-n", "1"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "from daemon\n");
  r = cli.run_as(kNobody, {"stat", "shared"});
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("Permission denied"), std::string::npos) << r.err;

  // A numeric gid works too; a mode without group bits gets a note.
  r = cli.run({"create", "private", "--group-owner", "1"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(gid_of(cli.path_of("private")), kDaemon);
  EXPECT_NE(r.err.find("does not let group 'daemon' read and write"), std::string::npos) << r.err;
  EXPECT_EQ(cli.run_as(kDaemon, {"stat", "private"}).code, 2);

  r = cli.run({"create", "x", "--group-owner", "no-such-group-here"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("no such group"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(cli.path_of("x")));
}

TEST(CliGroupOwner, should_not_let_a_user_outside_the_group_give_the_queue_to_it_and_leave_nothing) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to act as other users";
  Cli cli;
  fs::permissions(cli.dir(), fs::perms::all, fs::perm_options::add);  // nobody may create files here
  const Result r = cli.run_as(kNobody, {"create", "q", "--mode", "0660", "--group-owner", "daemon"});
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("cannot give queue 'q' to group 'daemon'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("the queue was not created"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(cli.path_of("q")));
}

TEST(CliGroupOwner, should_give_every_file_made_in_a_setgid_queue_directory_its_group) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to act as other users";
  Cli cli;
  fs::permissions(cli.dir(), fs::perms::others_exec, fs::perm_options::add);
  const std::string app = cli.dir() + "/app";
  ASSERT_EQ(::mkdir(app.c_str(), 0770), 0);
  ASSERT_EQ(::chown(app.c_str(), 0, kDaemon), 0);
  ASSERT_EQ(::chmod(app.c_str(), 02770), 0);
  // Root (primary group root) creates; the file takes the directory's group.
  cli.ok({"create", "q", "--dir", app, "--mode", "0660", "--group", "g", "--max-deliveries", "1", "--lease", "50"});
  EXPECT_EQ(gid_of(app + "/ackring.q"), kDaemon);
  const std::string message = cli.dir() + "/message";
  std::ofstream(message) << "poison\n";
  fs::permissions(message, fs::perms::others_read, fs::perm_options::add);
  Result r = cli.run_as(kDaemon, {"pub", "q", "--dir", app, "--file", message});
  EXPECT_EQ(r.code, 0) << r.err;
  // The dead-letter queue is made later by whichever consumer dead-letters
  // first (here root): it too belongs to the group, with the queue's mode.
  EXPECT_EQ(cli.run({"sub", "q", "--dir", app, "-g", "g", "--no-ack", "--timeout", "20"}).out, "poison\n");
  ::usleep(100'000);
  EXPECT_EQ(cli.run({"sub", "q", "--dir", app, "-g", "g", "--no-ack", "--timeout", "300"}).code, 0);
  ASSERT_TRUE(fs::exists(app + "/ackring.q.dlq"));
  EXPECT_EQ(gid_of(app + "/ackring.q.dlq"), kDaemon);
  EXPECT_EQ(mode_of(app + "/ackring.q.dlq"), 0660u);
  r = cli.run_as(kDaemon, {"dlq", "q", "--dir", app});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("poison"), std::string::npos) << r.out;
}

// ------------------------------------------------------ pid namespaces --

// A consumer started in a pid namespace of its own (unshare, as a container
// runtime does) is no process of ours: liveness by pid reads it dead. stat
// marks it "dead?" because it keeps updating its activity; rm refuses it.
TEST(CliPidNamespace, should_read_a_member_in_another_pid_namespace_as_dead_but_mark_it_and_refuse_rm) {
  if (::geteuid() != 0 || std::system("unshare --pid --fork --mount-proc true >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "needs root and unshare(CLONE_NEWPID)";
  Cli cli;
  cli.ok({"create", "q", "--group", "g"});
  cli.ok({"pub", "q"}, "1\n2\n");
  // It takes both messages, holds them (no ack), and leaves after 3 s without more.
  const std::string inside = "unshare --pid --fork --mount-proc env ACKRING_SHM_DIR='" + cli.dir() + "' '" +
                             binary() + "' sub q -g g --no-ack --timeout 3000 >/dev/null 2>&1 &";
  ASSERT_EQ(std::system(inside.c_str()), 0);
  nlohmann::json member;
  for (int i = 0; i < 200 && member.is_null(); ++i) {
    const auto j = cli.json({"stat", "q", "--json"});
    if (!j["groups"][0]["members"].empty() && j["groups"][0]["in_flight"] == 2) member = j["groups"][0]["members"][0];
    if (member.is_null()) ::usleep(25'000);
  }
  ASSERT_FALSE(member.is_null()) << "the consumer in the other pid namespace never joined";
  EXPECT_EQ(member["alive"], false) << "its pid is not a process of this namespace";
  EXPECT_EQ(member["active_elsewhere"], true) << member;
  const std::string stat = cli.ok({"stat", "q"});
  EXPECT_NE(stat.find("dead?"), std::string::npos) << stat;
  EXPECT_NE(stat.find("another container (pid namespace)"), std::string::npos) << stat;
  const Result rm = cli.run({"rm", "q"});
  EXPECT_EQ(rm.code, 4) << rm.err;
  EXPECT_NE(rm.err.find("active elsewhere?"), std::string::npos) << rm.err;
  // It leaves by itself; then rm goes ahead.
  bool left = false;
  for (int i = 0; i < 200 && !left; ++i) {
    left = cli.json({"stat", "q", "--json"})["groups"][0]["members"].empty();
    if (!left) ::usleep(50'000);
  }
  EXPECT_TRUE(left);
  cli.ok({"rm", "q"});
}

}  // namespace
}  // namespace ackring::cli_test
