#pragma once
// The entity layer in the node's metrics: live entities by kind and quarantines. (Restarts are
// node_context::entity_restarts, which the node reads at render time.) Internal to actors/: not
// for headers that orderd_main.cpp includes (it names `ordermesh` `om`).
#include <string_view>

#include "observability/metric_values.hpp"

namespace ordermesh::actors {

/// ordermesh_active_entities{kind}: entities of that kind running on this node now.
om::obs::gauge& active_entities_gauge(std::string_view kind);
/// ordermesh_entity_quarantines_total: entities quarantined after crashing too often.
om::obs::counter& quarantines_counter();
/// ordermesh_entity_corrupted_total: entities found with damaged stored data (each once per
/// node run); they answer `corrupted` until the node restarts with the entity restored.
om::obs::counter& corrupted_counter();

}  // namespace ordermesh::actors
