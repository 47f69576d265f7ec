#include "gls/values.h"

#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace gls {
namespace {

TEST(KeyTest, SymbolsAndStringsNeverCollide) {
  const ContextKey sym = GenSym();
  EXPECT_TRUE(Key(sym) == Key(sym));
  EXPECT_FALSE(Key(sym) == Key(GenSym()));
  EXPECT_FALSE(Key(sym) == Key(""));
  EXPECT_TRUE(Key("a") == Key(std::string("a")));
  EXPECT_FALSE(Key("a") == Key("b"));
  EXPECT_TRUE(Key(sym) < Key("a")) << "symbols sort before strings";
}

TEST(KeyTest, NullStringKeyIsAClearError) {
  const char* null_name = nullptr;
  try {
    Key key(null_name);
    FAIL() << "no error for a null string key";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("null"), std::string::npos);
  }
}

TEST(ValueTest, StringLiteralsAreStoredAsStdString) {
  Value v("12345");
  ASSERT_NE(v.TryAs<std::string>(), nullptr);
  EXPECT_EQ(*v.TryAs<std::string>(), "12345");
  EXPECT_EQ(v.TryAs<const char*>(), nullptr);
}

TEST(ValueTest, WrongTypeIsAnErrorNamingBothTypes) {
  Value v(42);
  EXPECT_EQ(v.TryAs<long>(), nullptr);
  absl::StatusOr<std::string> s = v.As<std::string>();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.status().message(),
            "gls: the value holds int, not the requested std::string");
  EXPECT_EQ(*v.As<int>(), 42);
}

struct Opaque {
  int x;
};

TEST(ValueTest, Printing) {
  std::ostringstream out;
  out << Value(std::string("abc")) << " " << Value(7) << " " << Value(Opaque{1});
  EXPECT_EQ(out.str(), "abc 7 <gls::(anonymous namespace)::Opaque>");
}

TEST(ValuesTest, LastDuplicateWinsAndOrderIsByKey) {
  Values v{{"b", 1}, {"a", 2}, {"b", 3}};
  EXPECT_EQ(v.size(), 2u);
  EXPECT_EQ(*v.Find("b")->TryAs<int>(), 3);
  std::vector<std::string> names;
  for (const auto& [key, value] : v) names.push_back(key.name());
  EXPECT_EQ(names, (std::vector<std::string>{"a", "b"}));
}

TEST(ValuesTest, MergedOverridesAndKeepsTheRest) {
  const ContextKey k = GenSym();
  Values base{{"a", 1}, {k, 2}, {"c", 3}};
  Values over{{"c", 30}, {"d", 40}};
  Values merged = Values::Merged(base, over);
  EXPECT_EQ(merged.size(), 4u);
  EXPECT_EQ(*merged.Find("a")->TryAs<int>(), 1);
  EXPECT_EQ(*merged.Find(k)->TryAs<int>(), 2);
  EXPECT_EQ(*merged.Find("c")->TryAs<int>(), 30);
  EXPECT_EQ(*merged.Find("d")->TryAs<int>(), 40);
  EXPECT_EQ(*base.Find("c")->TryAs<int>(), 3) << "base must not change";
}

TEST(ValuesTest, FindBeyondLinearSearch) {
  Values v;
  std::vector<ContextKey> keys;
  for (int i = 0; i < 50; ++i) {
    keys.push_back(GenSym());
    v.Set(keys.back(), i);
  }
  for (int i = 0; i < 50; ++i) EXPECT_EQ(*v.Find(keys[i])->TryAs<int>(), i);
  EXPECT_EQ(v.Find(GenSym()), nullptr);
  EXPECT_EQ(v.Find("x"), nullptr);
}

}  // namespace
}  // namespace gls
