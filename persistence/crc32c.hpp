#pragma once
// CRC32C (Castagnoli, the polynomial of iSCSI, ext4 and RocksDB's block checksums): the checksum
// of every stored event and snapshot value (persistence/value_format.hpp). SSE4.2's crc32
// instruction when the CPU has it (chosen once, at run time), a slice-by-8 table otherwise; both
// give the same result.
#include <cstdint>
#include <string_view>

namespace ordermesh::persistence::detail {

/// CRC32C of `data`, continuing from `crc` (the result of an earlier call over the bytes before;
/// 0 to start). crc32c("123456789") == 0xE3069283.
uint32_t crc32c(std::string_view data, uint32_t crc = 0);

/// The table version alone (tests compare it with the hardware one).
uint32_t crc32c_portable(std::string_view data, uint32_t crc = 0);

/// Whether crc32c uses the CPU's instruction on this machine.
bool crc32c_hardware();

}  // namespace ordermesh::persistence::detail
