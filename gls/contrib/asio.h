// gls/contrib/asio.h: Boost.Asio executors that carry gls values into every
// handler and coroutine they run.
//
// What this is for: an Asio server where each request's handlers, timers,
// socket completions and co_spawn'ed coroutines should see the request's
// values, on an io_context run by any number of threads or on an
// asio::thread_pool. Wrap the executor once:
//
//   auto ex = gls::asio::Propagating(io.get_executor());
//
// Each piece of work then runs with the values of the scope that started it:
//   * post, dispatch, defer: the values where the call was made (dispatch
//     that runs inline, inside a handler or inside a strand, too);
//   * an asynchronous operation's completion handler and its intermediate
//     steps (timers, sockets, async_read/async_write, async_compose): the
//     values where the operation was started, also when another request
//     cancels it;
//   * a co_spawn'ed asio::awaitable: the values where co_spawn was called, and
//     after every resumption the values the coroutine was running with when
//     it suspended; its completion handler, the co_spawn caller's.
// A thread running the io_context between two handlers sees its own values
// (none, normally): values are installed around each handler and removed
// after it, as gls::Snapshot::Run does.
//
// Which executor decides: the one that runs the work. For post/dispatch/
// defer, the executor passed (or the handler's associated executor, if it
// has one); for a completion handler, the handler's associated executor if
// it has one (bind_executor(x, h), use_awaitable's coroutine, use_future's
// own), else the I/O object's. The work is carried if that executor is the
// wrapper, a strand of it, or either erased into any_io_executor; with no
// gls type there it is not (it sees the running thread's values, none).
//
// What is supported, each with its test (asio_test, asio_strand_test,
// asio_compositions_test, asio_strand_compile_test; docs/propagation.md has
// the table):
//   * post/dispatch/defer, timers, sockets, co_spawn on the wrapper over an
//     io_context run by several threads or over an asio::thread_pool
//     (asio_test; ThreadPoolAndASharedStrandOverIt);
//   * the wrapper erased into any_io_executor, for posts, timers and
//     co_spawn (ErasedIntoAnyIoExecutor);
//   * strands: see "Strands" below;
//   * bind_executor to the wrapper or a strand of it
//     (BindExecutorDecidesWhatTheHandlerSees); dispatch that runs inline
//     (DispatchThatRunsInlineSeesTheCallersValues); async_read/async_write
//     and their intermediate steps
//     (AsyncReadAndWriteStepsSeeTheirOperationsValues); async_compose
//     (AsyncComposeStepsSeeTheirOperationsValues); co_spawn onto a shared
//     strand (CoSpawnOntoASharedStrand); timers cancelled by another request
//     (TimerCancelledByAnotherRequest);
//   * use_future: use_future(fn) posted through the wrapper or a strand of
//     it runs fn in the poster's values; as the token of an I/O operation,
//     fn runs on use_future's own executor, inline on the thread that
//     completes the operation, in that thread's values (none): write
//     use_future(gls::Bind(fn)) to give it the starter's (UseFuture);
//   * work guards: make_work_guard(ex).get_executor() is `ex` as given
//     (Asio keeps it and tracks the work with a separate executor), so work
//     posted through it runs in the poster's values, never the guard
//     maker's; the guard keeps the maker's values alive, unseen, until it
//     is reset (WorkGuardExecutorsShowNoOneTheGuardMakersValues);
//   * compositions with no gls type carry nothing
//     (CompositionsWithNoGlsTypeCarryNothing).
// Anything else that takes an executor (boost::asio::spawn, Beast's own
// machinery beyond its streams' use of any_io_executor, ...) is not tested.
//
// Strands. A strand queues work from every flow that posts to it and runs
// the queue as one piece of work on the executor beneath it, so where the
// wrapper sits decides whether each piece keeps its values:
//   * right, each piece of work in its submitter's values:
//       boost::asio::make_strand(ex), or the same type spelled
//         boost::asio::strand<gls::asio::PropagatingExecutor<E>>(ex):
//         a specialization of boost::asio::strand (below) that binds each
//         function when it is submitted and runs the queue on the unwrapped
//         executor;
//       gls::asio::Propagating(boost::asio::make_strand(io.get_executor()));
//       either of them erased into any_io_executor after it is made
//         (any_io_executor s = boost::asio::make_strand(ex));
//       and, with them, bind_executor(strand, h), I/O objects whose executor
//       is the strand, co_spawn(strand, ...), and make_work_guard(strand).
//     Shared by 200 requests on 4 threads: asio_strand_test
//     (SharedMakeStrandOfTheWrappedExecutor,
//     SharedStrandOfPropagatingExecutorSpelledByHand,
//     SharedWrappedPlainStrand, SharedStrandErasedIntoAnyIoExecutor,
//     SharedWrappedStrandOverAnErasedWrappedExecutor); its interface:
//     StrandOfTheWrapperHasStrandsInterface.
//   * NOT supported: a strand made over an any_io_executor that holds the
//     wrapper, boost::asio::make_strand(erased) or
//     boost::asio::strand<any_io_executor>(ex), e.g. a strand of a Beast
//     stream's get_executor(). Asio erased the wrapper's type, so this is
//     Boost's own strand: it runs its whole queue in the values of the
//     request whose post found it idle, and one request sees another's
//     values (shown by MakeStrandOfAnErasedWrappedExecutorLeaks_Unsupported).
//     No compile-time check can see it. Write instead
//     gls::asio::Propagating(boost::asio::make_strand(erased)) and submit only
//     through that (SharedWrappedStrandOverAnErasedWrappedExecutor), or make
//     the strand from the typed wrapper before erasing it.
//   * refused at compile time: converting a strand of the wrapper into a
//     boost::asio::strand<Other> (strand<any_io_executor> s =
//     make_strand(ex)), which would be the unsupported strand above sharing
//     the right one's queue (asio_strand_compile_test).
//   * io_context::strand (the old one) has no gls type: not carried; post
//     gls::Bind(h) to it.
//
// How: the wrapper is an Asio standard executor forwarding every property to
// the executor it wraps. `execute(f)` runs `f` under gls::Bind. Asio marks
// the start of every asynchronous operation by asking for an executor with
// `outstanding_work.tracked`; the executor the wrapper returns for that
// carries a gls::Snapshot of the values at that moment, and runs the
// completion in it. So does any executor derived from it (require/prefer).
// Such a carrying executor is Asio's mark of one started operation: whatever
// is executed through it runs in those values, so it must not be handed to
// other requests (TrackedExecutorsCarryAndStrandsMadeFromThemDoNot); a strand
// made from one carries nothing.
//
// What this is not: a change to Asio's scheduling. Handlers run where and
// when Asio would run them without the wrapper. Work started through an
// unwrapped executor is not carried (its handler sees the running thread's
// values).
//
// Guarantees: those of gls::Bind for each handler (O(1) capture, no
// allocation beyond the handler's own, exactly the captured values while it
// runs, the thread's own values restored after, even if it throws). Copying
// a wrapper that carries a snapshot costs one atomic increment per strategy
// with values. Tested with Boost 1.74 (Asio 1.18) and C++20 coroutines.
//
// Example:
//
//   boost::asio::io_context io;
//   auto ex = gls::asio::Propagating(io.get_executor());
//   auto cache_strand = boost::asio::make_strand(ex);  // shared by requests
//   mgr.SetValues({{kRequestId, "12345"}}, [&] {
//     boost::asio::post(ex, [] { MyLog(); });        // "... 12345"
//     boost::asio::post(cache_strand, [] { MyLog(); });  // "... 12345"
//     timer = std::make_unique<boost::asio::steady_timer>(ex, 10ms);
//     timer->async_wait([](auto) { MyLog(); });      // "... 12345"
//     boost::asio::co_spawn(ex, Session(), boost::asio::detached);
//   });
//   io.run();  // from any number of threads
#ifndef GLS_CONTRIB_ASIO_H_
#define GLS_CONTRIB_ASIO_H_

#include <type_traits>
#include <utility>

#include "boost/asio/associated_allocator.hpp"
#include "boost/asio/associated_executor.hpp"
#include "boost/asio/execution.hpp"
#include "boost/asio/execution/prefer_only.hpp"
#include "boost/asio/prefer.hpp"
#include "boost/asio/query.hpp"
#include "boost/asio/require.hpp"
#include "boost/asio/strand.hpp"
#include "absl/base/attributes.h"
#include "gls/bind.h"
#include "gls/snapshot.h"

namespace gls {
namespace asio {
namespace internal {

// Whether asking for `Property` marks the start of a piece of work:
// outstanding_work.tracked, directly or as Asio's polymorphic executors pass
// it (prefer_only<...>).
template <typename Property>
struct StartsWork
    : std::is_same<Property,
                   boost::asio::execution::outstanding_work_t::tracked_t> {};
template <typename Inner>
struct StartsWork<boost::asio::execution::prefer_only<Inner>>
    : StartsWork<Inner> {};

// CarriedSnapshot: a snapshot or nothing, like std::optional<Snapshot>, but
// nothrow copyable (an Asio executor must be; libstdc++'s optional does not
// say so). One flag and, only when set, the snapshot: the executors
// asio::post derives from one that carries nothing are copied and destroyed
// with one test each (//bench:instructions, asio_post_propagating).
class CarriedSnapshot {
 public:
  CarriedSnapshot() noexcept {}
  explicit CarriedSnapshot(Snapshot snapshot) noexcept : carries_(true) {
    ::new (static_cast<void*>(&snapshot_)) Snapshot(std::move(snapshot));
  }
  CarriedSnapshot(const CarriedSnapshot& other) noexcept
      : carries_(other.carries_) {
    if (carries_) ::new (static_cast<void*>(&snapshot_)) Snapshot(other.snapshot_);
  }
  CarriedSnapshot(CarriedSnapshot&& other) noexcept : carries_(other.carries_) {
    if (carries_) {
      ::new (static_cast<void*>(&snapshot_)) Snapshot(std::move(other.snapshot_));
    }
  }
  CarriedSnapshot& operator=(const CarriedSnapshot& other) noexcept {
    if (this != &other) {
      Reset();
      carries_ = other.carries_;
      if (carries_) {
        ::new (static_cast<void*>(&snapshot_)) Snapshot(other.snapshot_);
      }
    }
    return *this;
  }
  CarriedSnapshot& operator=(CarriedSnapshot&& other) noexcept {
    if (this != &other) {
      Reset();
      carries_ = other.carries_;
      if (carries_) {
        ::new (static_cast<void*>(&snapshot_))
            Snapshot(std::move(other.snapshot_));
      }
    }
    return *this;
  }
  ~CarriedSnapshot() { Reset(); }

  explicit operator bool() const noexcept { return carries_; }
  const Snapshot& operator*() const noexcept { return snapshot_; }

  friend bool operator==(const CarriedSnapshot& a,
                         const CarriedSnapshot& b) noexcept {
    return a.carries_ == b.carries_ &&
           (!a.carries_ || a.snapshot_ == b.snapshot_);
  }

 private:
  void Reset() noexcept {
    if (carries_) {
      snapshot_.~Snapshot();
      carries_ = false;
    }
  }

  bool carries_ = false;
  union {
    Snapshot snapshot_;  // constructed only while carries_
  };
};

}  // namespace internal

// PropagatingExecutor<Executor>
//
// See the file comment. An Asio executor (execution::executor) with every
// property of `Executor`.
template <typename Executor>
class PropagatingExecutor {
 public:
  // Wraps `inner`. Work executed through the result captures the values
  // where it is started.
  explicit PropagatingExecutor(const Executor& inner) noexcept
      : inner_(inner) {}

  // Wraps `inner`, carrying `snapshot`: everything executed runs in it.
  PropagatingExecutor(const Executor& inner, Snapshot snapshot) noexcept
      : inner_(inner), carried_(std::move(snapshot)) {}

  // execute(f): runs `f` through the wrapped executor, in the carried
  // snapshot, or else in the values of the calling flow now.
  template <typename F>
  void execute(F&& f) const {
    boost::asio::execution::execute(inner_, BindWork(std::forward<F>(f)));
  }

  // query(p): the wrapped executor's answer.
  template <typename Property>
    requires boost::asio::can_query<const Executor&, Property>::value
  decltype(auto) query(const Property& p) const noexcept(
      boost::asio::is_nothrow_query<const Executor&, Property>::value) {
    return boost::asio::query(inner_, p);
  }

  // require(p), prefer(p): the wrapped executor's, wrapped. Asking for
  // outstanding_work.tracked marks the start of a piece of work: the result
  // carries the values of this moment unless this executor already carries
  // some.
  template <typename Property>
    requires boost::asio::can_require<const Executor&, Property>::value
  auto require(const Property& p) const {
    return Derive<Property>(boost::asio::require(inner_, p));
  }
  template <typename Property>
    requires boost::asio::can_prefer<const Executor&, Property>::value
  auto prefer(const Property& p) const {
    return Derive<Property>(boost::asio::prefer(inner_, p));
  }

  // inner(): the wrapped executor.
  const Executor& inner() const noexcept { return inner_; }

  // carries_snapshot(): true if everything executed runs in a snapshot taken
  // earlier rather than in the values of the flow that calls execute.
  bool carries_snapshot() const noexcept { return static_cast<bool>(carried_); }

  friend bool operator==(const PropagatingExecutor& a,
                         const PropagatingExecutor& b) noexcept {
    return a.inner_ == b.inner_ && a.carried_ == b.carried_;
  }
  friend bool operator!=(const PropagatingExecutor& a,
                         const PropagatingExecutor& b) noexcept {
    return !(a == b);
  }

 private:
  template <typename>
  friend class PropagatingExecutor;
  // The strand specialization below is built on PropagatingExecutor<strand>.
  template <typename>
  friend class boost::asio::strand;

  // `f` bound to what it runs in: the carried snapshot, or else the values of
  // the calling flow now.
  template <typename F>
  Bound<std::decay_t<F>> BindWork(F&& f) const {
    if (carried_) return Bound<std::decay_t<F>>(*carried_, std::forward<F>(f));
    return gls::Bind(std::forward<F>(f));
  }

  // A wrapper of `other` that carries what this one carries.
  template <typename Other>
  PropagatingExecutor<Other> WithSameCarry(const Other& other) const {
    if (carried_) return PropagatingExecutor<Other>(other, *carried_);
    return PropagatingExecutor<Other>(other);
  }

  template <typename Property, typename Derived>
  PropagatingExecutor<std::decay_t<Derived>> Derive(Derived&& derived) const {
    using Result = PropagatingExecutor<std::decay_t<Derived>>;
    if (carried_) {
      return Result(std::forward<Derived>(derived), *carried_);
    }
    if constexpr (internal::StartsWork<Property>::value) {
      return Result(std::forward<Derived>(derived), Capture());
    } else {
      return Result(std::forward<Derived>(derived));
    }
  }

  Executor inner_;
  // The snapshot everything executed runs in, if this executor carries one
  // (else each piece of work captures where it is started).
  internal::CarriedSnapshot carried_;
};

// Propagating(executor)
//
// `executor` wrapped so that work started through it runs with the values of
// the scope that started it. See the file comment.
template <typename Executor>
PropagatingExecutor<Executor> Propagating(const Executor& executor) {
  static_assert(boost::asio::execution::is_executor<Executor>::value,
                "gls::asio::Propagating needs an Asio standard executor, "
                "e.g. io_context::get_executor() or thread_pool::get_executor()");
  return PropagatingExecutor<Executor>(executor);
}

namespace internal {

template <typename>
inline constexpr bool kDependentFalse = false;

// What a strand<PropagatingExecutor<E>> shows as `executor_` and `impl_`, the
// members Boost's generic strand<Other> reads when converting from another
// strand: converting it to anything stops the build with this message. Such a
// conversion would give a strand<Other> (say strand<any_io_executor>) that
// shares the queue but runs it through the wrapper as one piece of work, in
// the values of whichever request found it idle.
template <int kMember>
struct StrandConversionRefused {
  // Not to nullptr_t: an executor's constructor from nullptr would make the
  // conversion ambiguous and hide this message.
  template <typename To>
    requires(!std::is_same_v<std::remove_cvref_t<To>, std::nullptr_t>)
  operator To() const {
    static_assert(
        kDependentFalse<To>,
        "gls: a boost::asio::strand<gls::asio::PropagatingExecutor<E>> cannot "
        "become a boost::asio::strand<Other> (e.g. "
        "strand<any_io_executor>): that strand would run every request's "
        "handlers in one request's values. Keep its type (auto s = "
        "boost::asio::make_strand(ex)) or erase the whole strand "
        "(boost::asio::any_io_executor s = boost::asio::make_strand(ex)). "
        "See gls/contrib/asio.h, \"Strands\".");
    __builtin_unreachable();
  }
};

}  // namespace internal

}  // namespace asio
}  // namespace gls

namespace boost {
namespace asio {

// strand<gls::asio::PropagatingExecutor<Executor>>
//
// What make_strand(ex) gives for a wrapped executor `ex` (and what
// strand<gls::asio::PropagatingExecutor<E>> names): a strand whose queue may
// hold work from any number of requests, each piece run in its own values.
// It is gls::asio::Propagating(strand<Executor>) with strand's interface:
// execute(f) (and post/dispatch/defer through it) binds `f` when it is
// submitted, to the values of the submitting flow, and hands the bound `f`
// to a strand<Executor> over the executor `ex` wraps; the strand runs its
// queue through that unwrapped executor, so no piece of work runs in another
// one's values. Asking it for outstanding_work.tracked (as every Asio
// operation does when it starts, e.g. a timer whose executor is the strand)
// gives a strand executor on the same queue that carries the values of that
// moment, as the wrapper does. See the file comment, "Strands".
template <typename Executor>
class strand<gls::asio::PropagatingExecutor<Executor>> {
  using Wrapped = gls::asio::PropagatingExecutor<strand<Executor>>;

 public:
  // inner_executor_type: the wrapped executor the strand was made from.
  using inner_executor_type = gls::asio::PropagatingExecutor<Executor>;

  // A new strand over a default-constructed Executor.
  strand()
    requires std::is_default_constructible_v<Executor>
      : wrapped_(strand<Executor>()) {}

  // strand(ex), make_strand(ex): a new strand (a new queue) over the
  // executor `ex` wraps. It carries nothing, even if `ex` carries a
  // snapshot: a strand is a resource shared by whoever holds it, and each
  // piece of work runs in the values of the flow that submits it.
  explicit strand(const inner_executor_type& ex)
      : wrapped_(strand<Executor>(ex.inner())) {}

  // Converting: the same queue, the same carried values.
  template <typename OtherExecutor>
    requires std::is_constructible_v<Executor, const OtherExecutor&>
  strand(const strand<gls::asio::PropagatingExecutor<OtherExecutor>>&
             other) noexcept
      : wrapped_(other.wrapped_.WithSameCarry(
            strand<Executor>(other.wrapped_.inner()))) {}

  // get_inner_executor(): the wrapped executor the strand runs on (not
  // serialized), carrying what this strand executor carries.
  inner_executor_type get_inner_executor() const noexcept {
    return wrapped_.WithSameCarry(wrapped_.inner().get_inner_executor());
  }

  // execute(f): queues `f` on the strand, bound to the values it runs in:
  // this executor's carried snapshot, or else the calling flow's values now.
  // Runs it inline, as strand<Executor> would, when called from inside the
  // strand and blocking is not never.
  template <typename Function>
  void execute(Function&& f) const {
    wrapped_.execute(std::forward<Function>(f));
  }

  // query(p): the inner executor's answer, as for any strand.
  template <typename Property>
    requires can_query<const strand<Executor>&, Property>::value
  decltype(auto) query(const Property& p) const
      noexcept(is_nothrow_query<const strand<Executor>&, Property>::value) {
    return wrapped_.query(p);
  }

  // require(p), prefer(p): a strand executor on the same queue, over the
  // inner executor with `p`. Asking for outstanding_work.tracked gives one
  // that carries the values of this moment (unless this one carries some).
  template <typename Property>
    requires can_require<const strand<Executor>&, Property>::value
  auto require(const Property& p) const {
    return FromWrapped(wrapped_.require(p));
  }
  template <typename Property>
    requires can_prefer<const strand<Executor>&, Property>::value
  auto prefer(const Property& p) const {
    return FromWrapped(wrapped_.prefer(p));
  }

  // The Networking TS interface, where Executor has it (io_context's and
  // thread_pool's executors): context(), on_work_started(),
  // on_work_finished(), and dispatch/post/defer(f, allocator), which bind
  // `f` as execute does.
  execution_context& context() const noexcept
    requires requires(const Executor& e) { e.context(); }
  {
    return wrapped_.inner().context();
  }
  void on_work_started() const noexcept
    requires requires(const Executor& e) { e.on_work_started(); }
  {
    wrapped_.inner().on_work_started();
  }
  void on_work_finished() const noexcept
    requires requires(const Executor& e) { e.on_work_finished(); }
  {
    wrapped_.inner().on_work_finished();
  }
  template <typename Function, typename Allocator>
  void dispatch(Function&& f, const Allocator& a) const {
    wrapped_.inner().dispatch(wrapped_.BindWork(std::forward<Function>(f)), a);
  }
  template <typename Function, typename Allocator>
  void post(Function&& f, const Allocator& a) const {
    wrapped_.inner().post(wrapped_.BindWork(std::forward<Function>(f)), a);
  }
  template <typename Function, typename Allocator>
  void defer(Function&& f, const Allocator& a) const {
    wrapped_.inner().defer(wrapped_.BindWork(std::forward<Function>(f)), a);
  }

  // running_in_this_thread(): true inside work the strand is running.
  bool running_in_this_thread() const noexcept {
    return wrapped_.inner().running_in_this_thread();
  }

  // carries_snapshot(): true if everything executed runs in values captured
  // earlier (a strand executor Asio asked for outstanding_work.tracked).
  bool carries_snapshot() const noexcept { return wrapped_.carries_snapshot(); }

  // a == b: the same queue and the same carried values.
  friend bool operator==(const strand& a, const strand& b) noexcept {
    return a.wrapped_ == b.wrapped_;
  }
  friend bool operator!=(const strand& a, const strand& b) noexcept {
    return !(a == b);
  }

  // Not for use: Boost's strand<Other> reads these two members when it is
  // asked to convert from this strand, which the conversion operator of
  // their type refuses at compile time (see
  // gls::asio::internal::StrandConversionRefused).
  [[no_unique_address]] gls::asio::internal::StrandConversionRefused<0>
      executor_;
  [[no_unique_address]] gls::asio::internal::StrandConversionRefused<1> impl_;

 private:
  template <typename>
  friend class strand;

  struct FromWrappedTag {};
  strand(FromWrappedTag, Wrapped wrapped) noexcept
      : wrapped_(std::move(wrapped)) {}

  template <typename OtherStrand>
  static strand<gls::asio::PropagatingExecutor<
      typename OtherStrand::inner_executor_type>>
  FromWrapped(gls::asio::PropagatingExecutor<OtherStrand>&& wrapped) {
    using Result = strand<gls::asio::PropagatingExecutor<
        typename OtherStrand::inner_executor_type>>;
    return Result(typename Result::FromWrappedTag{}, std::move(wrapped));
  }

  Wrapped wrapped_;
};

}  // namespace asio
}  // namespace boost

// A gls::Bound handler keeps the associated executor and allocator of the
// handler it wraps: asio::post(strand, gls::Bind(handler)) still runs on the
// strand.
namespace boost {
namespace asio {

template <typename F, typename Executor>
struct associated_executor<gls::Bound<F>, Executor> {
  using type = typename associated_executor<F, Executor>::type;
  static type get(const gls::Bound<F>& b,
                  const Executor& ex = Executor()) noexcept {
    return associated_executor<F, Executor>::get(b.function(), ex);
  }
};

template <typename F, typename Allocator>
struct associated_allocator<gls::Bound<F>, Allocator> {
  using type = typename associated_allocator<F, Allocator>::type;
  static type get(const gls::Bound<F>& b,
                  const Allocator& a = Allocator()) noexcept {
    return associated_allocator<F, Allocator>::get(b.function(), a);
  }
};

}  // namespace asio
}  // namespace boost

#if defined(BOOST_ASIO_HAS_HANDLER_HOOKS) && !defined(BOOST_ASIO_NO_DEPRECATED)
namespace gls {

// asio_handler_invoke(function, bound): Boost.Asio's invocation hook
// (deprecated, still called by Boost 1.74 unless BOOST_ASIO_NO_DEPRECATED,
// where Asio refuses any definition of it, so there is none),
// for handlers made by gls::Bind and by the executors above. Calls
// `function` exactly as Asio's default hook does, but inlined where Asio
// completes the operation: the default is variadic, and GCC stops inlining
// it once the bound call is inlined into it (about 10 instructions per
// handler, //bench:instructions). Found by argument-dependent lookup on
// gls::Bound.
template <typename Function, typename F>
ABSL_ATTRIBUTE_ALWAYS_INLINE inline void asio_handler_invoke(Function& function,
                                                             Bound<F>*) {
  function();
}
template <typename Function, typename F>
ABSL_ATTRIBUTE_ALWAYS_INLINE inline void asio_handler_invoke(
    const Function& function, Bound<F>*) {
  function();
}

}  // namespace gls
#endif  // Asio still calls its handler hooks

#endif  // GLS_CONTRIB_ASIO_H_
