// Must compile with -Wall -Wextra -Werror: the strand spellings
// gls/contrib/asio.h says are right (asio_strand_compile_test.sh).
#include "boost/asio/any_io_executor.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/strand.hpp"
#include "gls/contrib/asio.h"

int main() {
  boost::asio::io_context io;
  auto ex = gls::asio::Propagating(io.get_executor());
  auto shared = boost::asio::make_strand(ex);
  boost::asio::strand<gls::asio::PropagatingExecutor<boost::asio::io_context::executor_type>>
      by_hand(ex);
  boost::asio::any_io_executor erased_whole = boost::asio::make_strand(ex);
  auto wrapped = gls::asio::Propagating(boost::asio::make_strand(io.get_executor()));
  boost::asio::any_io_executor erased = ex;
  auto wrapped_over_erased = gls::asio::Propagating(boost::asio::make_strand(erased));
  // Converting between strands of the wrapper: the same queue.
  boost::asio::strand<gls::asio::PropagatingExecutor<boost::asio::any_io_executor>> converted(
      shared);
  (void)by_hand;
  (void)erased_whole;
  (void)wrapped;
  (void)wrapped_over_erased;
  (void)converted;
}
