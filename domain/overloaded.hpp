#pragma once
// Internal helper: builds a std::visit visitor from lambdas, one per event type.

namespace ordermesh::domain {

/// `std::visit(overloaded{[](const a&) {...}, [](const b&) {...}}, v)`.
template <class... Fs>
struct overloaded : Fs... {
  using Fs::operator()...;
};
template <class... Fs>
overloaded(Fs...) -> overloaded<Fs...>;

}  // namespace ordermesh::domain
