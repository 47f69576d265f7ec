// examples/grpc_log: what the server and the load client share: the gls
// manager and keys, the propagation, a logger whose `%*` flag prints the
// gls values, and channels carrying gls's client interceptor.
#ifndef EXAMPLES_GRPC_LOG_COMMON_H_
#define EXAMPLES_GRPC_LOG_COMMON_H_

#include <memory>
#include <string>
#include <vector>

#include "gls/contrib/grpc.h"
#include "gls/contrib/spdlog.h"
#include "gls/gls.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/grpcpp.h"
#include "spdlog/sinks/basic_file_sink.h"
#include "spdlog/spdlog.h"

namespace grpc_log {

inline gls::ContextManager& Manager() {
  static gls::ContextManager* mgr = new gls::ContextManager;
  return *mgr;
}

inline const gls::TypedKey<std::string>& RequestIdKey() {
  static const gls::TypedKey<std::string> key;
  return key;
}

inline gls::grpc_values::Propagation& Propagation() {
  static gls::grpc_values::Propagation* p = [] {
    auto* prop = new gls::grpc_values::Propagation(Manager());
    prop->Map("x-request-id", RequestIdKey());
    return prop;
  }();
  return *p;
}

// A file logger: "<message> trace_id=... span_id=... parent_id=...
// request_id=..." for the values set where the line is logged.
inline std::shared_ptr<spdlog::logger> MakeLogger(const std::string& file) {
  auto logger = spdlog::basic_logger_mt("grpc_log", file, /*truncate=*/true);
  const gls::grpc_values::TraceKeys& k = Propagation().keys();
  logger->set_formatter(gls::spdlog_values::MakeFormatter(
      "%v%*", gls::spdlog_values::Flag(Manager())
                  .Add("trace_id", k.trace_id)
                  .Add("span_id", k.span_id)
                  .Add("parent_id", k.parent_id)
                  .Add("request_id", RequestIdKey())));
  logger->flush_on(spdlog::level::info);
  return logger;
}

inline std::shared_ptr<grpc::Channel> GlsChannel(const std::string& target) {
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> f;
  f.push_back(gls::grpc_values::MakeClientInterceptorFactory(Propagation()));
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_MAX_METADATA_SIZE, 256 * 1024);
  return grpc::experimental::CreateCustomChannelWithInterceptors(
      target, grpc::InsecureChannelCredentials(), args, std::move(f));
}

}  // namespace grpc_log

#endif  // EXAMPLES_GRPC_LOG_COMMON_H_
