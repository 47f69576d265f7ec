// Must not compile: a strand made from the wrapped executor converted to
// boost::asio::strand<any_io_executor> (asio_strand_compile_test.sh). That
// strand would share the queue and run every request's handlers in the
// values of whichever request found it idle.
#include "boost/asio/any_io_executor.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/strand.hpp"
#include "gls/contrib/asio.h"

int main() {
  boost::asio::io_context io;
  auto ex = gls::asio::Propagating(io.get_executor());
  auto shared = boost::asio::make_strand(ex);
  boost::asio::strand<boost::asio::any_io_executor> erased(shared);
  (void)erased;
}
