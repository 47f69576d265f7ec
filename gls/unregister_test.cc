// What an unregistered manager sees inside Snapshot::Run, and what a manager
// unregistered during a Run sees (gls/context_manager.h, Unregister;
// gls/snapshot.h, Run): the two behaviours docs/reliability.md listed as
// left open, decided. Every pair of strategies (the manager's, and that of
// the other managers alive).
#include <memory>
#include <string>
#include <thread>
#include <tuple>

#include "gls/gls.h"
#include "gtest/gtest.h"
#include "strategies/goid/goid_strategy.h"
#include "strategies/stack_tag/stack_tag_strategy.h"
#include "strategies/thread_local/thread_local_strategy.h"

namespace gls {
namespace {

using Pair = std::tuple<const Strategy*, const Strategy*>;

class UnregisterTest : public ::testing::TestWithParam<Pair> {
 protected:
  const Strategy& mine() const { return *std::get<0>(GetParam()); }
  const Strategy& other() const { return *std::get<1>(GetParam()); }
  static std::string Read(const ContextManager& mgr) {
    const Value* v = mgr.GetValue("k");
    return v == nullptr ? "none" : *v->TryAs<std::string>();
  }
};

std::string PairName(const ::testing::TestParamInfo<Pair>& p) {
  return std::string(std::get<0>(p.param)->name()) + "_with_" +
         std::string(std::get<1>(p.param)->name());
}

const Strategy* const kStrategies[] = {&ThreadLocalStrategy(), &GoidStrategy(),
                                       &StackTagStrategy()};
INSTANTIATE_TEST_SUITE_P(Pairs, UnregisterTest,
                         ::testing::Combine(::testing::ValuesIn(kStrategies),
                                            ::testing::ValuesIn(kStrategies)),
                         PairName);

// Inside Run, an unregistered manager sees nothing of the flow's values:
// with no other manager alive, with another registered one of its own
// strategy, and with one of another strategy (before the decision, the
// first found the flow's value and the second did not).
TEST_P(UnregisterTest, UnregisteredManagerSeesNothingInsideRun) {
  for (int others = 0; others < 2; ++others) {
    ContextManager m(mine());
    m.Unregister();
    std::unique_ptr<ContextManager> registered;
    if (others == 1) registered = std::make_unique<ContextManager>(other());
    m.SetValues({{"k", std::string("own")}}, [&] {
      EXPECT_EQ(Read(m), "own");
      EXPECT_EQ(Snapshot().Run([&] { return Read(m); }), "none") << "others " << others;
      const Snapshot here = Capture();  // m is not carried
      EXPECT_EQ(here.Run([&] { return Read(m); }), "none") << "others " << others;
      std::string in_thread;
      std::thread([&] { in_thread = here.Run([&] { return Read(m); }); }).join();
      EXPECT_EQ(in_thread, "none");
      // Its own scopes inside the Run show their values there.
      EXPECT_EQ(Snapshot().Run([&] {
                  return m.SetValues({{"k", std::string("inner")}}, [&] { return Read(m); });
                }),
                "inner");
      EXPECT_EQ(Read(m), "own");  // back after the Run
    });
  }
}

// A manager unregistered while a Run carries its values: shows them, or
// none, until a Run ends in that flow; none after; never anything else; and
// its own value after the outermost Run.
TEST_P(UnregisterTest, ManagerUnregisteredDuringARun) {
  ContextManager m(mine());
  ContextManager keep(other());
  const Snapshot carried = m.SetValues({{"k", std::string("carried")}}, [] {
    return Capture();
  });
  m.SetValues({{"k", std::string("own")}}, [&] {
    carried.Run([&] {
      EXPECT_EQ(Read(m), "carried");
      m.Unregister();
      const std::string during = Read(m);
      EXPECT_TRUE(during == "carried" || during == "none") << during;
      Snapshot().Run([&] { EXPECT_EQ(Read(m), "none"); });
      EXPECT_EQ(Read(m), "none");  // a nested Run ended in this flow
      EXPECT_EQ(m.SetValues({{"k", std::string("set")}}, [&] { return Read(m); }), "set");
    });
    EXPECT_EQ(Read(m), "own");
  });
  EXPECT_EQ(Read(m), "none");
}

}  // namespace
}  // namespace gls
