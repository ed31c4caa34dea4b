# Turns a file into C source: const char NAME[] = { ...bytes..., 0 };
# Run at build time (cmake -DIN=file -DOUT=file.c -DNAME=symbol -P embed.cmake);
# the output lives in the build tree only. With -DCSP_HASHES=ON it also
# writes NAME_csp_hashes: the CSP source expressions ('sha256-...') of the
# first inline <script> and <style>, so the page's policy can allow exactly
# those and no other inline code.

# Base64 of the bytes a hex string spells (RFC 4648, with padding).
function(hex_to_base64 hex out)
  set(abc "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
  string(LENGTH "${hex}" len)
  set(result "")
  set(i 0)
  while(i LESS len)
    math(EXPR left "${len} - ${i}")
    if(left GREATER 6)
      set(left 6)
    endif()
    string(SUBSTRING "${hex}" ${i} ${left} group)
    set(pad 0)
    while(left LESS 6)
      string(APPEND group "00")
      math(EXPR left "${left} + 2")
      math(EXPR pad "${pad} + 1")
    endwhile()
    math(EXPR v "0x${group}")
    foreach(shift 18 12 6 0)
      math(EXPR idx "(${v} >> ${shift}) & 63")
      string(SUBSTRING "${abc}" ${idx} 1 ch)
      string(APPEND result "${ch}")
    endforeach()
    if(pad GREATER 0)
      string(LENGTH "${result}" rlen)
      math(EXPR cut "${rlen} - ${pad}")
      string(SUBSTRING "${result}" 0 ${cut} result)
      foreach(_ RANGE 1 ${pad})
        string(APPEND result "=")
      endforeach()
    endif()
    math(EXPR i "${i} + 6")
  endwhile()
  set(${out} "${result}" PARENT_SCOPE)
endfunction()

# 'sha256-...' for the text between <tag> and </tag>, or "" when there is none.
function(inline_hash text tag out)
  set(${out} "" PARENT_SCOPE)
  string(FIND "${text}" "<${tag}>" open)
  string(FIND "${text}" "</${tag}>" close)
  if(open EQUAL -1 OR close EQUAL -1)
    return()
  endif()
  string(LENGTH "<${tag}>" tag_len)
  math(EXPR from "${open} + ${tag_len}")
  math(EXPR n "${close} - ${from}")
  string(SUBSTRING "${text}" ${from} ${n} body)
  string(SHA256 digest "${body}")
  hex_to_base64("${digest}" b64)
  set(${out} "'sha256-${b64}'" PARENT_SCOPE)
endfunction()

file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" hex_len)
math(EXPR size "${hex_len} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
get_filename_component(src "${IN}" NAME)
string(CONCAT body
  "/* Generated from ${src} by cmake/embed.cmake at build time: do not edit. */\n"
  "#include <stddef.h>\n\n"
  "extern const char ${NAME}[];\n"
  "extern const size_t ${NAME}_len;\n\n"
  "const char ${NAME}[] = {\n\t${bytes}0x00\n};\n"
  "const size_t ${NAME}_len = ${size};\n")
if(CSP_HASHES)
  file(READ "${IN}" text)
  inline_hash("${text}" script script_hash)
  inline_hash("${text}" style style_hash)
  string(APPEND body
    "\n/* script-src and style-src: the page's own inline code and nothing else. */\n"
    "extern const char ${NAME}_script_hash[];\n"
    "extern const char ${NAME}_style_hash[];\n"
    "const char ${NAME}_script_hash[] = \"${script_hash}\";\n"
    "const char ${NAME}_style_hash[] = \"${style_hash}\";\n")
endif()
file(WRITE "${OUT}.tmp" "${body}")
# Only a real change touches OUT, so an unchanged page recompiles nothing.
execute_process(COMMAND ${CMAKE_COMMAND} -E copy_if_different "${OUT}.tmp" "${OUT}")
file(REMOVE "${OUT}.tmp")
