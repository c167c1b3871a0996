// SPDX-License-Identifier: Apache-2.0
//
// SettradeSim when feedkit-sim is built without protobuf (no
// feedkit_example_settrade): `--broker settrade` is refused.
#include "sim/settrade_sim.h"

namespace examples::sim {

absl::Status check_settrade_script(const std::vector<FaultCommand>&,
                                   std::string_view) {
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<SettradeSim>> SettradeSim::start(
    const BrokerSimOptions&) {
  return absl::UnimplementedError(
      "feedkit-sim was built without protobuf: no settrade simulator");
}

}  // namespace examples::sim
