# Writes INPUT (a text file) into OUTPUT as a C++ header holding one std::string_view NAME, so
# that orderd serves the status page from its own binary without a build step for the page.
# Run at build time: cmake -D INPUT=... -D OUTPUT=... -D NAME=... -P embed_text.cmake
file(READ "${INPUT}" text)
set(delimiter "om_embedded")
string(FIND "${text}" ")${delimiter}\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${INPUT} contains the raw-string delimiter )${delimiter}\"")
endif()
file(WRITE "${OUTPUT}.tmp"
  "#pragma once\n// Generated from ${INPUT} by embed_text.cmake: edit that file, not this one.\n"
  "#include <string_view>\n\nnamespace ordermesh::node::admin {\n"
  "inline constexpr std::string_view ${NAME} = R\"${delimiter}(${text})${delimiter}\";\n"
  "}  // namespace ordermesh::node::admin\n")
# Only a changed page rebuilds what includes it.
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUTPUT}.tmp")
