#include "actors/unavailable_responder.hpp"

#include <caf/all.hpp>

#include "actors/errors.hpp"
#include "actors/messages.hpp"

namespace ordermesh::actors {

caf::actor spawn_unavailable_responder(caf::actor_system& sys) {
  // The unused int: CAF 0.17 dereferences a null tuple when a function actor takes no
  // arguments (UBSan reports it in init_fun_factory.hpp).
  return sys.spawn(
      [](caf::event_based_actor* self, int) -> caf::behavior {
        self->set_default_handler(
            [](caf::scheduled_actor*, caf::message_view&) -> caf::result<caf::message> {
              return make_error(domain::errc::unavailable,
                                "the node that owns this entity's shard cannot be reached; retry");
            });
        return {[](retry_atom) {}};  // never sent here: everything goes to the default handler
      },
      0);
}

}  // namespace ordermesh::actors
