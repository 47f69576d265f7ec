// Strands and gls::asio::Propagating (gls/contrib/asio.h), every spelling,
// under every strategy: one strand shared by 200 concurrent requests on an
// io_context run by 4 threads, each request posting to it, dispatching
// inline inside it, posting from a nested scope, waiting on a timer whose
// executor is the strand and posting a handler bound to it with
// bind_executor; every handler checks it sees exactly its own request's
// values and that the strand still runs one handler at a time.
//
// The first handler to run on the strand holds it until every request has
// queued its first handler behind it, so the strand's queue always holds
// handlers of many requests at once (issue 18, bug 1: they all ran in the
// values of the request whose post found the strand idle).
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>  // before Asio 1.18's awaitable.hpp, which needs it

#include "boost/asio/any_io_executor.hpp"
#include "boost/asio/bind_executor.hpp"
#include "boost/asio/dispatch.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/asio/strand.hpp"
#include "gls/contrib/asio.h"
#include "gls/contrib/asio_test_support.h"
#include "gls/gls.h"
#include "gtest/gtest.h"

namespace gls {
namespace {

namespace net = boost::asio;
using asio_testing::AsioFlowTest;
using asio_testing::StrandSection;

constexpr int kRequests = 200;
constexpr int kThreads = 4;
// Reads each request checks: the strand post (and again after the inline
// dispatch), that the dispatch ran inline, the dispatched handler, the post
// from a nested scope, the timer and the bind_executor handler.
constexpr int kChecksPerRequest = 7;

class AsioStrandTest : public AsioFlowTest {
 protected:
  // Runs kRequests requests on `shared` (a strand, however spelled) and
  // returns after the io_context has run out of work. Reads are recorded in
  // checker_; overlapping strand handlers in the returned count.
  template <typename Strand>
  int RunRequestsOnSharedStrand(net::io_context& io, const Strand& shared) {
    StrandSection section;
    std::atomic<int> queued{0};
    std::atomic<bool> gate_taken{false};
    for (int i = 0; i < kRequests; ++i) {
      const std::string id = "req-" + std::to_string(i);
      // Each request starts in a handler of its own on the io_context, so
      // requests start on all threads at once.
      net::post(io, [&, id, i] {
        InRequest(id, [&] {
          net::post(shared, [&, id] {
            auto entered = section.Enter();
            if (!gate_taken.exchange(true)) WaitFor(queued, kRequests);
            checker_.Expect(id, Read(), "post to the shared strand");
            bool ran_inline = false;
            net::dispatch(shared, [&, id] {
              auto inner = section.Enter();
              ran_inline = true;
              checker_.Expect(id, Read(), "dispatch inside the strand");
            });
            checker_.Expect("inline", ran_inline ? "inline" : "queued",
                            "dispatch inside the strand runs inline");
            checker_.Expect(id, Read(), "after the inline dispatch");
            InRequest(id + "/sub", [&] {
              net::post(shared, [&, id] {
                auto inner = section.Enter();
                checker_.Expect(id + "/sub", Read(),
                                "post to the strand from a nested scope");
              });
            });
          });
          queued.fetch_add(1);
          auto timer = std::make_shared<net::steady_timer>(
              shared, std::chrono::milliseconds(i % 5));
          timer->async_wait([&, id, timer](boost::system::error_code ec) {
            auto entered = section.Enter();
            EXPECT_FALSE(ec) << ec.message();
            checker_.Expect(id, Read(), "timer on the shared strand");
          });
          net::post(io.get_executor(), net::bind_executor(shared, [&, id] {
                      auto entered = section.Enter();
                      checker_.Expect(id, Read(),
                                      "bind_executor(strand) posted to io");
                    }));
        });
      });
    }
    RunThreads(io, kThreads);
    return section.overlaps();
  }

  void ExpectEveryRequestSawItsOwnValues(int overlaps) {
    EXPECT_EQ(overlaps, 0) << "the strand ran handlers concurrently";
    EXPECT_EQ(checker_.checks(), kRequests * kChecksPerRequest);
    EXPECT_TRUE(checker_.ok()) << checker_.Report();
  }
};

GLS_INSTANTIATE_FOR_EVERY_STRATEGY(AsioStrandTest);

// The spelling asio.h suggests: make_strand of the wrapped executor, shared.
TEST_P(AsioStrandTest, SharedMakeStrandOfTheWrappedExecutor) {
  net::io_context io;
  auto ex = gls::asio::Propagating(io.get_executor());
  auto shared = net::make_strand(ex);
  ExpectEveryRequestSawItsOwnValues(RunRequestsOnSharedStrand(io, shared));
}

// The same strand type spelled by hand.
TEST_P(AsioStrandTest, SharedStrandOfPropagatingExecutorSpelledByHand) {
  net::io_context io;
  auto ex = gls::asio::Propagating(io.get_executor());
  net::strand<gls::asio::PropagatingExecutor<net::io_context::executor_type>>
      shared(ex);
  ExpectEveryRequestSawItsOwnValues(RunRequestsOnSharedStrand(io, shared));
}

// A plain strand wrapped by the wrapper.
TEST_P(AsioStrandTest, SharedWrappedPlainStrand) {
  net::io_context io;
  auto shared = gls::asio::Propagating(net::make_strand(io.get_executor()));
  ExpectEveryRequestSawItsOwnValues(RunRequestsOnSharedStrand(io, shared));
}

// make_strand of the wrapped executor, then erased into any_io_executor (as
// Beast's streams and the default steady_timer hold their executor).
TEST_P(AsioStrandTest, SharedStrandErasedIntoAnyIoExecutor) {
  net::io_context io;
  auto ex = gls::asio::Propagating(io.get_executor());
  net::any_io_executor shared = net::make_strand(ex);
  ExpectEveryRequestSawItsOwnValues(RunRequestsOnSharedStrand(io, shared));
}

// When all there is is an any_io_executor that holds the wrapper (e.g. a
// Beast stream's get_executor()): the wrapper around make_strand of it.
TEST_P(AsioStrandTest, SharedWrappedStrandOverAnErasedWrappedExecutor) {
  net::io_context io;
  net::any_io_executor erased = gls::asio::Propagating(io.get_executor());
  auto shared = gls::asio::Propagating(net::make_strand(erased));
  ExpectEveryRequestSawItsOwnValues(RunRequestsOnSharedStrand(io, shared));
}

// Not supported, and shown: a strand made over an any_io_executor that
// holds the wrapper. Asio erased the wrapper's type, so the strand is
// Boost's own strand<any_io_executor>: it queues handlers unbound and runs
// its queue as one piece of work through the wrapper, in the values of the
// request whose post found it idle. With the first handler holding the
// strand until every request has queued behind it, every other request's
// first handler sees that request's values. asio.h says what to write
// instead (SharedWrappedStrandOverAnErasedWrappedExecutor above).
TEST_P(AsioStrandTest, MakeStrandOfAnErasedWrappedExecutorLeaks_Unsupported) {
  net::io_context io;
  net::any_io_executor erased = gls::asio::Propagating(io.get_executor());
  auto shared = net::make_strand(erased);
  static_assert(
      std::is_same_v<decltype(shared), net::strand<net::any_io_executor>>);
  const int overlaps = RunRequestsOnSharedStrand(io, shared);
  EXPECT_EQ(overlaps, 0);
  EXPECT_EQ(checker_.checks(), kRequests * kChecksPerRequest);
  // Each of the other requests' first handlers read its id three times.
  EXPECT_GE(checker_.failures(), 3 * (kRequests - 1)) << checker_.Report();
}

// The interface of strand<PropagatingExecutor<E>>: what Asio and users call
// on a strand, each doing what it does on strand<E> and binding what it
// runs.
TEST_P(AsioStrandTest, StrandOfTheWrapperHasStrandsInterface) {
  using Wrapped = gls::asio::PropagatingExecutor<net::io_context::executor_type>;
  using Strand = net::strand<Wrapped>;
  static_assert(net::execution::is_executor<Strand>::value);
  static_assert(net::is_executor<Strand>::value);  // the Networking TS's
  static_assert(std::is_same_v<decltype(net::make_strand(std::declval<Wrapped>())),
                               Strand>);
  static_assert(std::is_same_v<Strand::inner_executor_type, Wrapped>);
  static_assert(std::is_nothrow_copy_constructible_v<Strand>);

  net::io_context io;
  auto ex = gls::asio::Propagating(io.get_executor());
  Strand shared(ex);
  Strand copy = shared;
  Strand other(ex);
  EXPECT_TRUE(copy == shared);
  EXPECT_FALSE(other == shared);
  EXPECT_TRUE(other != shared);
  EXPECT_EQ(&shared.context(), &io);
  EXPECT_EQ(&net::query(shared, net::execution::context), &io);
  EXPECT_FALSE(shared.running_in_this_thread());
  EXPECT_FALSE(shared.carries_snapshot());
  EXPECT_FALSE(shared.get_inner_executor().carries_snapshot());
  EXPECT_TRUE(shared.get_inner_executor() == ex);

  // require/prefer: strands on the same queue, of the same kind; asking for
  // outstanding_work.tracked captures the values of that moment.
  auto never = net::require(shared, net::execution::blocking.never);
  static_assert(std::is_same_v<decltype(never)::inner_executor_type,
                               gls::asio::PropagatingExecutor<
                                   decltype(net::require(
                                       io.get_executor(),
                                       net::execution::blocking.never))>>);
  EXPECT_FALSE(never.carries_snapshot());
  auto tracked = InRequest("tracked", [&] {
    return net::prefer(shared, net::execution::outstanding_work.tracked);
  });
  EXPECT_TRUE(tracked.carries_snapshot());
  EXPECT_TRUE(tracked.get_inner_executor().carries_snapshot());
  // A new strand made from a carrying executor carries nothing.
  EXPECT_FALSE(net::make_strand(tracked.get_inner_executor()).carries_snapshot());
  // Converting keeps the queue and the carried values.
  net::strand<gls::asio::PropagatingExecutor<net::any_io_executor>> converted(
      tracked);
  EXPECT_TRUE(converted.carries_snapshot());

  std::atomic<int> ran{0};
  InRequest("poster", [&] {
    // Each of these binds at the call: "poster"; through `tracked` and
    // `converted`, their carried "tracked"; all on the one queue.
    shared.post([&] {
      EXPECT_TRUE(shared.running_in_this_thread());
      EXPECT_TRUE(never.running_in_this_thread());
      EXPECT_TRUE(tracked.running_in_this_thread());
      EXPECT_TRUE(converted.running_in_this_thread());
      checker_.Expect("poster", Read(), "strand.post(f, a)");
      // dispatch(f, a) from inside the strand runs inline.
      bool inline_ran = false;
      InRequest("nested", [&] {
        shared.dispatch([&] {
          inline_ran = true;
          checker_.Expect("nested", Read(), "strand.dispatch(f, a) inline");
        }, std::allocator<void>());
      });
      EXPECT_TRUE(inline_ran);
      ran.fetch_add(1);
    }, std::allocator<void>());
    shared.defer([&] {
      checker_.Expect("poster", Read(), "strand.defer(f, a)");
      ran.fetch_add(1);
    }, std::allocator<void>());
    shared.dispatch([&] {
      checker_.Expect("poster", Read(), "strand.dispatch(f, a) queued");
      ran.fetch_add(1);
    }, std::allocator<void>());
    net::execution::execute(never, [&] {
      checker_.Expect("poster", Read(), "execute(require(strand, never))");
      ran.fetch_add(1);
    });
    net::execution::execute(tracked, [&] {
      checker_.Expect("tracked", Read(), "execute(prefer(strand, tracked))");
      ran.fetch_add(1);
    });
    net::post(converted, [&] {
      checker_.Expect("tracked", Read(), "converted tracked strand");
      ran.fetch_add(1);
    });
  });
  // on_work_started/finished count as outstanding work on the io_context.
  // Run here with poll(): once the queue is empty, poll() stops the
  // io_context if, and only if, no work is outstanding, so stopped() answers
  // without waiting for anything.
  shared.on_work_started();
  for (int i = 0; i < 100 && ran.load() < 6; ++i) io.poll();
  ASSERT_EQ(ran.load(), 6);
  io.poll();
  EXPECT_FALSE(io.stopped()) << "the strand's started work was not counted";
  // `tracked` and `converted` track work too: let them go, then the
  // strand's own.
  { auto gone = std::move(tracked); }
  { auto gone = std::move(converted); }
  io.poll();
  EXPECT_FALSE(io.stopped()) << "on_work_started's work was lost";
  shared.on_work_finished();
  EXPECT_TRUE(io.stopped()) << "on_work_finished did not end the work";
  EXPECT_EQ(ran.load(), 6);
  EXPECT_EQ(checker_.checks(), 7);
  EXPECT_TRUE(checker_.ok()) << checker_.Report();
}

}  // namespace
}  // namespace gls
