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

}  // namespace
}  // namespace gls
