// report_json (launch.h): the launch report as the device library exports it
// (blitzNpuSimLastReport), every counter of BLITZ_SIM_COUNTERS by name.
#include <sstream>

#include "blitz_sim/launch.h"

namespace blitz_sim {
namespace {

void json_string(std::ostringstream &s, const std::string &text)
{
  s << '"';
  for (const unsigned char ch : text) {
    if (ch == '"' || ch == '\\') {
      s << '\\' << ch;
    } else if (ch < 0x20) {
      static const char hex[] = "0123456789abcdef";
      s << "\\u00" << hex[ch >> 4] << hex[ch & 15];
    } else {
      s << ch;
    }
  }
  s << '"';
}

void json_cores(std::ostringstream &s, const std::vector<CoreCounters> &cores)
{
  s << '[';
  for (size_t i = 0; i < cores.size(); ++i) {
    const CoreCounters &c = cores[i];
    s << (i ? "," : "") << '{';
    const char *sep = "";
#define BLITZ_SIM_COUNTER_JSON(name, doc) \
  s << sep << "\"" #name "\":" << c.name; \
  sep = ",";
    BLITZ_SIM_COUNTERS(BLITZ_SIM_COUNTER_JSON)
#undef BLITZ_SIM_COUNTER_JSON
    s << '}';
  }
  s << ']';
}

}  // namespace

std::string report_json(const LaunchReport &report, uint32_t block_dim, const std::string &extra_fields)
{
  std::ostringstream s;
  s << "{\"ok\":" << (report.ok ? "true" : "false") << ",\"error\":";
  json_string(s, report.error);
  s << ",\"counting_only\":" << (report.counting_only ? "true" : "false") << ",\"block_dim\":" << block_dim
    << ",\"counters\":{";
  const char *sep = "";
#define BLITZ_SIM_COUNTER_DOC(name, doc) \
  s << sep << "\"" #name "\":";          \
  json_string(s, doc);                   \
  sep = ",";
  BLITZ_SIM_COUNTERS(BLITZ_SIM_COUNTER_DOC)
#undef BLITZ_SIM_COUNTER_DOC
  s << "},\"cube\":";
  json_cores(s, report.cube);
  s << ",\"vector\":";
  json_cores(s, report.vector);
  if (!extra_fields.empty()) s << ',' << extra_fields;
  s << '}';
  return s.str();
}

}  // namespace blitz_sim
