#include "actors/entity_metrics.hpp"

#include <string>

#include "observability/registry.hpp"

namespace ordermesh::actors {

om::obs::gauge& active_entities_gauge(std::string_view kind) {
  // Four kinds: the bound only guards against a bug passing ids as kinds.
  return om::obs::registry::global()
      .gauges("ordermesh_active_entities", "Entity actors running on this node now, by kind.",
              {"kind"}, 16)
      .with({std::string(kind)});
}

om::obs::counter& quarantines_counter() {
  static auto& c = om::obs::registry::global()
                       .counters("ordermesh_entity_quarantines_total",
                                 "Entities quarantined after crashing more than the restart limit "
                                 "within the restart window.")
                       .with({});
  return c;
}

om::obs::counter& corrupted_counter() {
  static auto& c = om::obs::registry::global()
                       .counters("ordermesh_entity_corrupted_total",
                                 "Entities whose stored events or snapshot failed their checksum "
                                 "or did not decode; each answers corrupted to every request.")
                       .with({});
  return c;
}

}  // namespace ordermesh::actors
