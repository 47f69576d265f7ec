// gls/values.h: the keys and values a ContextManager stores.
//
// What this is for: naming a context value (`ContextKey` from `GenSym()`, a
// plain string as in the Go original's examples, or a `TypedKey<T>` that
// carries its value's type), holding a value of any copyable type (`Value`),
// and passing several of them at once to `ContextManager::SetValues`
// (`Values`).
//
// What this is not: a general-purpose `std::any` replacement. A `Value` knows
// how to copy and, when the type has an `operator<<`, print itself; nothing
// else.
//
// Guarantees:
//   * `GenSym()` and `TypedKey<T>()` are thread-safe, lock-free and never
//     return the same key twice in a process; the two share one sequence.
//   * `Key`, `Value` and `Values` are regular value types: copying one copies
//     everything it holds. They are not internally synchronized (like any
//     standard container).
//   * A `Value` keeps a value of up to 32 bytes (alignment up to 8) whose
//     move constructor is noexcept inline: constructing, copying or moving
//     it allocates only what the held type's own copy allocates (nothing for
//     an int, a pointer, or a std::string of up to 15 characters). Larger
//     types are kept on the heap.
//   * `Values` keeps up to two entries inline.
//   * Lookups (`Find`) take a `KeyView`: no key is built and nothing is
//     allocated, whatever the length of a string key.
//   * Asking a `Value` for the wrong type never has undefined behaviour: the
//     pointer accessor returns nullptr and the checked accessor returns an
//     error naming both types. Setting a `TypedKey<T>` to anything but a `T`
//     does not compile, or, through an untyped `Key`, throws
//     std::invalid_argument naming both types.
//
// Example:
//
//   const gls::ContextKey kRequestId = gls::GenSym();
//   const gls::TypedKey<int> kTenant;
//   gls::Values values{{kRequestId, "12345"}, {kTenant, 7}, {"user", "bob"}};
//   const gls::Value* v = values.Find("user");
//   std::string user = *v->TryAs<std::string>();           // "bob"
//   absl::StatusOr<double> bad = v->As<double>();          // error: a string
#ifndef GLS_VALUES_H_
#define GLS_VALUES_H_

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <new>
#include <ostream>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace gls {

class ContextKey;
ContextKey GenSym();

namespace internal {
uint64_t NextSymbol();
}  // namespace internal

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

// TypedKey<T>
//
// A key that carries its value's type: the fast path. Each TypedKey made by
// the default constructor is new and unique, like GenSym(). Setting it takes
// anything a `T` can be constructed from and stores a `T`; reading it through
// `ContextManager::GetValue(key)` returns `const T*` with no run-time type
// check (none is needed: nothing but a `T` can be stored under it) and no
// allocation. `T` must be a copyable object type.
//
// Example:
//
//   const gls::TypedKey<std::string> kUser;
//   mgr.SetValues({{kUser, "bob"}}, [&] {
//     const std::string* user = mgr.GetValue(kUser);   // "bob"
//   });
template <typename T>
class TypedKey {
  static_assert(std::is_object_v<T> && !std::is_const_v<T> &&
                    !std::is_array_v<T> && std::is_copy_constructible_v<T>,
                "gls::TypedKey<T>: T must be a copyable, non-const object type");
  static_assert(!std::is_same_v<T, const char*> && !std::is_same_v<T, char*>,
                "gls::TypedKey<T>: use TypedKey<std::string> (a char pointer "
                "would dangle once the scope that made it ends)");

 public:
  using value_type = T;

  TypedKey() : id_(internal::NextSymbol()) {}

  // id(): the key's number, from the same sequence as GenSym().
  uint64_t id() const { return id_; }

  friend bool operator==(const TypedKey& a, const TypedKey& b) {
    return a.id_ == b.id_;
  }

 private:
  uint64_t id_;
};

// Key
//
// What a Values entry is indexed by: a ContextKey, a TypedKey<T> or a string.
// Implicitly constructible from all three. A string key and a symbol key
// never compare equal, whatever their text.
class Key {
 public:
  Key(ContextKey key) : sym_(key.id()) {}  // NOLINT: implicit by design
  template <typename T>
  Key(const TypedKey<T>& key)  // NOLINT: implicit by design
      : sym_(key.id()), typed_(&typeid(T)) {}
  Key(std::string name) : sym_(0) {  // NOLINT
    ::new (static_cast<void*>(name_buffer_)) std::string(std::move(name));
  }
  Key(std::string_view name) : sym_(0) {  // NOLINT
    ::new (static_cast<void*>(name_buffer_)) std::string(name);
  }
  Key(const char* name);  // NOLINT

  // A symbol key is two words; only a string key holds a std::string, so
  // copying, moving and destroying the common symbol key touches no string
  // (//bench:instructions, set_values_prebuilt).
  Key(const Key& other) : sym_(other.sym_), typed_(other.typed_) {
    if (sym_ == 0) {
      ::new (static_cast<void*>(name_buffer_)) std::string(other.name_ref());
    }
  }
  Key(Key&& other) noexcept : sym_(other.sym_), typed_(other.typed_) {
    if (sym_ == 0) {
      ::new (static_cast<void*>(name_buffer_))
          std::string(std::move(other.name_ref()));
    }
  }
  Key& operator=(const Key& other) {
    if (this != &other) {
      Key copy(other);
      *this = std::move(copy);
    }
    return *this;
  }
  Key& operator=(Key&& other) noexcept {
    if (this != &other) {
      this->~Key();
      ::new (static_cast<void*>(this)) Key(std::move(other));
    }
    return *this;
  }
  ~Key() {
    if (sym_ == 0) name_ref().~basic_string();
  }

  // is_symbol(): true for a ContextKey or TypedKey, false for a string key.
  bool is_symbol() const { return sym_ != 0; }
  // symbol(): the key's number, or 0 for a string key.
  uint64_t symbol() const { return sym_; }
  // name(): the string of a string key; empty for a symbol key.
  const std::string& name() const {
    return sym_ == 0 ? name_ref() : EmptyName();
  }
  // typed(): the value type of a TypedKey, or nullptr.
  const std::type_info* typed() const { return typed_; }

  friend bool operator==(const Key& a, const Key& b) {
    return a.sym_ == b.sym_ && (a.sym_ != 0 || a.name_ref() == b.name_ref());
  }
  // A total order (symbols first, by number; then strings), used to keep
  // entries sorted.
  friend bool operator<(const Key& a, const Key& b) {
    if (a.sym_ != b.sym_) return a.sym_ > b.sym_;  // 0 (strings) sorts last
    return a.sym_ == 0 && a.name_ref() < b.name_ref();
  }
  friend std::ostream& operator<<(std::ostream& os, const Key& key);

 private:
  static const std::string& EmptyName();
  // The string of a string key; only valid when sym_ == 0.
  std::string& name_ref() {
    return *std::launder(reinterpret_cast<std::string*>(name_buffer_));
  }
  const std::string& name_ref() const {
    return *std::launder(reinterpret_cast<const std::string*>(name_buffer_));
  }

  uint64_t sym_;  // ContextKey/TypedKey number, or 0 for a string key.
  const std::type_info* typed_ = nullptr;
  // A std::string, constructed only for a string key (sym_ == 0).
  alignas(std::string) unsigned char name_buffer_[sizeof(std::string)];
};

// KeyView
//
// A key to look up, borrowed: built from a ContextKey, a string (any of
// const char*, std::string_view, std::string) or a Key without copying or
// allocating. Only valid while what it was built from is.
class KeyView {
 public:
  KeyView(ContextKey key) : sym_(key.id()) {}                 // NOLINT
  KeyView(std::string_view name) : sym_(0), name_(name) {}    // NOLINT
  KeyView(const std::string& name) : sym_(0), name_(name) {}  // NOLINT
  KeyView(const char* name);                                  // NOLINT
  KeyView(const Key& key) : sym_(key.symbol()), name_(key.name()) {}  // NOLINT

  uint64_t symbol() const { return sym_; }
  std::string_view name() const { return name_; }

  bool Matches(const Key& key) const {
    return key.symbol() == sym_ && (sym_ != 0 || key.name() == name_);
  }
  friend std::ostream& operator<<(std::ostream& os, const KeyView& key);

 private:
  friend class Values;
  uint64_t sym_;
  std::string_view name_;
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
}  // namespace internal

// Value
//
// A copy of a value of any copyable type, as stored in a context. A `Value`
// is never empty: it always holds a value of some type.
class Value {
 public:
  static constexpr size_t kInlineSize = 32;

  // Value(v): stores a copy of `v`. Character strings (string literals,
  // `const char*`) are stored as `std::string`, so `Values{{"k", "v"}}` holds
  // a std::string that outlives the literal's scope; everything else is
  // stored as its decayed type.
  template <typename T, typename D = internal::StoredType<T>,
            typename = std::enable_if_t<!std::is_same_v<D, Value>>>
  Value(T&& value)  // NOLINT: implicit so Values{{key, 42}} reads naturally
      : ops_(&OpsFor<D>::kOps) {
    static_assert(std::is_copy_constructible_v<D>,
                  "gls::Value requires a copyable type");
    if constexpr (IsInline<D>()) {
      if constexpr (sizeof(D) < kInlineSize) {
        // Copies of trivial values move the whole buffer: no byte of it is
        // left unset.
        __builtin_memset(buffer_ + sizeof(D), 0, kInlineSize - sizeof(D));
      }
      ptr_ = ::new (static_cast<void*>(buffer_)) D(std::forward<T>(value));
    } else {
      ptr_ = new D(std::forward<T>(value));
    }
  }

  Value(const Value& other) : ops_(other.ops_) {
    if (ops_->is_trivial) {  // inline and trivially copyable: no call
      __builtin_memcpy(buffer_, other.buffer_, kInlineSize);
      ptr_ = buffer_;
    } else {
      ptr_ = ops_->copy(other.ptr_, buffer_);
    }
  }
  Value(Value&& other) noexcept : ops_(other.ops_) { TakeFrom(other); }
  Value& operator=(const Value& other) {
    if (this != &other) {
      Value copy(other);
      *this = std::move(copy);
    }
    return *this;
  }
  Value& operator=(Value&& other) noexcept {
    if (this != &other) {
      Destroy();
      ops_ = other.ops_;
      TakeFrom(other);
    }
    return *this;
  }
  ~Value() { Destroy(); }

  // type(): the type of the held value.
  const std::type_info& type() const { return *ops_->type; }

  // TryAs<T>(): a pointer to the held value if it is exactly a `T`, else
  // nullptr. Never throws.
  template <typename T>
  const T* TryAs() const {
    return *ops_->type == typeid(T) ? static_cast<const T*>(ptr_) : nullptr;
  }

  // As<T>(): a copy of the held value if it is exactly a `T`; otherwise a
  // FailedPrecondition error naming the held and the requested types.
  template <typename T>
  absl::StatusOr<T> As() const {
    if (const T* p = TryAs<T>()) return *p;
    return TypeMismatch(typeid(T));
  }

  // data(): the held object. For TypedKey reads, which know its type.
  const void* data() const { return ptr_; }

  // operator<<: prints the held value if its type has an operator<<, else
  // "<type name>".
  friend std::ostream& operator<<(std::ostream& os, const Value& v) {
    v.ops_->print(os, v.ptr_);
    return os;
  }

 private:
  struct Ops {
    const std::type_info* type;
    // Inline, trivially copyable and destructible: copied by memcpy, never
    // destroyed.
    bool is_trivial;
    // Copy-constructs *src into `buffer` (inline) or the heap; returns it.
    void* (*copy)(const void* src, void* buffer);
    // Move-constructs *src into `buffer`, destroying *src (inline only).
    void* (*relocate)(void* src, void* buffer) noexcept;
    void (*destroy)(void* p) noexcept;
    void (*print)(std::ostream& os, const void* p);
  };

  template <typename D>
  static constexpr bool IsInline() {
    return sizeof(D) <= kInlineSize && alignof(D) <= alignof(void*) &&
           std::is_nothrow_move_constructible_v<D>;
  }

  template <typename D>
  struct OpsFor {
    static void* Copy(const void* src, void* buffer) {
      if constexpr (IsInline<D>()) {
        return ::new (buffer) D(*static_cast<const D*>(src));
      } else {
        return new D(*static_cast<const D*>(src));
      }
    }
    static void* Relocate(void* src, void* buffer) noexcept {
      if constexpr (IsInline<D>()) {
        D* from = static_cast<D*>(src);
        D* to = ::new (buffer) D(std::move(*from));
        from->~D();
        return to;
      } else {
        return src;
      }
    }
    static void Destroy(void* p) noexcept {
      if constexpr (IsInline<D>()) {
        static_cast<D*>(p)->~D();
      } else {
        delete static_cast<D*>(p);
      }
    }
    static void Print(std::ostream& os, const void* p);
    static constexpr Ops kOps = {
        &typeid(D),
        IsInline<D>() && std::is_trivially_copyable_v<D> &&
            std::is_trivially_destructible_v<D>,
        &Copy, &Relocate, &Destroy, &Print};
  };

  void TakeFrom(Value& other) noexcept {
    if (ops_->is_trivial) {
      __builtin_memcpy(buffer_, other.buffer_, kInlineSize);
      ptr_ = buffer_;
    } else {
      ptr_ = ops_->relocate(other.ptr_, buffer_);
    }
    // `other` keeps a valid, cheap value: an int 0, inline.
    other.ops_ = &OpsFor<int>::kOps;
    other.ptr_ = ::new (static_cast<void*>(other.buffer_)) int(0);
  }
  void Destroy() noexcept {
    if (!ops_->is_trivial) ops_->destroy(ptr_);
  }

  absl::Status TypeMismatch(const std::type_info& requested) const;

  void* ptr_;  // buffer_ or a heap object
  const Ops* ops_;
  alignas(void*) unsigned char buffer_[kInlineSize];
};

template <typename D>
void Value::OpsFor<D>::Print(std::ostream& os, const void* p) {
  if constexpr (internal::IsStreamable<D>::value) {
    os << *static_cast<const D*>(p);
  } else {
    os << "<" << internal::TypeName(typeid(D)) << ">";
  }
}

// Values
//
// A set of key -> value pairs, as passed to ContextManager::SetValues. Keys
// are unique: inserting an existing key replaces its value (the last one
// wins, as in a Go map literal built in order). Typed and untyped keys mix
// freely.
//
// Example:
//   gls::Values v{{"request_id", "12345"}, {kSpanKey, span}, {kTenant, 7}};
class Values {
 public:
  // Entry: one key and its value (`first`, `second`, as in a map).
  struct Entry {
    Entry(Key key, Value value) : first(std::move(key)), second(std::move(value)) {}
    // A TypedKey<T> entry stores a T made from `value`.
    template <typename T, typename U>
    Entry(const TypedKey<T>& key, U&& value)
        : first(key), second(MakeTyped<T>(std::forward<U>(value))) {}

    Key first;
    Value second;
  };

  Values() = default;
  Values(std::initializer_list<Entry> entries);

  // Set(key, value): adds `key`, or replaces its value. Throws
  // std::invalid_argument if `key` is a TypedKey<T>'s and `value` does not
  // hold exactly a T.
  void Set(Key key, Value value);
  // Set(typed_key, value): stores a T made from `value`.
  template <typename T, typename U>
  void Set(const TypedKey<T>& key, U&& value) {
    Set(Key(key), MakeTyped<T>(std::forward<U>(value)));
  }

  // Find(key): the value for `key`, or nullptr. Allocates nothing.
  const Value* Find(KeyView key) const {
    if (entries_.size() > kLinearSearchMax) return FindSorted(key);
    for (const Entry& e : entries_) {
      if (key.Matches(e.first)) return &e.second;
    }
    return nullptr;
  }
  // FindSymbol(id): the value of the ContextKey or TypedKey numbered `id`.
  const Value* FindSymbol(uint64_t id) const {
    if (entries_.size() > kLinearSearchMax) return FindSorted(ContextKeyView(id));
    for (const Entry& e : entries_) {
      if (e.first.symbol() == id) return &e.second;
    }
    return nullptr;
  }
  // Find(typed_key): the T stored for `key`, or nullptr.
  template <typename T>
  const T* Find(const TypedKey<T>& key) const {
    const Value* v = FindSymbol(key.id());
    return v == nullptr ? nullptr : static_cast<const T*>(v->data());
  }

  // Merged(base, overrides): `base` with every entry of `overrides` added or
  // replacing the same key.
  static Values Merged(const Values& base, const Values& overrides);
  // The same, moving `overrides`' entries.
  static Values Merged(const Values& base, Values&& overrides);

  bool empty() const { return entries_.empty(); }
  size_t size() const { return entries_.size(); }
  // Entries in key order.
  auto begin() const { return entries_.begin(); }
  auto end() const { return entries_.end(); }

 private:
  template <typename T, typename U>
  static Value MakeTyped(U&& value) {
    static_assert(std::is_constructible_v<T, U&&>,
                  "gls: the value given for a gls::TypedKey<T> cannot be "
                  "converted to T");
    return Value(T(std::forward<U>(value)));
  }

  template <typename V>
  static Values MergedImpl(const Values& base, V&& overrides);

  static constexpr size_t kLinearSearchMax = 8;
  static KeyView ContextKeyView(uint64_t id);
  const Value* FindSorted(KeyView key) const;  // binary search

  // EntryStore: the entries, the first kInlineEntries in place. A vector
  // written for this one element type: copying two entries is two element
  // copies and a size (absl::InlinedVector's generic copy and destroy cost
  // about 90 instructions more per SetValues, //bench:instructions).
  class EntryStore {
   public:
    static constexpr uint32_t kInlineEntries = 2;

    EntryStore() noexcept : data_(InlineData()) {}
    EntryStore(const EntryStore& other) : EntryStore() {
      if (other.size_ > kInlineEntries) Grow(other.size_);
      // size_ counts what is constructed, so a throwing copy leaks nothing.
      for (const Entry& entry : other) {
        ::new (static_cast<void*>(data_ + size_)) Entry(entry);
        ++size_;
      }
    }
    EntryStore(EntryStore&& other) noexcept : EntryStore() { TakeFrom(other); }
    EntryStore& operator=(const EntryStore& other) {
      if (this != &other) {
        EntryStore copy(other);
        *this = std::move(copy);
      }
      return *this;
    }
    EntryStore& operator=(EntryStore&& other) noexcept {
      if (this != &other) {
        Clear();
        TakeFrom(other);
      }
      return *this;
    }
    ~EntryStore() {
      for (uint32_t i = 0; i < size_; ++i) data_[i].~Entry();
      if (!IsInline()) ::operator delete(static_cast<void*>(data_));
    }

    size_t size() const { return size_; }
    bool empty() const { return size_ == 0; }
    size_t capacity() const { return capacity_; }
    const Entry* begin() const { return data_; }
    const Entry* end() const { return data_ + size_; }
    Entry* begin() { return data_; }
    Entry* end() { return data_ + size_; }
    Entry& back() { return data_[size_ - 1]; }

    void reserve(size_t n) {
      if (n > capacity_) Grow(n);
    }
    template <typename... Args>
    void emplace_back(Args&&... args) {
      if (size_ == capacity_) Grow(size_ + 1);
      ::new (static_cast<void*>(data_ + size_)) Entry(std::forward<Args>(args)...);
      ++size_;
    }
    // insert(at, entry): `entry` before `at` (a position in this store).
    void insert(Entry* at, Entry&& entry);

   private:
    Entry* InlineData() noexcept {
      return std::launder(reinterpret_cast<Entry*>(inline_));
    }
    bool IsInline() const noexcept {
      return data_ == reinterpret_cast<const Entry*>(inline_);
    }
    // Room for at least `n` entries (n > capacity_), moving the present
    // ones. Throws std::bad_alloc (then nothing changed).
    void Grow(size_t n);
    void Clear() noexcept;
    // Takes `other`'s entries (the heap block, or each inline entry moved),
    // leaving it empty. This store must be empty and inline.
    void TakeFrom(EntryStore& other) noexcept;

    Entry* data_;  // inline_ or a heap block of capacity_ entries
    uint32_t size_ = 0;
    uint32_t capacity_ = kInlineEntries;
    alignas(Entry) unsigned char inline_[kInlineEntries * sizeof(Entry)];
  };

  // Sorted by key, unique keys. Two inline entries: the common SetValues
  // with one or two values allocates nothing for the container.
  EntryStore entries_;
};

}  // namespace gls

#endif  // GLS_VALUES_H_
