// SPDX-License-Identifier: Apache-2.0
//
// examples/sim/fault_script.h
//
// The fault script language of feedkit-sim: what the simulated broker does,
// and when. One command per line; `#` starts a comment; blank lines are
// ignored; times are seconds since the simulator started (decimals allowed)
// and never go backwards from one line to the next.
//
//   at <t> stall [<s>]              stop sending on the open connections
//                                   (socket open, nothing at all sent, not
//                                   even pongs); after <s> s they send again,
//                                   what was published meanwhile lost for
//                                   them (0 or omitted: until they end)
//   at <t> close                    WebSocket close frame on every connection
//   at <t> reset                    TCP reset of every connection
//   at <t> keep_subscriptions on|off  on: the broker keeps a connection's
//                                   subscriptions after it ends (ghosts: an
//                                   unsubscribe from a new connection does
//                                   not release them) and answers a new
//                                   subscribe for one of them ALREADY IN
//                                   SUBSCRIBE (KIS OPSP0002)
//   at <t> max_subscriptions <n>    a subscribe that would hold more than n
//                                   keys on a connection gets MAX SUBSCRIBE
//                                   OVER (0: no cap)
//   at <t> appkey_in_use <s>        another client holds the app key for
//                                   <s> s: KIS answers subscribes OPSP8996
//                                   (open sessions keep going; combine with
//                                   close or reset), Kiwoom kicks the open
//                                   sessions (SYSTEM R10001) and every login
//                                   meanwhile
//   at <t> expire_token             every key or token issued so far stops
//                                   being accepted; sessions using one are
//                                   closed (Kiwoom: after a SYSTEM message)
//   at <t> burst <m>x <s>           every stream's rate × m for <s> s ("10x"
//                                   or "10")
//   at <t> malformed <n>            n malformed frames on every connection
//   at <t> end                      stop the simulator (writes the record)
//
// Example:
//   # the 2026-01-15 incident, compressed
//   at 0   burst 10x 3            # the opening bell
//   at 5   stall 12               # silent: only an idle timeout notices
//   at 20  keep_subscriptions on
//   at 20  close                  # reconnect → ALREADY IN SUBSCRIBE
//   at 60  end
//
// A script runs on the simulator's clock; FaultScriptPlayer is pure (the
// caller passes the elapsed time), and `speed` compresses a script (times
// and durations divided by it) so tests can run one in seconds.
//
// Thread safety: the functions are pure; FaultScriptPlayer is
// thread-compatible.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "feedkit/clock.h"

namespace examples::sim {

enum class FaultAction : std::uint8_t {
  stall,
  close,
  reset,
  keep_subscriptions,
  max_subscriptions,
  appkey_in_use,
  expire_token,
  burst,
  malformed,
  end,
};

// Returns the command's name in the script language ("stall", …).
std::string_view to_string(FaultAction action) noexcept;

struct FaultCommand {
  feedkit::Duration at{0};  // since the start
  FaultAction action = FaultAction::end;
  feedkit::Duration duration{0};  // stall (0: for good), appkey_in_use, burst
  double multiplier = 1.0;        // burst, > 0
  std::uint64_t count = 0;        // max_subscriptions, malformed
  bool on = false;                // keep_subscriptions
  int line = 0;                   // in the script text, 1-based

  // Returns the command in the script language, e.g. "at 5 stall 12".
  std::string to_string() const;
};

// Parses a script. Returns the commands in order, or kInvalidArgument
// "<name>:<line>: <what is wrong>" for the first bad line.
absl::StatusOr<std::vector<FaultCommand>> parse_fault_script(
    std::string_view text, std::string_view name = "script");

// Hands out the commands of a script as their time comes.
class FaultScriptPlayer {
 public:
  // `speed` > 0: script time runs `speed` times as fast as the elapsed time.
  explicit FaultScriptPlayer(std::vector<FaultCommand> commands,
                             double speed = 1.0);

  // Returns the commands due at `elapsed` (since the start) that were not
  // returned before, in script order.
  std::vector<FaultCommand> due(feedkit::Duration elapsed);
  // Returns the elapsed time at which the next command is due, or
  // Duration::max() when none is left.
  feedkit::Duration next_due() const;
  bool done() const { return next_ == commands_.size(); }
  double speed() const { return speed_; }

 private:
  std::vector<FaultCommand> commands_;
  double speed_;
  std::size_t next_ = 0;
};

}  // namespace examples::sim
