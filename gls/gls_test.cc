// The public header with the build's default strategy: what a user who
// writes `deps = ["//gls"]` gets.
#include "gls/gls.h"

#include <optional>
#include <sstream>
#include <thread>

#include "gtest/gtest.h"

namespace {

gls::ContextManager& GlobalManager() {
  static gls::ContextManager* mgr = new gls::ContextManager;
  return *mgr;
}

TEST(GlsTest, DefaultManagerUsesDefaultStrategy) {
  EXPECT_EQ(&GlobalManager().strategy(), &gls::DefaultStrategy());
  EXPECT_FALSE(gls::DefaultStrategy().name().empty());
}

TEST(GlsTest, FreeGoroutineIdFunctions) {
  EXPECT_EQ(gls::GetGoroutineId(), std::nullopt);
  std::optional<uint64_t> seen;
  gls::EnsureGoroutineId([&](uint64_t id) {
    seen = id;
    EXPECT_EQ(gls::GetGoroutineId(), id);
  });
  EXPECT_TRUE(seen.has_value());
  EXPECT_EQ(gls::GetGoroutineId(), std::nullopt);
}

TEST(GlsTest, HeaderExampleOutput) {
  const gls::ContextKey request_id = gls::GenSym();
  std::ostringstream out;
  auto my_log = [&] {
    if (const gls::Value* id = GlobalManager().GetValue(request_id)) {
      out << "My request id is: " << *id << "\n";
    } else {
      out << "No request id found\n";
    }
  };
  GlobalManager().SetValues({{request_id, "12345"}}, [&] {
    my_log();
    std::thread(my_log).join();
    gls::Go(my_log).join();
  });
  my_log();
  EXPECT_EQ(out.str(),
            "My request id is: 12345\nNo request id found\n"
            "My request id is: 12345\nNo request id found\n");
}

}  // namespace
