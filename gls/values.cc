#include "gls/values.h"

#include <cxxabi.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <limits>
#include <new>
#include <memory>
#include <stdexcept>
#include <type_traits>
#include <utility>

namespace gls {

namespace internal {

static_assert(std::atomic<uint64_t>::is_always_lock_free,
              "GenSym() is documented lock-free");

uint64_t NextSymbol() {
  // Starts at 1: 0 is the null key (and marks string keys inside Key).
  static std::atomic<uint64_t> counter{0};
  return counter.fetch_add(1, std::memory_order_relaxed) + 1;
}

std::string TypeName(const std::type_info& type) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> demangled(
      abi::__cxa_demangle(type.name(), nullptr, nullptr, &status), std::free);
  std::string name = status == 0 ? demangled.get() : type.name();
  // The standard string's full name helps nobody.
  const std::string kLongString =
      "std::__cxx11::basic_string<char, std::char_traits<char>, "
      "std::allocator<char> >";
  for (size_t at; (at = name.find(kLongString)) != std::string::npos;) {
    name.replace(at, kLongString.size(), "std::string");
  }
  return name;
}

}  // namespace internal

ContextKey GenSym() { return ContextKey(internal::NextSymbol()); }

Key::Key(const char* name) : sym_(0) {
  if (name == nullptr) {
    throw std::invalid_argument("gls::Key: a string key may not be null");
  }
  ::new (static_cast<void*>(name_buffer_)) std::string(name);
}

const std::string& Key::EmptyName() {
  static const std::string* const kEmpty = new std::string;
  return *kEmpty;
}

KeyView::KeyView(const char* name) : sym_(0) {
  if (name == nullptr) {
    throw std::invalid_argument("gls::KeyView: a string key may not be null");
  }
  name_ = name;
}

std::ostream& operator<<(std::ostream& os, const Key& key) {
  if (key.is_symbol()) return os << "gls::ContextKey#" << key.sym_;
  return os << '"' << key.name() << '"';
}

std::ostream& operator<<(std::ostream& os, const KeyView& key) {
  if (key.sym_ != 0) return os << "gls::ContextKey#" << key.sym_;
  return os << '"' << key.name_ << '"';
}

absl::Status Value::TypeMismatch(const std::type_info& requested) const {
  return absl::FailedPreconditionError(
      "gls: the value holds " + internal::TypeName(type()) +
      ", not the requested " + internal::TypeName(requested));
}

Values::Values(std::initializer_list<Entry> entries) {
  // Within the inline capacity there is room already; reserve() is an
  // out-of-line call even then (about 27 instructions per SetValues).
  if (entries.size() > entries_.capacity()) entries_.reserve(entries.size());
  for (const Entry& e : entries) {
    // Keys given in order (always so for one entry): each entry is copied
    // once, straight into place. Otherwise Set sorts and replaces.
    const bool typed_ok =
        e.first.typed() == nullptr || *e.first.typed() == e.second.type();
    if (typed_ok && (entries_.empty() || entries_.back().first < e.first)) {
      entries_.emplace_back(e);
    } else {
      Set(e.first, e.second);
    }
  }
}

void Values::Set(Key key, Value value) {
  if (key.typed() != nullptr && *key.typed() != value.type()) {
    throw std::invalid_argument(
        "gls::Values::Set: key gls::ContextKey#" + std::to_string(key.symbol()) +
        " is a gls::TypedKey<" + internal::TypeName(*key.typed()) +
        ">, but the value holds " + internal::TypeName(value.type()));
  }
  auto it = std::lower_bound(
      entries_.begin(), entries_.end(), key,
      [](const Entry& e, const Key& k) { return e.first < k; });
  if (it != entries_.end() && it->first == key) {
    it->second = std::move(value);
  } else {
    entries_.insert(it, Entry(std::move(key), std::move(value)));
  }
}

KeyView Values::ContextKeyView(uint64_t id) {
  KeyView view{std::string_view()};
  view.sym_ = id;
  return view;
}

const Value* Values::FindSorted(KeyView key) const {
  // The order of Key's operator<: symbols first, by descending number, then
  // strings by name.
  auto before = [](const Entry& e, const KeyView& k) {
    if (e.first.symbol() != k.symbol()) return e.first.symbol() > k.symbol();
    return std::string_view(e.first.name()) < k.name();
  };
  auto it = std::lower_bound(entries_.begin(), entries_.end(), key, before);
  return it != entries_.end() && key.Matches(it->first) ? &it->second : nullptr;
}

void Values::EntryStore::Grow(size_t n) {
  if (n > std::numeric_limits<uint32_t>::max() / 2) throw std::bad_alloc();
  const size_t capacity = std::max<size_t>(n, size_t{capacity_} * 2);
  Entry* block = static_cast<Entry*>(::operator new(capacity * sizeof(Entry)));
  // Entry's move constructor is noexcept: nothing below throws.
  for (uint32_t i = 0; i < size_; ++i) {
    ::new (static_cast<void*>(block + i)) Entry(std::move(data_[i]));
    data_[i].~Entry();
  }
  if (!IsInline()) ::operator delete(static_cast<void*>(data_));
  data_ = block;
  capacity_ = static_cast<uint32_t>(capacity);
}

void Values::EntryStore::Clear() noexcept {
  for (uint32_t i = 0; i < size_; ++i) data_[i].~Entry();
  size_ = 0;
  if (!IsInline()) {
    ::operator delete(static_cast<void*>(data_));
    data_ = InlineData();
    capacity_ = kInlineEntries;
  }
}

void Values::EntryStore::TakeFrom(EntryStore& other) noexcept {
  if (!other.IsInline()) {
    data_ = other.data_;
    size_ = other.size_;
    capacity_ = other.capacity_;
    other.data_ = other.InlineData();
    other.size_ = 0;
    other.capacity_ = kInlineEntries;
    return;
  }
  for (uint32_t i = 0; i < other.size_; ++i) {
    ::new (static_cast<void*>(data_ + i)) Entry(std::move(other.data_[i]));
    other.data_[i].~Entry();
  }
  size_ = other.size_;
  other.size_ = 0;
}

void Values::EntryStore::insert(Entry* at, Entry&& entry) {
  const uint32_t index = static_cast<uint32_t>(at - data_);
  if (size_ == capacity_) Grow(size_ + 1);
  // Shift [index, size_) one place right, from the end: every step is a
  // noexcept move.
  Entry* data = data_;
  if (index == size_) {
    ::new (static_cast<void*>(data + size_)) Entry(std::move(entry));
  } else {
    ::new (static_cast<void*>(data + size_)) Entry(std::move(data[size_ - 1]));
    for (uint32_t i = size_ - 1; i > index; --i) {
      data[i] = std::move(data[i - 1]);
    }
    data[index] = std::move(entry);
  }
  ++size_;
}

template <typename V>
Values Values::MergedImpl(const Values& base, V&& overrides) {
  // Both are sorted: one linear merge, overrides winning on equal keys.
  // With an rvalue `overrides`, its entries are moved (each value is copied
  // at most once on its way from the caller into a frame).
  constexpr bool kMove = !std::is_lvalue_reference_v<V>;
  Values out;
  out.entries_.reserve(base.size() + overrides.size());
  auto b = base.entries_.begin(), be = base.entries_.end();
  auto o = overrides.entries_.begin(), oe = overrides.entries_.end();
  while (b != be || o != oe) {
    if (o == oe || (b != be && b->first < o->first)) {
      out.entries_.emplace_back(*b++);
    } else {
      if (b != be && b->first == o->first) ++b;
      if constexpr (kMove) {
        out.entries_.emplace_back(std::move(*o++));
      } else {
        out.entries_.emplace_back(*o++);
      }
    }
  }
  return out;
}

Values Values::Merged(const Values& base, const Values& overrides) {
  return MergedImpl(base, overrides);
}

Values Values::Merged(const Values& base, Values&& overrides) {
  return MergedImpl(base, std::move(overrides));
}

}  // namespace gls
