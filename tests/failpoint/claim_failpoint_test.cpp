// Claims of live processes: a publish that waited for room is not taken for
// timed out the moment it claims (failure 4), and a process
// whose main thread exited while another thread works is alive (failure 8).
#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <sys/prctl.h>

#include <chrono>
#include <thread>

#include "shm/clock.hpp"
#include "failpoint_util.hpp"
#include "queue/group.hpp"
#include "shm/liveness.hpp"
#include "shm/queue_state.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;

namespace ackring::testing {
namespace {

// Failure 4 was a claim stamped with the time its publish began: one that
// had waited for room looked timed out the moment it was marked. No claim is
// stamped now; a consumer times a stall from when it first sees it. So a
// keyed publish that waited for room for longer than claim_timeout and then
// stalls right after its claim is not aborted at once.
TEST(ClaimTime, should_not_abort_at_once_a_keyed_claim_that_waited_for_room_longer_than_the_claim_timeout) {
  TempQueue tq;
  QueueOptions options = small_options(2);
  options.claim_timeout = 1000ms;
  auto q = Queue::create(tq.path(), options);
  auto cons = q.consumer("g");
  auto prod = q.producer();
  ASSERT_TRUE(prod.try_publish("a").ok());
  ASSERT_TRUE(prod.try_publish("b").ok());  // full
  Child keyed = fork_child([&] {
    auto qq = Queue::open(tq.path());
    auto pub = qq.producer();
    fp::arm("publish.after_slot_read", fp::Action::stall);
    return pub.publish("keyed", PublishOptions{.key = "k"}, 30s).ok() ? 0 : 3;
  });
  // The keyed publish waits for room (it cannot be stopped after a claim
  // yet). Room comes only well past claim_timeout.
  sleep_ms(1200);
  ASSERT_FALSE(keyed.poll());
  auto d = cons.try_receive();
  ASSERT_TRUE(d);
  ASSERT_EQ(cons.ack(*d), Status::ok);
  ASSERT_EQ(wait_stopped_or_dead(keyed, 10s), "stopped");
  // Stopped between claim and commit: the consumer reaches the stalled head
  // (after "b") and watches it for less than claim_timeout.
  auto b = cons.receive(1s);
  ASSERT_TRUE(b);
  EXPECT_EQ(text_of(b->payload()), "b");
  ASSERT_EQ(cons.ack(*b), Status::ok);
  EXPECT_FALSE(cons.receive(300ms));
  EXPECT_EQ(q.stats().aborted, 0u) << "a claim that had waited for room was taken for timed out at once";
  keyed.kill(SIGCONT);
  ASSERT_TRUE(keyed.wait_for(20s));
  EXPECT_TRUE(keyed.exited_ok()) << keyed.describe();
  auto k = cons.receive(5s);
  ASSERT_TRUE(k);
  EXPECT_EQ(text_of(k->payload()), "keyed");
  EXPECT_EQ(k->seq(), 2u);
}

TEST(Liveness, should_hold_a_process_whose_main_thread_exited_for_alive_while_another_thread_runs) {
  TempQueue tq;
  auto q = Queue::create(tq.path(), small_options());
  q.create_group("g");
  auto prod = q.producer();
  ASSERT_TRUE(prod.try_publish("held").ok());
  int release_pipe[2];
  ASSERT_EQ(::pipe(release_pipe), 0);
  int ready_pipe[2];
  ASSERT_EQ(::pipe(ready_pipe), 0);
  // Forked by hand, and the main thread leaves with the raw exit system call
  // (what pthread_exit ends with): pthread_exit unwinds the stack, and the
  // catch-alls of gtest and fork_child would stop that unwinding.
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    ::alarm(kChildSafetyAlarmSeconds);
    // A worker thread takes a lease and holds it until told to stop; the
    // main thread exits on its own (the process shows `Z`).
    std::thread([&] {
      auto qq = Queue::open(tq.path());
      ConsumerOptions long_lease;
      long_lease.lease = 60s;
      auto c = qq.consumer("g", long_lease);
      auto d = c.receive(5s);
      const char ok = d ? 'y' : 'n';
      (void)::write(ready_pipe[1], &ok, 1);
      char stop = 0;
      (void)::read(release_pipe[0], &stop, 1);
      ::_exit(0);
    }).detach();
    ::syscall(SYS_exit, 0);
  }
  Child worker(pid);
  ::close(ready_pipe[1]);    // a worker that dies early gives EOF, not a hang
  ::close(release_pipe[0]);
  char ok = 0;
  ASSERT_EQ(::read(ready_pipe[0], &ok, 1), 1);
  ASSERT_EQ(ok, 'y');
  for (int i = 0; i < 5000 && process_state(worker.pid()) != 'Z'; ++i) sleep_ms(1);
  ASSERT_EQ(process_state(worker.pid()), 'Z') << "the main thread did not exit";
  const std::uint64_t start = detail::process_start_time(worker.pid());
  EXPECT_NE(start, 0u);
  EXPECT_TRUE(detail::is_alive(worker.pid(), start));
  // Its member slot is not reclaimed and its lease does not come back.
  auto other = q.consumer("g");
  EXPECT_FALSE(other.receive(100ms)) << "the live worker's lease was taken over";
  const auto state = q.stats();
  EXPECT_EQ(state.groups.at(0).members.size(), 2u);
  const char stop = 's';
  ASSERT_EQ(::write(release_pipe[1], &stop, 1), 1);
  ASSERT_TRUE(worker.wait_dead_unreaped(10s));
  EXPECT_FALSE(detail::is_alive(worker.pid(), start));
  // Dead now: its lease comes back at once.
  auto d = other.receive(5s);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->deliveries(), 2u);
  ::close(release_pipe[1]);
  ::close(ready_pipe[0]);
}

}  // namespace
}  // namespace ackring::testing
