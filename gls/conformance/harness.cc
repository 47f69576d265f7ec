#include "gls/conformance/harness.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace gls {
namespace conformance {

uint64_t EnvSeed(const char* name) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return 1;
  if (std::string(text) == "random") {
    std::random_device device;
    return (uint64_t{device()} << 32) | device();
  }
  return std::strtoull(text, nullptr, 0);
}

int64_t EnvInt(const char* name, int64_t fallback) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return fallback;
  return std::strtoll(text, nullptr, 0);
}

uint64_t Mix(uint64_t seed, uint64_t a, uint64_t b, uint64_t c) {
  uint64_t x = seed ^ (a * 0x9e3779b97f4a7c15ULL) ^ (b * 0xbf58476d1ce4e5b9ULL) ^
               (c * 0x94d049bb133111ebULL);
  x ^= x >> 31;
  x *= 0xd6e8feb96aa77a69ULL;
  x ^= x >> 29;
  return x;
}

void WarmUpUnwinder() {
  try {
    throw 1;
  } catch (int) {
  }
}

uint32_t Choices::Read(int span) {
  if (span <= 0) return 0;
  uint32_t x = 0;
  for (uint32_t left = static_cast<uint32_t>(span); left != 0 && pos_ < size_;
       left >>= 8) {
    x = x << 8 | data_[pos_++];
  }
  return x % (static_cast<uint32_t>(span) + 1);
}

uint64_t HashBytes(const uint8_t* data, size_t size) {
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < size; ++i) hash = (hash ^ data[i]) * 0x100000001b3ULL;
  return hash;
}

bool DeltaDebug(const std::function<int()>& size,
                const std::function<bool()>& left,
                const std::function<bool(int, int)>& try_drop) {
  bool any = false;
  int granularity = 2;
  while (left()) {
    const int n = size();
    if (n == 0) break;
    granularity = std::min(granularity, n);
    const int chunk = (n + granularity - 1) / granularity;
    bool reduced = false;
    for (int start = 0; start < n && left(); start += chunk) {
      if (try_drop(start, std::min(n, start + chunk))) {
        granularity = std::max(granularity - 1, 2);
        reduced = any = true;
        break;
      }
    }
    if (!reduced) {
      if (granularity >= n) break;  // no single item can go
      granularity = std::min(granularity * 2, n);
    }
  }
  return any;
}

bool FailsInMostOf3(const std::function<bool()>& run) {
  int failed = 0;
  for (int i = 0; i < 3; ++i) {
    if (run()) ++failed;
    if (failed == 2) return true;
    if (i - failed == 1) return false;  // two runs passed
  }
  return false;
}

std::string FuzzTotals::Line(const char* target, const char* name) const {
  std::string line = std::string(target) + " " + name + ":";
  for (size_t i = 0; i < labels_.size(); ++i) {
    line += std::string(i == 0 ? " " : ", ") + labels_[i] + " " +
            std::to_string(counts_[i].load());
  }
  return line + ", divergences 0\n";
}

void PrintFuzzTotalsLine(const std::string& line) {
  std::fprintf(stderr, "%s", line.c_str());
}

}  // namespace conformance
}  // namespace gls
