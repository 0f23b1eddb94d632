#include "observability/metrics_text.hpp"

#ifndef ORDERMESH_VERSION
#define ORDERMESH_VERSION "unknown"
#endif

namespace om::obs {

std::string render_metrics_text() {
  // Placeholder until the registry lands: the build info alone.
  return std::string{
             "# HELP ordermesh_build_info The running orderd's version.\n"
             "# TYPE ordermesh_build_info gauge\n"
             "ordermesh_build_info{version=\""} +
         ORDERMESH_VERSION + "\"} 1\n";
}

std::vector<activity_sample> recent_activity() {
  return {};
}  // placeholder

}  // namespace om::obs
