// gls/conformance/integration_model.h: what every step of an executor
// program (integration_program.h) must see, predicted from nothing but the
// documented rules of gls's integrations, on top of the core reference model
// (reference_model.h).
//
// What this is for: the oracle of the integration differential test. The
// prediction depends only on the program, never on scheduling: which thread
// runs a handler, in which order, whether a timer fired or was cancelled,
// whether a dispatch ran inline, none of it changes what a step must see.
// That is what lets the real run be concurrent while the check is exact.
//
// What this is not: a model of Asio's scheduling, or of anything the headers
// leave open (where a step runs, in which order, goroutine ids beyond
// presence). Those are not predicted, so not checked.
//
// Modelled rules (and where they come from). Each piece of work is a new
// flow (reference_model.h's ModelFlow); "carried" means the flow starts with
// a Snapshot::Run of a capture (ModelFlow::PushRun) of the flow that
// submitted it, at the moment it submitted it:
//   * Work submitted through gls::asio::Propagating(ex) (post, dispatch,
//     defer, inline or not; a handler bound with bind_executor to it; a
//     strand over it, make_strand(Propagating(ex)); the wrapper over a
//     strand, Propagating(make_strand(ex))): carried from the submitting
//     call. (gls/contrib/asio.h: "each piece of work then runs with the
//     values of the scope that started it", "use `ex` wherever Asio takes
//     an executor (post/dispatch/defer, I/O objects, co_spawn, strands)".)
//   * A steady_timer made with such an executor: its async_wait handler is
//     carried from the async_wait call, whether it fires or another flow
//     cancels it. (asio.h: "an asynchronous operation's completion
//     handler ... the values where the operation was started".)
//   * co_spawn(ex, awaitable) with such an executor: the awaitable's body is
//     carried from the co_spawn call, and after every co_await it sees what
//     it saw before (a nested awaitable is the same flow). (asio.h.)
//   * Work through an unwrapped executor (a handler, a timer completion, a
//     co_spawn'ed body and everything after its co_awaits): a fresh flow,
//     no values, and, at the start of a handler or timer completion, no
//     goroutine id of any strategy either: what an executor thread sees
//     between steps. (asio.h: "Work started through an unwrapped executor is
//     not carried"; "A thread running the io_context between two handlers
//     sees its own values (none, normally)".)
//   * gls::Task: its body is carried from where the task was created (the
//     call of the coroutine function), after every resumption, however it
//     is resumed; a sub-task is created in its parent's body; WithValues(m,
//     entries, task) makes the task's values those it was created with plus
//     `entries` for m (a SetValues inside a Run of its creation values).
//     (gls/coro.h.)
//   * gls::Bind(fn): fn is carried from the Bind call, wherever and inside
//     whatever scope it is called. (gls/bind.h.)
//   * A spdlog line logged through gls's async logger and formatted later
//     with gls's flag on spdlog's worker thread (gls/contrib/spdlog.h): the
//     flag prints, for each of its entries in order, " label=value" for the
//     values the logging flow saw at the logging call (ExpectedFlag).
//   * A flow's own values are back after a scope ends, after a SyncWait,
//     after a gls::Bind called inline, and after a co_await resumes.
//
// Guarantees: deterministic; a pure function of the program.
#ifndef GLS_CONFORMANCE_INTEGRATION_MODEL_H_
#define GLS_CONFORMANCE_INTEGRATION_MODEL_H_

#include <optional>
#include <string>
#include <vector>

#include "gls/conformance/integration_program.h"
#include "gls/conformance/reference_model.h"

namespace gls {
namespace conformance {
namespace integration {

// Expectation: what a flow must see at one point.
struct Expectation {
  // Every manager's values (the view), and per strategy whether the flow
  // has values of it (then GetGoroutineId of that strategy is not nullopt).
  ModelSnapshot values;
  // An executor thread outside every step: besides no values, no goroutine
  // id of any strategy.
  bool thread_base = false;
};

// StepExpectations: per step, in preorder (Print's numbers).
struct StepExpectations {
  // The flow running the step, when it reaches the step; also after the
  // step (a scope ended, a SyncWait returned, a co_await resumed, ...).
  Expectation at;
  // The work the step starts (handler, timer completion, awaitable, task,
  // sub-task, bound callable), when it starts. Absent for steps that start
  // none.
  std::optional<Expectation> work;
};

// MakeRegistry(strategies): the model's managers, with the ids
// ManagerCount/ManagerName use (manager i of the program is id i).
ModelRegistry MakeRegistry(int strategies);

// Predict(program, registry): every step's expectations, indexed by the
// step's preorder number.
std::vector<StepExpectations> Predict(const Program& program,
                                      const ModelRegistry& registry);

// ExpectedFlag(values): what the kLog steps' flag (every key of manager A0,
// labelled with KeyName, in key order) prints for a flow with `values`.
std::string ExpectedFlag(const ModelSnapshot& values);

}  // namespace integration
}  // namespace conformance
}  // namespace gls

#endif  // GLS_CONFORMANCE_INTEGRATION_MODEL_H_
