// gls::spdlog_values (gls/contrib/spdlog.h) under every strategy: exact lines
// inside, between and outside scopes, typed and untyped keys, escaping, values
// carried by gls::Go and gls::Bind, 8 threads logging at once, bad input
// rejected up front, and a typed std::string entry formatted with no
// allocation (a counting allocator).
#include "gls/contrib/spdlog.h"

#include <cstdlib>
#include <ctime>
#include <memory>
#include <mutex>
#include <new>
#include <ostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "fmt/format.h"
#include "gls/gls.h"
#include "gls/testing/counting_allocator.h"
#include "gtest/gtest.h"
#include "spdlog/details/log_msg.h"
#include "spdlog/logger.h"
#include "spdlog/sinks/ostream_sink.h"
#include "strategies/goid/goid_strategy.h"
#include "strategies/stack_tag/stack_tag_strategy.h"
#include "strategies/thread_local/thread_local_strategy.h"

// A type fmt formats (and that has no operator<<).
struct FmtPoint {
  int x, y;
};
template <>
struct fmt::formatter<FmtPoint> : fmt::formatter<std::string_view> {
  template <typename Ctx>
  auto format(const FmtPoint& p, Ctx& ctx) const {
    return fmt::format_to(ctx.out(), "({}, {})", p.x, p.y);
  }
};

// A type only operator<< prints.
struct StreamedUser {
  std::string name;
  friend std::ostream& operator<<(std::ostream& os, const StreamedUser& u) {
    return os << "user:" << u.name;
  }
};

// A type nothing prints.
struct Opaque {
  int n;
};

namespace gls {
namespace {

using spdlog_values::Flag;
using spdlog_values::MakeFormatter;

using ::gls::testing::AllocationsDuring;

// A logger writing into a string stream through `formatter`.
class CapturingLogger {
 public:
  explicit CapturingLogger(std::unique_ptr<spdlog::formatter> formatter)
      : sink_(std::make_shared<spdlog::sinks::ostream_sink_mt>(out_)),
        logger_("gls_spdlog_test", sink_) {
    logger_.set_formatter(std::move(formatter));
    logger_.set_level(spdlog::level::trace);
  }
  spdlog::logger& operator*() { return logger_; }
  spdlog::logger* operator->() { return &logger_; }
  // Everything logged so far; clears it. Only while no thread is logging.
  std::string Take() {
    std::string s = out_.str();
    out_.str("");
    return s;
  }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink_;
  spdlog::logger logger_;
};

std::string StrategyName(const ::testing::TestParamInfo<const Strategy*>& p) {
  return p.param == nullptr ? "Default" : std::string(p.param->name());
}

class SpdlogTest : public ::testing::TestWithParam<const Strategy*> {
 protected:
  SpdlogTest()
      : mgr_(GetParam() == nullptr ? std::make_unique<ContextManager>()
                                   : std::make_unique<ContextManager>(*GetParam())) {}
  ContextManager& mgr() { return *mgr_; }

  std::unique_ptr<ContextManager> mgr_;
  const TypedKey<std::string> kRequestId;
  const TypedKey<int> kAttempt;
  const ContextKey kTenant = GenSym();
};

INSTANTIATE_TEST_SUITE_P(Strategies, SpdlogTest,
                         ::testing::Values(nullptr, &ThreadLocalStrategy(),
                                           &GoidStrategy(), &StackTagStrategy()),
                         StrategyName);

TEST_P(SpdlogTest, InsideAScopeEveryLabelInOrder) {
  CapturingLogger log(MakeFormatter(
      "[%l] %v%*", Flag(mgr())
                       .Add("request_id", kRequestId)
                       .Add("tenant", kTenant)
                       .Add("user", Key("user"))
                       .Add("attempt", kAttempt)));
  mgr().SetValues({{kRequestId, "4bf92f3577b34da6"},
                   {kTenant, "acme"},
                   {"user", "bob"},
                   {kAttempt, 3}},
                  [&] { log->info("handled"); });
  EXPECT_EQ(log.Take(),
            "[info] handled request_id=4bf92f3577b34da6 tenant=acme user=bob "
            "attempt=3\n");
}

TEST_P(SpdlogTest, OutsideEveryScopeNothingExtra) {
  CapturingLogger log(MakeFormatter(
      "[%l] %v%*|", Flag(mgr()).Add("request_id", kRequestId).Add("tenant", kTenant)));
  log->warn("idle");
  EXPECT_EQ(log.Take(), "[warning] idle|\n");
  mgr().SetValues({{kTenant, "acme"}}, [] {});
  log->warn("after");
  EXPECT_EQ(log.Take(), "[warning] after|\n");
}

TEST_P(SpdlogTest, EntriesWithoutAValuePrintNothing) {
  CapturingLogger log(MakeFormatter(
      "%v%*", Flag(mgr())
                  .Add("request_id", kRequestId)
                  .Add("tenant", kTenant)
                  .Add("attempt", kAttempt)));
  mgr().SetValues({{kTenant, "acme"}}, [&] { log->info("a"); });
  mgr().SetValues({{kAttempt, 0}}, [&] { log->info("b"); });
  mgr().SetValues({{"unrelated", "x"}}, [&] { log->info("c"); });
  EXPECT_EQ(log.Take(), "a tenant=acme\nb attempt=0\nc\n");
}

TEST_P(SpdlogTest, NestedScopesInnerShadows) {
  CapturingLogger log(MakeFormatter(
      "%v%*", Flag(mgr()).Add("request_id", kRequestId).Add("tenant", kTenant)));
  mgr().SetValues({{kRequestId, "outer"}, {kTenant, "acme"}}, [&] {
    log->info("1");
    mgr().SetValues({{kRequestId, "inner"}}, [&] {
      log->info("2");
      mgr().SetValues({{kTenant, "globex"}}, [&] { log->info("3"); });
    });
    log->info("4");
  });
  log->info("5");
  EXPECT_EQ(log.Take(),
            "1 request_id=outer tenant=acme\n"
            "2 request_id=inner tenant=acme\n"
            "3 request_id=inner tenant=globex\n"
            "4 request_id=outer tenant=acme\n"
            "5\n");
}

TEST_P(SpdlogTest, TypedValuesOfEveryKind) {
  const TypedKey<bool> kBool;
  const TypedKey<double> kDouble;
  const TypedKey<long long> kNegative;
  const TypedKey<FmtPoint> kPoint;
  const TypedKey<StreamedUser> kUser;
  CapturingLogger log(MakeFormatter("%v%*", Flag(mgr())
                                                .Add("b", kBool)
                                                .Add("d", kDouble)
                                                .Add("n", kNegative)
                                                .Add("p", kPoint)
                                                .Add("u", kUser)));
  mgr().SetValues({{kBool, true},
                   {kDouble, 0.5},
                   {kNegative, -1234567890123LL},
                   {kPoint, FmtPoint{1, 2}},
                   {kUser, StreamedUser{"bob"}}},
                  [&] { log->info("x"); });
  EXPECT_EQ(log.Take(),
            "x b=true d=0.5 n=-1234567890123 p=\"(1, 2)\" u=user:bob\n");
}

TEST_P(SpdlogTest, UntypedValuesPrintAsGlsValueDoes) {
  const ContextKey kCount = GenSym();
  const ContextKey kOpaque = GenSym();
  CapturingLogger log(MakeFormatter("%v%*", Flag(mgr())
                                                .Add("count", kCount)
                                                .Add("user", Key("user"))
                                                .Add("opaque", kOpaque)));
  mgr().SetValues({{kCount, 42}, {"user", StreamedUser{"ann"}}, {kOpaque, Opaque{1}}},
                  [&] { log->info("x"); });
  std::ostringstream opaque;
  opaque << Value(Opaque{1});  // "<Opaque>" or however Value names it
  ASSERT_EQ(opaque.str().find(' '), std::string::npos);
  EXPECT_EQ(log.Take(), "x count=42 user=user:ann opaque=" + opaque.str() + "\n");
}

TEST_P(SpdlogTest, ValuesAreEscapedSoTheLineKeepsItsShape) {
  const ContextKey kUntyped = GenSym();
  CapturingLogger log(MakeFormatter(
      "%v%*", Flag(mgr()).Add("v", kRequestId).Add("u", kUntyped)));
  struct Case {
    std::string value;
    std::string printed;
  };
  const std::vector<Case> cases = {
      {"plain", "plain"},
      {"", "\"\""},
      {"bob smith", "\"bob smith\""},
      {"a\nb", "\"a\\nb\""},
      {"a\r\tb", "\"a\\r\\tb\""},
      {"say \"hi\"", "\"say \\\"hi\\\"\""},
      {"c:\\dir", "\"c:\\\\dir\""},
      {"k=v", "\"k=v\""},
      {std::string("nul\0x", 5), "\"nul\\x00x\""},
      {"bell\x07\x7f", "\"bell\\x07\\x7f\""},
      {"caf\xc3\xa9", "caf\xc3\xa9"},  // UTF-8 as is
  };
  for (const Case& c : cases) {
    mgr().SetValues({{kRequestId, c.value}, {kUntyped, c.value}},
                    [&] { log->info("x"); });
    EXPECT_EQ(log.Take(), "x v=" + c.printed + " u=" + c.printed + "\n")
        << "value: " << c.value;
  }
}

// Every byte at every position of a 24-byte value (three 8-byte words and
// none, for the word-at-a-time scan): quoted exactly when the byte is a
// control, a space, 0x7f, '"', '=' or '\\'.
TEST_P(SpdlogTest, EveryByteAtEveryPositionIsClassified) {
  Flag flag(mgr());
  flag.Add("v", kRequestId);
  const spdlog::details::log_msg msg(spdlog::source_loc{}, "name",
                                     spdlog::level::info, "message");
  const std::tm tm_time{};
  int wrong = 0;
  for (int b = 0; b < 256; ++b) {
    const unsigned char byte = static_cast<unsigned char>(b);
    const bool special = byte <= 0x20 || byte == 0x7f || byte == '"' ||
                         byte == '=' || byte == '\\';
    for (size_t length : {1u, 7u, 8u, 9u, 24u}) {
      for (size_t pos = 0; pos < length; ++pos) {
        std::string value(length, 'a');
        value[pos] = static_cast<char>(byte);
        spdlog::memory_buf_t dest;
        mgr().SetValues({{kRequestId, value}},
                        [&] { flag.format(msg, tm_time, dest); });
        const std::string got(dest.data(), dest.size());
        const bool quoted = got.size() > 3 && got[3] == '"';  // " v=\""
        if (quoted != special || (!special && got != " v=" + value)) {
          if (++wrong <= 5) {
            ADD_FAILURE() << "byte " << b << " at " << pos << " of " << length
                          << ": " << got;
          }
        }
      }
    }
  }
  EXPECT_EQ(wrong, 0);
}

TEST_P(SpdlogTest, GoThreadAndBoundTaskSeeTheirValues) {
  CapturingLogger log(MakeFormatter("%v%*", Flag(mgr()).Add("request_id", kRequestId)));
  std::function<void()> task;
  mgr().SetValues({{kRequestId, "r1"}}, [&] {
    Go([&] { log->info("go"); }).join();
    std::jthread plain([&] { log->info("plain"); });
    plain.join();
    task = Bind([&] { log->info("bound"); });
  });
  EXPECT_EQ(log.Take(), "go request_id=r1\nplain\n");
  std::jthread worker([&] { task(); });
  worker.join();
  task();
  mgr().SetValues({{kRequestId, "r2"}}, [&] { task(); });
  EXPECT_EQ(log.Take(), "bound request_id=r1\nbound request_id=r1\nbound request_id=r1\n");
}

TEST_P(SpdlogTest, EightThreadsEachSeeOnlyTheirOwnValues) {
  constexpr int kThreads = 8;
  constexpr int kLines = 1000;
  CapturingLogger log(MakeFormatter(
      "%v%*", Flag(mgr()).Add("id", kRequestId).Add("n", kAttempt)));
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        mgr().SetValues({{kRequestId, "thread-" + std::to_string(t)}, {kAttempt, t}},
                        [&] {
                          for (int i = 0; i < kLines; ++i) log->info("{}", t);
                        });
      });
    }
  }
  std::istringstream lines(log.Take());
  std::vector<int> per_thread(kThreads, 0);
  int wrong = 0;
  std::string line;
  while (std::getline(lines, line)) {
    const int t = std::atoi(line.c_str());
    ASSERT_TRUE(t >= 0 && t < kThreads) << line;
    const std::string want = std::to_string(t) + " id=thread-" + std::to_string(t) +
                             " n=" + std::to_string(t);
    if (line != want) {
      if (++wrong <= 5) ADD_FAILURE() << "got " << line << ", want " << want;
    }
    ++per_thread[t];
  }
  EXPECT_EQ(wrong, 0);
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(per_thread[t], kLines) << t;
}

TEST_P(SpdlogTest, TypedStringFormatsWithoutAllocating) {
  Flag flag(mgr());
  flag.Add("request_id", kRequestId).Add("attempt", kAttempt);
  const std::string long_id = "4bf92f3577b34da6-0123456789";  // > 15 chars
  ASSERT_GT(long_id.size(), 15u);
  const spdlog::details::log_msg msg(spdlog::source_loc{}, "name",
                                     spdlog::level::info, "message");
  const std::tm tm_time{};
  spdlog::memory_buf_t dest;
  dest.reserve(4096);
  mgr().SetValues({{kRequestId, long_id}, {kAttempt, 12345}}, [&] {
    flag.format(msg, tm_time, dest);  // warm-up (a strategy's first read)
    dest.clear();
    const int64_t allocated =
        AllocationsDuring([&] { flag.format(msg, tm_time, dest); });
    EXPECT_EQ(allocated, 0);
  });
  EXPECT_EQ(std::string(dest.data(), dest.size()),
            " request_id=" + long_id + " attempt=12345");
  // The counter does see allocations on this thread.
  EXPECT_GE(AllocationsDuring([&] { std::string copy(long_id); }), 1);
}

TEST_P(SpdlogTest, CopiesAndClonesPrintTheSame) {
  Flag flag(mgr());
  flag.Add("request_id", kRequestId);
  // Registered by hand, on a logger with two sinks (set_formatter clones).
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<Flag>('&', flag).set_pattern("%v%&");
  std::ostringstream a, b;
  spdlog::logger logger("two_sinks",
                        {std::make_shared<spdlog::sinks::ostream_sink_st>(a),
                         std::make_shared<spdlog::sinks::ostream_sink_st>(b)});
  logger.set_formatter(std::move(formatter));
  mgr().SetValues({{kRequestId, "r9"}}, [&] { logger.info("x"); });
  EXPECT_EQ(a.str(), "x request_id=r9\n");
  EXPECT_EQ(b.str(), "x request_id=r9\n");
}

TEST(SpdlogBadInputTest, LabelsAreCheckedAtAdd) {
  ContextManager mgr;
  const TypedKey<std::string> key;
  auto message_of = [&](std::string_view label) -> std::string {
    try {
      Flag(mgr).Add(label, key);
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "no exception";
  };
  EXPECT_NE(message_of("").find("empty"), std::string::npos) << message_of("");
  EXPECT_NE(message_of("request id").find("a space"), std::string::npos);
  EXPECT_NE(message_of("a=b").find("'='"), std::string::npos);
  EXPECT_NE(message_of("tab\there").find("control character"), std::string::npos);
  EXPECT_NE(message_of("quo\"te").find("contains"), std::string::npos);
  EXPECT_NE(message_of("back\\slash").find("contains"), std::string::npos);
  EXPECT_EQ(message_of("request_id"), "no exception");
  EXPECT_EQ(message_of("x-trace.id:7"), "no exception");
  // Untyped keys too.
  EXPECT_THROW(Flag(mgr).Add("a b", GenSym()), std::invalid_argument);
  EXPECT_THROW(Flag(mgr).Add("", Key("user")), std::invalid_argument);
}

TEST(SpdlogBadInputTest, FlagCharactersSpdlogUsesAreRejected) {
  ContextManager mgr;
  for (char c : std::string("vltnYmd+%-=05!@#$^")) {
    try {
      MakeFormatter("%v", Flag(mgr), c);
      ADD_FAILURE() << "accepted '" << c << "'";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(std::string("'") + c + "'"),
                std::string::npos)
          << e.what();
    }
  }
  EXPECT_THROW(MakeFormatter("%v", Flag(mgr), ' '), std::invalid_argument);
  EXPECT_THROW(MakeFormatter("%v", Flag(mgr), '\n'), std::invalid_argument);
  EXPECT_THROW(MakeFormatter("%v", Flag(mgr), '\x80'), std::invalid_argument);
  for (char c : std::string("*&QjkwyZ~")) {
    EXPECT_NO_THROW(MakeFormatter("%v", Flag(mgr), c)) << c;
  }
}

TEST(SpdlogFlagTest, AnotherFlagCharacterWorks) {
  ContextManager mgr;
  const TypedKey<std::string> key;
  CapturingLogger log(MakeFormatter("<%Q> %v", Flag(mgr).Add("k", key), 'Q'));
  mgr.SetValues({{key, "v"}}, [&] { log->info("m"); });
  log->info("m");
  EXPECT_EQ(log.Take(), "< k=v> m\n<> m\n");
}

}  // namespace
}  // namespace gls
