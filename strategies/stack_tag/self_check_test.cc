// Built against :tags_undefended — the tag functions with their defences
// removed and identical code folding forced — to prove the self-check notices
// a broken build, says why, and falls back (or aborts in strict mode).
#include <cstdlib>
#include <thread>

#include "gls/context_manager.h"
#include "gls/go.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "strategies/stack_tag/stack_tag_strategy.h"
#include "strategies/thread_local/thread_local_strategy.h"

namespace gls {
namespace {

using ::testing::AnyOf;
using ::testing::HasSubstr;

TEST(StackTagSelfCheckTest, BrokenTagsAreDiagnosed) {
  const absl::Status& status = StackTagSelfCheck();
  ASSERT_FALSE(status.ok()) << "the undefended build was not broken: the "
                               "compiler no longer folds identical functions?";
  EXPECT_THAT(std::string(status.message()),
              AnyOf(HasSubstr("identical code folding"), HasSubstr("folded")));
}

TEST(StackTagSelfCheckTest, FallsBackToThreadLocal) {
  ::testing::internal::CaptureStderr();
  const Strategy& strategy = StackTagStrategy();
  const std::string diagnostic = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(diagnostic, HasSubstr("falling back to the thread_local strategy"));
  EXPECT_THAT(diagnostic, HasSubstr("GLS_STACK_TAG_STRICT=1"));

  // Still a working strategy for threads, through the thread-local slot.
  ContextManager mgr(strategy);
  mgr.SetValues({{"k", 5}}, [&] {
    EXPECT_EQ(*mgr.GetValue("k")->TryAs<int>(), 5);
    EXPECT_EQ(strategy.Current(), ThreadLocalStrategy().Current());
    EXPECT_NE(strategy.Current(), nullptr);
    std::thread([&] { EXPECT_EQ(mgr.GetValue("k"), nullptr); }).join();
    Go([&] { EXPECT_EQ(*mgr.GetValue("k")->TryAs<int>(), 5); }).join();
  });
  EXPECT_EQ(mgr.GetValue("k"), nullptr);
}

TEST(StackTagSelfCheckDeathTest, StrictModeAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");  // fresh process state
  EXPECT_DEATH(
      {
        setenv("GLS_STACK_TAG_STRICT", "1", 1);
        (void)StackTagStrategy();
      },
      "GLS_STACK_TAG_STRICT=1: aborting");
}

}  // namespace
}  // namespace gls
