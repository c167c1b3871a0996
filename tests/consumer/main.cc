// A user's program: one producer, one consumer, one control event.
#include <chrono>
#include <cstdio>
#include <vector>

#include "feedkit/dispatcher.h"

int main() {
  auto dispatcher = feedkit::Dispatcher<int>::create({.capacity = 4}).value();
  auto producer = dispatcher->make_producer().value();
  for (int i = 0; i < 6; ++i) (void)producer.try_push(i);  // 2 oldest evicted
  producer.push_control(-1);
  std::vector<feedkit::Polled<int>> batch;
  dispatcher->poll(batch, 16, std::chrono::milliseconds(100));
  const bool ok = batch.size() == 5 && batch.front().value == 2 &&
                  batch.back().is_control() &&
                  batch.back().dropped_before() == 2;
  std::printf("consumer: %zu events, %s\n", batch.size(), ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}
