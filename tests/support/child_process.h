// tests/support/child_process.h
//
// ChildProcess: a program a test starts (posix_spawn) and always reaps.
//
//   ChildProcess sim({FEEDKIT_SIM_PROGRAM, "--broker", "kis"},
//                    {.stdout_path = dir + "/sim.out",
//                     .stderr_path = dir + "/sim.err",
//                     .env = {"KIS_APPKEY=..."}});
//   sim.signal(SIGTERM);
//   EXPECT_EQ(sim.wait_exit(std::chrono::seconds(10)), 0);
//
// stdout goes to `stdout_path`, or to a pipe the test reads (stdout_fd())
// when it is empty; stderr to `stderr_path`, or the test's own when empty.
// `env` comes before the test's own environment (so it wins). Destruction
// kills (SIGKILL) and reaps a child that has not exited.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <utility>
#include <vector>

extern char** environ;

namespace feedkit::testing {

struct ChildOptions {
  std::string stdout_path = {};       // empty: a pipe, see stdout_fd()
  std::string stderr_path = {};       // empty: the test's stderr
  std::vector<std::string> env = {};  // NAME=value, before the test's own
};

class ChildProcess {
 public:
  ChildProcess(std::vector<std::string> argv, ChildOptions options = {}) {
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    std::vector<std::string> env = std::move(options.env);
    for (char** e = environ; *e != nullptr; ++e) env.emplace_back(*e);
    std::vector<char*> envp;
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    int pipe_fds[2] = {-1, -1};
    if (options.stdout_path.empty()) {
      if (pipe(pipe_fds) == 0) {
        posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 1);
        posix_spawn_file_actions_addclose(&actions, pipe_fds[0]);
        posix_spawn_file_actions_addclose(&actions, pipe_fds[1]);
      }
    } else {
      posix_spawn_file_actions_addopen(&actions, 1, options.stdout_path.c_str(),
                                       O_WRONLY | O_CREAT | O_TRUNC, 0644);
    }
    if (!options.stderr_path.empty()) {
      posix_spawn_file_actions_addopen(&actions, 2, options.stderr_path.c_str(),
                                       O_WRONLY | O_CREAT | O_TRUNC, 0644);
    }
    spawn_error_ = posix_spawn(&pid_, args[0], &actions, nullptr, args.data(),
                               envp.data());
    posix_spawn_file_actions_destroy(&actions);
    if (spawn_error_ != 0) pid_ = -1;
    if (pipe_fds[1] >= 0) close(pipe_fds[1]);
    stdout_fd_ = pipe_fds[0];
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  ~ChildProcess() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (stdout_fd_ >= 0) close(stdout_fd_);
  }

  // 0, or the errno posix_spawn() returned.
  int spawn_error() const { return spawn_error_; }
  // The read end of the stdout pipe (-1 with a stdout_path).
  int stdout_fd() const { return stdout_fd_; }

  void signal(int sig) {
    if (pid_ > 0 && !exited_) kill(pid_, sig);
  }

  // Waits for the exit; returns the exit status, or -1 (killed by a signal,
  // not started, or still running after `timeout`).
  int wait_exit(std::chrono::steady_clock::duration timeout) {
    if (pid_ <= 0) return -1;
    if (exited_) return exit_status_;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        exited_ = true;
        exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        return exit_status_;
      }
      if (std::chrono::steady_clock::now() >= deadline) return -1;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));  // a process
    }
  }

 private:
  pid_t pid_ = -1;
  int spawn_error_ = 0;
  int stdout_fd_ = -1;
  bool exited_ = false;
  int exit_status_ = -1;
};

}  // namespace feedkit::testing
