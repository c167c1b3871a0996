// Test that header file is self-contained.
#include "feedkit/testing/line_protocol.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

namespace feedkit::testing {
namespace {

Classified classify(std::string_view frame) {
  LineProtocol protocol;
  return protocol.classify(frame);
}

TEST(LineProtocol, WritesLoginSubscribeAndUnsubscribeFrames) {
  LineProtocol protocol;
  const Credentials credentials{.secret = "s3cret"};
  EXPECT_EQ(protocol.login_frames(credentials),
            std::vector<std::string>{"LOGIN s3cret"});
  EXPECT_EQ(protocol.subscribe_frame("005930", credentials), "SUB 005930");
  EXPECT_EQ(protocol.unsubscribe_frame("005930", credentials), "UNSUB 005930");
}

TEST(LineProtocol, ReportsWhetherTheBrokerKeepsSubscriptions) {
  EXPECT_TRUE(LineProtocol().broker_keeps_subscriptions());
  EXPECT_FALSE(LineProtocol(false).broker_keeps_subscriptions());
}

TEST(LineProtocol, ClassifiesLoginAnswers) {
  EXPECT_EQ(classify("LOGIN_OK").kind, FrameKind::login_ok);
  EXPECT_EQ(classify("AUTH_FAIL").kind, FrameKind::auth_rejected);
}

TEST(LineProtocol, ClassifiesSubscriptionAnswersWithTheirKey) {
  const struct {
    std::string_view frame;
    FrameKind kind;
  } cases[] = {
      {"ACK A1", FrameKind::subscribe_ack},
      {"ALREADY A1", FrameKind::already_subscribed},
      {"MAXSUB A1", FrameKind::max_subscriptions},
      {"UNACK A1", FrameKind::unsubscribe_ack},
  };
  for (const auto& c : cases) {
    const Classified r = classify(c.frame);
    EXPECT_EQ(r.kind, c.kind) << c.frame;
    EXPECT_EQ(r.key, "A1") << c.frame;
  }
}

TEST(LineProtocol, ClassifiesRejectWithKeyAndReason) {
  const Classified r = classify("REJECT X no such symbol");
  EXPECT_EQ(r.kind, FrameKind::subscribe_reject);
  EXPECT_EQ(r.key, "X");
  EXPECT_EQ(r.reason, "no such symbol");
}

TEST(LineProtocol, ClassifiesPingAsHeartbeatWithPongReply) {
  const Classified r = classify("PING 42");
  EXPECT_EQ(r.kind, FrameKind::heartbeat);
  EXPECT_EQ(r.reply, "PONG 42");
}

TEST(LineProtocol, ClassifiesBusyAndNotice) {
  EXPECT_EQ(classify("BUSY").kind, FrameKind::busy);
  const Classified r = classify("NOTICE market closes soon");
  EXPECT_EQ(r.kind, FrameKind::notice);
  EXPECT_EQ(r.reason, "market closes soon");
}

TEST(LineProtocol, ClassifiesDataWithADecimalSeq) {
  EXPECT_EQ(classify("DATA A 17 t=5").kind, FrameKind::data);
  EXPECT_EQ(classify("DATA A 17").kind, FrameKind::data);
}

TEST(LineProtocol, ClassifiesEverythingElseAsMalformed) {
  for (std::string_view frame :
       {"", "GARBAGE", "DATA", "DATA A", "DATA A x t=1", "DATA A -1 t=1",
        "DATA A 99999999999999999999 t=1", "DATA  1 t=1", "ACK", "ALREADY",
        "MAXSUB", "UNACK", "REJECT", "PING", "login_ok", "SUB A"}) {
    EXPECT_EQ(classify(frame).kind, FrameKind::malformed)
        << '"' << frame << '"';
  }
}

TEST(LineProtocol, MalformedFramesCarryNoText) {
  const Classified r = classify("LOGIN s3cret");
  EXPECT_EQ(r.kind, FrameKind::malformed);
  EXPECT_TRUE(r.reason.empty());
  EXPECT_TRUE(r.key.empty());
}

TEST(ParseLineData, SplitsKeySeqAndPayload) {
  auto d = parse_line_data("DATA 005930 123 t=99 px=70100");
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->key, "005930");
  EXPECT_EQ(d->seq, 123u);
  EXPECT_EQ(d->payload, "t=99 px=70100");
}

TEST(ParseLineData, RejectsFramesThatAreNotData) {
  EXPECT_FALSE(parse_line_data("ACK A").has_value());
  EXPECT_FALSE(parse_line_data("DATA A 1x").has_value());
  EXPECT_FALSE(parse_line_data("DATAX A 1").has_value());
}

TEST(ParseSentTime, ReadsTheSteadyNanoseconds) {
  using std::chrono::nanoseconds;
  EXPECT_EQ(parse_sent_time("t=1500"), SteadyTime(nanoseconds(1500)));
  EXPECT_EQ(parse_sent_time("px=1 t=77 q=2"), SteadyTime(nanoseconds(77)));
}

TEST(ParseSentTime, ReturnsNulloptWithoutAValidStamp) {
  EXPECT_FALSE(parse_sent_time("").has_value());
  EXPECT_FALSE(parse_sent_time("px=1").has_value());
  EXPECT_FALSE(parse_sent_time("t=").has_value());
  EXPECT_FALSE(parse_sent_time("t=12a").has_value());
  EXPECT_FALSE(parse_sent_time("at=12").has_value());
}

}  // namespace
}  // namespace feedkit::testing
