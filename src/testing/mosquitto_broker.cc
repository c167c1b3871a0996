// SPDX-License-Identifier: Apache-2.0
#include "feedkit/testing/mosquitto_broker.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <signal.h>
#include <sys/prctl.h>  // PR_SET_PDEATHSIG
#include <sys/socket.h>
#include <sys/syscall.h>  // close_range
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>  // std::mutex, not absl::Mutex: Debian builds Abseil without TSan hooks
#include <set>
#include <sstream>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"

namespace feedkit::testing {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kSaltBytes = 12;  // as mosquitto_passwd
constexpr int kHashIterations = 101;    // as mosquitto_passwd
constexpr std::size_t kHashBytes = 64;  // SHA-512
constexpr int kPortAttempts = 5;        // when a chosen port was taken
constexpr auto kStopGrace = std::chrono::seconds(5);
constexpr auto kPollInterval = std::chrono::milliseconds(5);

// Returns the first character of `s` that is not printable ASCII, or -1.
int first_unprintable(std::string_view s) {
  for (const char c : s) {
    if (c < 0x20 || c == 0x7f) return static_cast<unsigned char>(c);
  }
  return -1;
}

// Returns true if `filter` is a valid MQTT topic filter.
bool valid_topic_filter(std::string_view filter) {
  if (filter.empty() || first_unprintable(filter) >= 0) return false;
  std::size_t level_start = 0;
  while (true) {
    const std::size_t end = filter.find('/', level_start);
    const std::string_view level = filter.substr(
        level_start, end == std::string_view::npos ? end : end - level_start);
    const bool has_wildcard = level.find_first_of("+#") != level.npos;
    if (has_wildcard && level.size() != 1) return false;
    if (level == "#" && end != std::string_view::npos) return false;
    if (end == std::string_view::npos) return true;
    level_start = end + 1;
  }
}

std::string json_quote(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out.append(buf);
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
  return out;
}

std::string base64(const unsigned char* data, std::size_t n) {
  std::string out(4 * ((n + 2) / 3) + 1, '\0');
  const int written = EVP_EncodeBlock(
      reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(n));
  out.resize(static_cast<std::size_t>(written));
  return out;
}

// The "password", "salt" and "iterations" members of a dynamic-security
// client: PBKDF2-HMAC-SHA512 over a random salt, as mosquitto_passwd.
absl::StatusOr<std::string> hashed_password_members(
    const std::string& password) {
  unsigned char salt[kSaltBytes];
  unsigned char hash[kHashBytes];
  if (RAND_bytes(salt, sizeof(salt)) != 1 ||
      PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                        salt, sizeof(salt), kHashIterations, EVP_sha512(),
                        sizeof(hash), hash) != 1) {
    return absl::InternalError("MosquittoBroker: OpenSSL cannot hash");
  }
  return absl::StrCat("\"password\": ", json_quote(base64(hash, sizeof(hash))),
                      ", \"salt\": ", json_quote(base64(salt, sizeof(salt))),
                      ", \"iterations\": ", kHashIterations);
}

// The dynamic-security plugin's config: one client and one role per user.
absl::StatusOr<std::string> dynsec_json(
    const std::vector<MosquittoUser>& users) {
  std::string clients;
  std::string roles;
  for (std::size_t i = 0; i < users.size(); ++i) {
    const MosquittoUser& user = users[i];
    const std::string role = absl::StrCat("\"user", i, "\"");
    auto password = hashed_password_members(user.password);
    if (!password.ok()) return password.status();
    absl::StrAppend(&clients, i == 0 ? "" : ",\n",
                    "    {\"username\": ", json_quote(user.name), ", ",
                    *password, ", \"roles\": [{\"rolename\": ", role, "}]}");
    std::vector<MosquittoTopicRule> rules = user.topics;
    if (rules.empty()) rules.push_back({.filter = "#"});
    std::string acls;
    const auto add_acl = [&](const char* type, const std::string& topic) {
      absl::StrAppend(&acls, acls.empty() ? "" : ", ", "{\"acltype\": \"", type,
                      "\", \"topic\": ", json_quote(topic),
                      ", \"allow\": true}");
    };
    for (const MosquittoTopicRule& rule : rules) {
      if (rule.publish) add_acl("publishClientSend", rule.filter);
      if (rule.subscribe) add_acl("subscribePattern", rule.filter);
    }
    absl::StrAppend(&roles, i == 0 ? "" : ",\n", "    {\"rolename\": ", role,
                    ", \"acls\": [", acls, "]}");
  }
  return absl::StrCat(
      "{\n  \"clients\": [\n", clients, "\n  ],\n  \"roles\": [\n", roles,
      "\n  ],\n  \"defaultACLAccess\": {\"publishClientSend\": false, "
      "\"publishClientReceive\": true, \"subscribe\": false, "
      "\"unsubscribe\": true}\n}\n");
}

bool is_executable(const std::string& path) {
  return !path.empty() && ::access(path.c_str(), X_OK) == 0;
}

absl::StatusOr<std::string> find_mosquitto(const std::string& configured) {
  if (!configured.empty()) {
    if (is_executable(configured)) return configured;
    return absl::NotFoundError(absl::StrCat(
        "MosquittoBroker: binary \"", configured, "\" is not executable"));
  }
  if (is_executable("/usr/sbin/mosquitto")) return "/usr/sbin/mosquitto";
  if (const char* path = std::getenv("PATH")) {
    std::stringstream dirs(path);
    std::string dir;
    while (std::getline(dirs, dir, ':')) {
      const std::string candidate = dir + "/mosquitto";
      if (!dir.empty() && is_executable(candidate)) return candidate;
    }
  }
  return absl::NotFoundError(
      "MosquittoBroker: no mosquitto at /usr/sbin/mosquitto or on PATH "
      "(apt-get install mosquitto)");
}

absl::StatusOr<std::string> find_dynsec_plugin(const std::string& configured) {
  constexpr const char* kName = "mosquitto_dynamic_security.so";
  if (!configured.empty()) {
    if (::access(configured.c_str(), R_OK) == 0) return configured;
    return absl::NotFoundError(absl::StrCat("MosquittoBroker: dynsec_plugin \"",
                                            configured, "\" is not readable"));
  }
  std::vector<fs::path> candidates;
  std::error_code ec;
  for (const char* root : {"/usr/lib", "/usr/local/lib"}) {
    candidates.push_back(fs::path(root) / kName);
    for (const auto& entry : fs::directory_iterator(root, ec)) {
      if (entry.is_directory(ec)) candidates.push_back(entry.path() / kName);
    }
  }
  for (const fs::path& path : candidates) {
    if (::access(path.c_str(), R_OK) == 0) return path.string();
  }
  return absl::NotFoundError(absl::StrCat(
      "MosquittoBroker: users need mosquitto's dynamic-security plugin, and "
      "no ",
      kName, " was found under /usr/lib or /usr/local/lib"));
}

// Returns a loopback port that was free a moment ago, or 0.
std::uint16_t pick_free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  std::uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

// Returns true if 127.0.0.1:`port` accepts a TCP connection.
bool accepts_connections(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  const bool ok =
      ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

std::string read_from(const std::string& path, std::uintmax_t offset) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  in.seekg(static_cast<std::streamoff>(offset));
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::uintmax_t file_size_or_zero(const std::string& path) {
  std::error_code ec;
  const std::uintmax_t size = fs::file_size(path, ec);
  return ec ? 0 : size;
}

std::string last_lines(const std::string& text, std::size_t lines) {
  std::size_t start = text.size();
  if (start > 0 && text[start - 1] == '\n') --start;
  for (std::size_t n = 0; n < lines && start > 0; ++n) {
    const std::size_t nl = text.rfind('\n', start - 1);
    start = nl == std::string::npos ? 0 : nl;
    if (nl == std::string::npos) break;
  }
  if (start < text.size() && text[start] == '\n') ++start;
  return text.substr(start);
}

// Runs functions on a thread of its own, which lives as long as this object:
// the thread that forks mosquitto is its "parent" for PR_SET_PDEATHSIG, so it
// must not be a caller's thread that may end before the broker does.
class SpawnerThread {
 public:
  SpawnerThread() : thread_([this] { loop(); }) {}
  ~SpawnerThread() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  // Runs `fn` on the spawner thread and waits for it.
  void run(const std::function<void()>& fn) {
    std::unique_lock<std::mutex> lock(mu_);
    const std::uint64_t ticket = ++submitted_;
    jobs_.push_back(&fn);
    cv_.notify_all();
    cv_.wait(lock, [&] { return finished_ >= ticket; });
  }

 private:
  void loop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      cv_.wait(lock, [&] { return done_ || !jobs_.empty(); });
      if (jobs_.empty()) return;
      const std::function<void()>* fn = jobs_.front();
      jobs_.pop_front();
      lock.unlock();
      (*fn)();
      lock.lock();
      ++finished_;
      cv_.notify_all();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<const std::function<void()>*> jobs_;
  std::uint64_t submitted_ = 0;
  std::uint64_t finished_ = 0;
  bool done_ = false;
  std::thread thread_;
};

}  // namespace

absl::Status MosquittoBrokerOptions::validate() const {
  std::set<std::string> names;
  for (std::size_t i = 0; i < users.size(); ++i) {
    const MosquittoUser& user = users[i];
    if (user.name.empty() || first_unprintable(user.name) >= 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "MosquittoBrokerOptions: users[", i,
          "].name must be non-empty printable text, got \"", user.name, "\""));
    }
    if (!names.insert(user.name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("MosquittoBrokerOptions: users[", i, "].name \"",
                       user.name, "\" is given twice"));
    }
    for (std::size_t j = 0; j < user.topics.size(); ++j) {
      if (!valid_topic_filter(user.topics[j].filter)) {
        return absl::InvalidArgumentError(
            absl::StrCat("MosquittoBrokerOptions: users[", i, "].topics[", j,
                         "].filter is not an MQTT topic filter: \"",
                         user.topics[j].filter, "\""));
      }
    }
  }
  for (std::size_t i = 0; i < extra_config.size(); ++i) {
    if (extra_config[i].find_first_of("\r\n") != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("MosquittoBrokerOptions: extra_config[", i,
                       "] holds a line break: \"", extra_config[i], "\""));
    }
  }
  if (start_timeout <= Duration::zero()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "MosquittoBrokerOptions: start_timeout must be > 0, got ",
        std::chrono::duration_cast<std::chrono::milliseconds>(start_timeout)
            .count(),
        " ms"));
  }
  return absl::OkStatus();
}

class MosquittoBroker::Impl {
 public:
  explicit Impl(MosquittoBrokerOptions options)
      : options_(std::move(options)) {}

  ~Impl() {
    kill();
    std::error_code ignored;
    if (!dir_.empty()) fs::remove_all(dir_, ignored);
  }

  // Locates the programs, makes the directory and writes the config files.
  absl::Status prepare() {
    auto binary = find_mosquitto(options_.binary);
    if (!binary.ok()) return binary.status();
    binary_ = *std::move(binary);
    std::string plugin;
    if (!options_.users.empty()) {
      auto found = find_dynsec_plugin(options_.dynsec_plugin);
      if (!found.ok()) return found.status();
      plugin = *std::move(found);
    }
    std::error_code ec;
    fs::path tmp = fs::temp_directory_path(ec);
    if (ec || tmp.string().find_first_of(" \t") != std::string::npos) {
      tmp = "/tmp";  // mosquitto.conf cannot quote a path with spaces
    }
    std::string pattern = (tmp / "feedkit-mosquitto-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      return absl::UnavailableError(
          absl::StrCat("MosquittoBroker: cannot create a directory like ",
                       pattern, ": ", std::strerror(errno)));
    }
    dir_ = pattern;
    log_path_ = dir_ + "/mosquitto.log";
    conf_path_ = dir_ + "/mosquitto.conf";
    if (!plugin.empty()) {
      auto json = dynsec_json(options_.users);
      if (!json.ok()) return json.status();
      if (absl::Status s = write_file(dir_ + "/dynamic-security.json", *json);
          !s.ok()) {
        return s;
      }
    }
    plugin_ = plugin;
    port_ = pick_free_port();
    if (port_ == 0) {
      return absl::UnavailableError(
          "MosquittoBroker: cannot find a free port on 127.0.0.1");
    }
    return write_config();
  }

  // Starts mosquitto at port_; on a port someone took meanwhile, tries other
  // ports if `may_move`.
  absl::Status launch(bool may_move) {
    std::lock_guard<std::mutex> lock(process_mu_);
    for (int attempt = 1;; ++attempt) {
      bool port_taken = false;
      absl::Status s = launch_once(port_taken);
      if (s.ok() || !port_taken || !may_move || attempt == kPortAttempts) {
        return s;
      }
      port_ = pick_free_port();
      if (port_ == 0) return s;
      if (absl::Status w = write_config(); !w.ok()) return w;
    }
  }

  void kill() {
    std::lock_guard<std::mutex> lock(process_mu_);
    kill_locked();
  }

  void stop() {
    std::lock_guard<std::mutex> lock(process_mu_);
    const int pid = pid_.load();
    if (pid == 0) return;
    ::kill(pid, SIGTERM);
    const SteadyTime deadline = SteadyClock::now() + kStopGrace;
    while (SteadyClock::now() < deadline) {
      if (reap(pid, WNOHANG)) return;
      std::this_thread::sleep_for(kPollInterval);
    }
    kill_locked();
  }

  absl::Status restart() {
    stop();
    return launch(/*may_move=*/false);
  }

  int pid() {
    std::unique_lock<std::mutex> lock(process_mu_, std::try_to_lock);
    // Notices a mosquitto that exited by itself (a bad config, a crash).
    const int pid = pid_.load();
    if (lock.owns_lock() && pid != 0) reap(pid, WNOHANG);
    return pid_.load();
  }

  std::string log_tail(std::size_t lines) const {
    return last_lines(read_from(log_path_, 0), lines);
  }

  std::uint16_t port() const { return port_.load(); }
  const std::string& dir() const { return dir_; }
  const std::string& log_path() const { return log_path_; }

 private:
  static absl::Status write_file(const std::string& path,
                                 const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    if (!out) {
      return absl::UnavailableError(
          absl::StrCat("MosquittoBroker: cannot write ", path));
    }
    return absl::OkStatus();
  }

  absl::Status write_config() {
    std::string conf = absl::StrCat(
        "# Written by feedkit::testing::MosquittoBroker\n", "listener ",
        port_.load(), " 127.0.0.1\n", "allow_anonymous ",
        options_.users.empty() ? "true" : "false", "\n", "persistence false\n",
        "log_dest file ", log_path_, "\n", "log_timestamp true\n",
        "connection_messages true\n");
    if (options_.verbose_log) {
      conf += "log_type all\n";
    } else {
      conf +=
          "log_type error\nlog_type warning\nlog_type notice\n"
          "log_type information\n";
    }
    // As root, mosquitto would switch to the `mosquitto` user, which cannot
    // write the log into this directory.
    if (::geteuid() == 0) conf += "user root\n";
    if (!plugin_.empty()) {
      absl::StrAppend(&conf, "plugin ", plugin_, "\n",
                      "plugin_opt_config_file ", dir_,
                      "/dynamic-security.json\n");
    }
    if (options_.max_packet_size != 0) {
      absl::StrAppend(&conf, "max_packet_size ", options_.max_packet_size,
                      "\n");
    }
    if (options_.max_queued_messages != 0) {
      absl::StrAppend(&conf, "max_queued_messages ",
                      options_.max_queued_messages, "\n");
    }
    for (const std::string& line : options_.extra_config) {
      absl::StrAppend(&conf, line, "\n");
    }
    return write_file(conf_path_, conf);
  }

  // Forks and execs mosquitto (on the spawner thread), then waits until it
  // logged that it runs and accepts connections. With process_mu_ held.
  absl::Status launch_once(bool& port_taken) {
    kill_locked();
    const std::uintmax_t log_offset = file_size_or_zero(log_path_);
    int spawn_errno = 0;
    spawner_.run([&] { spawn_errno = spawn(); });
    if (spawn_errno != 0) {
      return absl::UnavailableError(
          absl::StrCat("MosquittoBroker: cannot start ", binary_, ": ",
                       std::strerror(spawn_errno)));
    }
    const SteadyTime deadline = SteadyClock::now() + options_.start_timeout;
    while (true) {
      const std::string log = read_from(log_path_, log_offset);
      if (!reap(pid_.load(), WNOHANG)) {
        if (log.find(" running") != std::string::npos &&
            accepts_connections(port_.load())) {
          return absl::OkStatus();
        }
      } else {
        port_taken = log.find("Address already in use") != std::string::npos;
        return failure("exited during start-up");
      }
      if (SteadyClock::now() >= deadline) {
        kill_locked();
        return failure(
            absl::StrCat("did not accept connections within ",
                         std::chrono::duration_cast<std::chrono::milliseconds>(
                             options_.start_timeout)
                             .count(),
                         " ms"));
      }
      std::this_thread::sleep_for(kPollInterval);
    }
  }

  absl::Status failure(const std::string& what) const {
    return absl::UnavailableError(absl::StrCat(
        "MosquittoBroker: mosquitto on 127.0.0.1:", port_.load(), " ", what,
        "; the end of ", log_path_, ":\n", log_tail(30)));
  }

  // Runs on the spawner thread. Returns 0, or the errno of a failed step
  // before the fork.
  int spawn() {
    const int log_fd = ::open(log_path_.c_str(),
                              O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (log_fd < 0) return errno;
    const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd < 0) {
      const int error = errno;
      ::close(log_fd);
      return error;
    }
    // Everything the child needs is prepared before fork(): after it, only
    // async-signal-safe calls.
    std::string arg0 = "mosquitto";
    std::string arg1 = "-c";
    std::string arg2 = conf_path_;
    char* argv[] = {arg0.data(), arg1.data(), arg2.data(), nullptr};
    const char* binary = binary_.c_str();
    const pid_t parent = ::getpid();
    const long max_fd = ::sysconf(_SC_OPEN_MAX);
    const pid_t pid = ::fork();
    if (pid == 0) {
      // The child: dies with the spawner thread; stdin from /dev/null,
      // stdout and stderr to the log; no other inherited descriptor (a test's
      // listening socket must not stay open in mosquitto).
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(126);
      ::dup2(null_fd, 0);
      ::dup2(log_fd, 1);
      ::dup2(log_fd, 2);
      if (::syscall(SYS_close_range, 3U, ~0U, 0U) != 0) {
        for (long fd = 3; fd < max_fd; ++fd) ::close(static_cast<int>(fd));
      }
      ::execv(binary, argv);
      constexpr char kExecFailed[] = "MosquittoBroker: execv failed\n";
      (void)!::write(2, kExecFailed, sizeof(kExecFailed) - 1);
      ::_exit(127);
    }
    const int fork_errno = errno;
    ::close(log_fd);
    ::close(null_fd);
    if (pid < 0) return fork_errno;
    pid_ = pid;
    return 0;
  }

  // Returns true if `pid` has exited (and reaps it); clears pid_ then.
  bool reap(int pid, int flags) {
    if (pid == 0) return true;
    int status = 0;
    pid_t r;
    do {
      r = ::waitpid(pid, &status, flags);
    } while (r < 0 && errno == EINTR);
    if (r == 0) return false;  // still running
    pid_ = 0;
    return true;
  }

  void kill_locked() {
    const int pid = pid_.load();
    if (pid == 0) return;
    ::kill(pid, SIGKILL);
    reap(pid, 0);
  }

  const MosquittoBrokerOptions options_;
  std::string binary_;
  std::string plugin_;
  std::string dir_;
  std::string log_path_;
  std::string conf_path_;
  std::atomic<std::uint16_t> port_{0};
  std::mutex process_mu_;  // serializes process control
  std::atomic<int> pid_{0};
  SpawnerThread spawner_;
};

absl::StatusOr<std::unique_ptr<MosquittoBroker>> MosquittoBroker::prepare(
    MosquittoBrokerOptions options) {
  if (absl::Status s = options.validate(); !s.ok()) return s;
  auto impl = std::make_unique<Impl>(std::move(options));
  if (absl::Status s = impl->prepare(); !s.ok()) return s;
  return std::unique_ptr<MosquittoBroker>(new MosquittoBroker(std::move(impl)));
}

absl::StatusOr<std::unique_ptr<MosquittoBroker>> MosquittoBroker::start(
    MosquittoBrokerOptions options) {
  auto broker = prepare(std::move(options));
  if (!broker.ok()) return broker.status();
  if (absl::Status s = (*broker)->impl_->launch(/*may_move=*/true); !s.ok()) {
    return s;
  }
  return broker;
}

MosquittoBroker::MosquittoBroker(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}

MosquittoBroker::~MosquittoBroker() = default;

std::uint16_t MosquittoBroker::port() const { return impl_->port(); }

std::string MosquittoBroker::url() const {
  return absl::StrCat("tcp://127.0.0.1:", impl_->port());
}

int MosquittoBroker::pid() const { return impl_->pid(); }

void MosquittoBroker::kill() { impl_->kill(); }

void MosquittoBroker::stop() { impl_->stop(); }

absl::Status MosquittoBroker::restart() { return impl_->restart(); }

std::string MosquittoBroker::dir() const { return impl_->dir(); }

std::string MosquittoBroker::log_path() const { return impl_->log_path(); }

std::string MosquittoBroker::log_tail(std::size_t lines) const {
  return impl_->log_tail(lines);
}

}  // namespace feedkit::testing
