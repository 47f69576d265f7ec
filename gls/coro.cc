#include <cxxabi.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <string>
#include <typeinfo>

#include "gls/coro.h"

namespace gls {
namespace {

// The readable name of the exception being handled (called in a catch
// block), e.g. "std::runtime_error".
std::string CurrentExceptionTypeName() {
  const std::type_info* type = abi::__cxa_current_exception_type();
  if (type == nullptr) return "an unknown exception";
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> demangled(
      abi::__cxa_demangle(type->name(), nullptr, nullptr, &status), std::free);
  return status == 0 && demangled != nullptr ? demangled.get() : type->name();
}

// "std::runtime_error: boom" for a std::exception, the type's name for
// anything else.
std::string Describe(std::exception_ptr error) {
  if (error == nullptr) return "(a null std::exception_ptr)";
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return CurrentExceptionTypeName() + ": " + e.what();
  } catch (...) {
    return CurrentExceptionTypeName();
  }
}

// One fputs of one line, so lines from several threads do not interleave.
void WriteLine(const std::string& line) noexcept {
  std::fputs(line.c_str(), stderr);
  std::fflush(stderr);
}

}  // namespace

void WriteExceptionToStderr::operator()(std::exception_ptr error) const noexcept {
  try {
    WriteLine("gls::Spawn: a spawned gls::Task ended with an exception: " +
              Describe(error) + "\n");
  } catch (...) {
    // Building the line failed (std::bad_alloc): still say something.
    std::fputs("gls::Spawn: a spawned gls::Task ended with an exception\n", stderr);
  }
}

namespace coro_internal {

void ReportThrowingErrorHandler(std::exception_ptr from_handler,
                                std::exception_ptr from_task) noexcept {
  try {
    WriteLine("gls::Spawn: the error handler of a spawned gls::Task threw " +
              Describe(from_handler) + " while handling " + Describe(from_task) +
              "\n");
  } catch (...) {
    std::fputs("gls::Spawn: the error handler of a spawned gls::Task threw\n",
               stderr);
  }
}

}  // namespace coro_internal
}  // namespace gls
