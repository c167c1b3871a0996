// A protocol may answer an application heartbeat with a WebSocket pong frame
// instead of a text frame (the current official KIS sample answers PINGPONG
// that way). The server here is a bare Beast server in the test, because it
// must see control frames: it logs the client in, sends two heartbeats back
// to back, and records the pong frames that come back.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "feedkit/testing/line_protocol.h"
#include "feedkit/ws_client.h"

namespace feedkit {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;
using std::chrono::seconds;

// LineProtocol, but heartbeats are answered with pong frames.
class PongingProtocol final : public Protocol {
 public:
  bool broker_keeps_subscriptions() const override { return false; }
  std::vector<std::string> login_frames(const Credentials& c) override {
    return line_.login_frames(c);
  }
  std::string subscribe_frame(std::string_view key,
                              const Credentials& c) override {
    return line_.subscribe_frame(key, c);
  }
  std::string unsubscribe_frame(std::string_view key,
                                const Credentials& c) override {
    return line_.unsubscribe_frame(key, c);
  }
  Classified classify(std::string_view frame) override {
    Classified what = line_.classify(frame);
    if (what.kind == FrameKind::heartbeat) what.reply_as_pong = true;
    return what;
  }

 private:
  testing::LineProtocol line_{false};
};

// Accepts one client, answers its LOGIN, sends "PING 7" and "PING 8" and
// collects pong payloads until it has one for "PING 8" or 5 s pass.
class HeartbeatServer {
 public:
  HeartbeatServer() : acceptor_(ioc_, {net::ip::make_address("127.0.0.1"), 0}) {
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { serve(); });
  }
  ~HeartbeatServer() { thread_.join(); }

  std::string url() const {
    return "ws://127.0.0.1:" + std::to_string(port_) + "/";
  }
  // Blocks until the server is done; returns the pong payloads and the text
  // frames it received.
  std::pair<std::vector<std::string>, std::vector<std::string>> result() {
    done_.get_future().wait_for(seconds(10));
    std::lock_guard lock(mu_);
    return {pongs_, texts_};
  }

 private:
  void serve() {
    beast::error_code ec;
    websocket::stream<tcp::socket> ws(ioc_);
    acceptor_.accept(ws.next_layer(), ec);
    if (!ec) ws.accept(ec);
    beast::flat_buffer buffer;
    if (!ec) ws.read(buffer, ec);  // LOGIN <secret>
    if (!ec) {
      record_text(beast::buffers_to_string(buffer.data()));
      buffer.consume(buffer.size());
      ws.write(net::buffer(std::string("LOGIN_OK")), ec);
    }
    if (!ec) ws.write(net::buffer(std::string("PING 7")), ec);
    if (!ec) ws.write(net::buffer(std::string("PING 8")), ec);
    if (!ec) {
      ws.control_callback(
          [&](websocket::frame_type kind, beast::string_view payload) {
            if (kind != websocket::frame_type::pong) return;
            std::lock_guard lock(mu_);
            pongs_.emplace_back(payload.data(), payload.size());
            if (pongs_.back() == "PONG 8") ioc_.stop();
          });
      read_loop(ws, buffer);
      ioc_.run_for(seconds(5));
    }
    done_.set_value();
  }

  void read_loop(websocket::stream<tcp::socket>& ws, beast::flat_buffer& b) {
    ws.async_read(b, [this, &ws, &b](beast::error_code ec, std::size_t) {
      if (ec) return;
      record_text(beast::buffers_to_string(b.data()));
      b.consume(b.size());
      read_loop(ws, b);
    });
  }

  void record_text(std::string text) {
    std::lock_guard lock(mu_);
    texts_.push_back(std::move(text));
  }

  net::io_context ioc_;
  tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::thread thread_;
  std::promise<void> done_;
  std::mutex mu_;
  std::vector<std::string> pongs_;
  std::vector<std::string> texts_;
};

TEST(WsClientPong, HeartbeatAnsweredWithPongFramesNotText) {
  HeartbeatServer server;
  net::io_context ioc;
  WsClientOptions o;
  o.url = server.url();
  WsClientCallbacks cb;
  cb.on_data = [](std::string_view, SteadyTime, std::uint64_t) {};
  auto client = WsClient::create(
                    ioc, o, std::make_unique<PongingProtocol>(),
                    [](bool, auto done) {
                      done(Credentials{"k", SteadyTime::max()});
                    },
                    cb)
                    .value();
  client->start();
  std::thread runner([&] { ioc.run(); });

  const auto [pongs, texts] = server.result();
  client->stop();
  runner.join();

  // The newest heartbeat is always answered; one that arrives while an
  // earlier pong is still being written may replace it.
  ASSERT_FALSE(pongs.empty());
  EXPECT_EQ(pongs.back(), "PONG 8");
  EXPECT_LE(pongs.size(), 2u);
  for (const auto& t : texts)
    EXPECT_EQ(t.rfind("PONG", 0), std::string::npos) << t;
  EXPECT_EQ(client->stats().frames_out, texts.size() + pongs.size());
}

}  // namespace
}  // namespace feedkit
