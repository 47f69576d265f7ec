// gls/values.h: the keys and values a ContextManager stores.
//
// What this is for: naming a context value (`ContextKey` from `GenSym()`, or a
// plain string, as in the Go original's examples), holding a value of any
// copyable type (`Value`), and passing several of them at once to
// `ContextManager::SetValues` (`Values`).
//
// What this is not: a general-purpose `std::any` replacement. A `Value` knows
// how to copy and, when the type has an `operator<<`, print itself; nothing
// else.
//
// Guarantees:
//   * `GenSym()` is thread-safe, lock-free and never returns the same key
//     twice in a process.
//   * `Key`, `Value` and `Values` are regular value types: copying one copies
//     everything it holds. They are not internally synchronized (like any
//     standard container).
//   * Asking a `Value` for the wrong type never has undefined behaviour: the
//     pointer accessor returns nullptr and the checked accessor returns an
//     error naming both types.
//
// Example:
//
//   const gls::ContextKey kRequestId = gls::GenSym();
//   gls::Values values{{kRequestId, "12345"}, {"tenant", 7}};
//   const gls::Value* v = values.Find("tenant");
//   int tenant = *v->TryAs<int>();                       // 7
//   absl::StatusOr<double> bad = v->As<double>();        // error: holds int
#ifndef GLS_VALUES_H_
#define GLS_VALUES_H_

#include <any>
#include <cstdint>
#include <initializer_list>
#include <ostream>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace gls {

// ContextKey
//
// A throwaway key, unique in the process, to use with a ContextManager. Get
// one from `GenSym()`; a default-constructed ContextKey is the "null" key that
// `GenSym()` never returns. Cheap to copy and compare (one integer).
class ContextKey {
 public:
  constexpr ContextKey() = default;

  // id(): the key's number; GenSym() hands them out from 1 upward.
  constexpr uint64_t id() const { return id_; }

  friend constexpr bool operator==(ContextKey a, ContextKey b) = default;
  friend std::ostream& operator<<(std::ostream& os, ContextKey key) {
    return os << "gls::ContextKey#" << key.id_;
  }

 private:
  friend ContextKey GenSym();
  explicit constexpr ContextKey(uint64_t id) : id_(id) {}
  uint64_t id_ = 0;
};

// GenSym()
//
// Returns a brand new, never-before-used ContextKey. Thread-safe and
// lock-free.
ContextKey GenSym();

// Key
//
// What a ContextManager is indexed by: either a ContextKey or a string.
// Implicitly constructible from both, so `mgr.GetValue("request_id")` and
// `mgr.GetValue(kRequestIdKey)` both work. A string key and a ContextKey never
// compare equal, whatever their text.
class Key {
 public:
  Key(ContextKey key) : sym_(key.id()) {}  // NOLINT: implicit by design
  Key(std::string name) : sym_(0), name_(std::move(name)) {}  // NOLINT
  Key(std::string_view name) : sym_(0), name_(name) {}        // NOLINT
  Key(const char* name);                                       // NOLINT

  // is_symbol(): true for a ContextKey, false for a string key.
  bool is_symbol() const { return sym_ != 0; }
  // symbol(): the ContextKey's id, or 0 for a string key.
  uint64_t symbol() const { return sym_; }
  // name(): the string of a string key; empty for a ContextKey.
  const std::string& name() const { return name_; }

  friend bool operator==(const Key& a, const Key& b) {
    // ContextKeys have empty names: comparing numbers decides.
    return a.sym_ == b.sym_ && (a.sym_ != 0 || a.name_ == b.name_);
  }
  // A total order (symbols first, by number; then strings), used to keep a
  // context's entries sorted.
  friend bool operator<(const Key& a, const Key& b) {
    if (a.sym_ != b.sym_) return a.sym_ > b.sym_;  // 0 (strings) sorts last
    return a.name_ < b.name_;
  }
  friend std::ostream& operator<<(std::ostream& os, const Key& key);

 private:
  uint64_t sym_;  // ContextKey id, or 0 for a string key.
  std::string name_;
};

namespace internal {
// Pretty, demangled name of a type, for error messages.
std::string TypeName(const std::type_info& type);

template <typename T, typename = void>
struct IsStreamable : std::false_type {};
template <typename T>
struct IsStreamable<T, std::void_t<decltype(std::declval<std::ostream&>()
                                            << std::declval<const T&>())>>
    : std::true_type {};

// The type a Value stores for an argument of type T.
template <typename T, typename D = std::decay_t<T>>
using StoredType =
    std::conditional_t<std::is_same_v<D, const char*> || std::is_same_v<D, char*>,
                       std::string, D>;

template <typename T>
void PrintAny(std::ostream& os, const std::any& value) {
  if constexpr (IsStreamable<T>::value) {
    os << *std::any_cast<T>(&value);
  } else {
    os << "<" << TypeName(typeid(T)) << ">";
  }
}
}  // namespace internal

// Value
//
// A copy of a value of any copyable type, as stored in a context. A `Value`
// is never empty: it always holds a value of some type.
class Value {
 public:
  // Value(v): stores a copy of `v`. Character strings (string literals,
  // `const char*`) are stored as `std::string`, so `Values{{"k", "v"}}` holds
  // a std::string that outlives the literal's scope; everything else is
  // stored as its decayed type.
  template <typename T, typename D = internal::StoredType<T>,
            typename = std::enable_if_t<!std::is_same_v<D, Value>>>
  Value(T&& value)  // NOLINT: implicit so Values{{key, 42}} reads naturally
      : value_(std::in_place_type<D>, std::forward<T>(value)),
        print_(&internal::PrintAny<D>) {
    static_assert(std::is_copy_constructible_v<D>,
                  "gls::Value requires a copyable type");
  }

  // type(): the type of the held value.
  const std::type_info& type() const { return value_.type(); }

  // TryAs<T>(): a pointer to the held value if it is exactly a `T`, else
  // nullptr. Never throws.
  template <typename T>
  const T* TryAs() const {
    return std::any_cast<T>(&value_);
  }

  // As<T>(): a copy of the held value if it is exactly a `T`; otherwise a
  // FailedPrecondition error naming the held and the requested types.
  template <typename T>
  absl::StatusOr<T> As() const {
    if (const T* p = TryAs<T>()) return *p;
    return TypeMismatch(typeid(T));
  }

  // operator<<: prints the held value if its type has an operator<<, else
  // "<type name>".
  friend std::ostream& operator<<(std::ostream& os, const Value& v) {
    v.print_(os, v.value_);
    return os;
  }


 private:
  absl::Status TypeMismatch(const std::type_info& requested) const;

  std::any value_;
  void (*print_)(std::ostream&, const std::any&);
};

// Values
//
// A set of key -> value pairs, as passed to ContextManager::SetValues. Keys
// are unique: inserting an existing key replaces its value (the last one
// wins, as in a Go map literal built in order).
//
// Example:
//   gls::Values v{{"request_id", "12345"}, {kSpanKey, span}};
class Values {
 public:
  using Entry = std::pair<Key, Value>;

  Values() = default;
  Values(std::initializer_list<Entry> entries);

  // Set(key, value): adds `key`, or replaces its value.
  void Set(Key key, Value value);

  // Find(key): the value for `key`, or nullptr. Linear for a few entries,
  // binary search beyond.
  const Value* Find(const Key& key) const;
  // Find(key) for a ContextKey: compares numbers only.
  const Value* Find(ContextKey key) const {
    if (entries_.size() > kLinearSearchMax) return Find(Key(key));
    for (const Entry& e : entries_) {
      if (e.first.symbol() == key.id()) return &e.second;
    }
    return nullptr;
  }

  // Merged(base, overrides): `base` with every entry of `overrides` added or
  // replacing the same key.
  static Values Merged(const Values& base, const Values& overrides);

  bool empty() const { return entries_.empty(); }
  size_t size() const { return entries_.size(); }
  // Entries in key order.
  auto begin() const { return entries_.begin(); }
  auto end() const { return entries_.end(); }

 private:
  static constexpr size_t kLinearSearchMax = 8;
  // Sorted by key, unique keys. Two inline entries: the common SetValues
  // with one or two values allocates nothing for the container.
  absl::InlinedVector<Entry, 2> entries_;
};

}  // namespace gls

#endif  // GLS_VALUES_H_
