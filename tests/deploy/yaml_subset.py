"""A reader for the subset of YAML that deploy/kubernetes/*.yaml keep to (Python 3 stdlib only:
the project's Python uses no third-party module, and Debian's python3-yaml is not a build
dependency). yamllint (a Debian package, installed by scripts/setup.sh) checks the files are
YAML at all; this turns them into dicts and lists so tests/deploy can check their structure.

The subset: `---` between documents, block mappings (`key: value`, `key:` + a deeper block),
block sequences (`- value`, `- key: value` starting a mapping), flow sequences of scalars
(`["a", "b"]`), plain, single- and double-quoted scalars, `#` comments. Anything else (tabs,
anchors, tags, block scalars `|`/`>`, flow mappings) raises YamlSubsetError naming the line,
so a manifest that leaves the subset fails loudly instead of being read wrong.
"""

import json
import re


class YamlSubsetError(ValueError):
    pass


MAX_LINES = 10000  # a manifest is a few hundred lines: a bound on the work, not a limit in use


def _strip_comment(text):
    """`text` without a trailing # comment (a # inside quotes stays)."""
    quote = None
    for i, c in enumerate(text):
        if quote:
            if c == quote:
                quote = None
        elif c in "\"'":
            quote = c
        elif c == "#" and (i == 0 or text[i - 1] == " "):
            return text[:i].rstrip()
    return text.rstrip()


def _scalar(text, lineno):
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        inner = text[1:-1].strip()
        return [] if not inner else [_scalar(p, lineno) for p in inner.split(",")]
    if text[:1] in ("{", "&", "*", "!", "|", ">"):
        raise YamlSubsetError(f"line {lineno}: '{text}' is outside the subset")
    if text.startswith('"'):
        try:
            return json.loads(text)
        except ValueError as e:
            raise YamlSubsetError(f"line {lineno}: bad double-quoted string {text}") from e
    if text.startswith("'"):
        if not text.endswith("'") or len(text) < 2:
            raise YamlSubsetError(f"line {lineno}: unterminated string {text}")
        return text[1:-1].replace("''", "'")
    if text in ("true", "false"):
        return text == "true"
    if text in ("null", "~", ""):
        return None
    if re.fullmatch(r"-?[0-9]+", text):
        # YAML 1.1 (what Kubernetes reads): a leading 0 makes it octal, e.g. defaultMode: 0440.
        return int(text, 8) if len(text.lstrip("-")) > 1 and text.lstrip("-")[0] == "0" \
            else int(text)
    return text


_KEY = re.compile(r"([A-Za-z0-9_./-]+|\"[^\"]*\"):(?: (.*))?$")


def _lines(text):
    """(indent, content, lineno) of every line that holds something."""
    out = []
    for lineno, raw in enumerate(text.split("\n"), 1):
        if lineno > MAX_LINES:
            raise YamlSubsetError(f"more than {MAX_LINES} lines")
        if "\t" in raw:
            raise YamlSubsetError(f"line {lineno}: a tab")
        content = _strip_comment(raw)
        if content.strip():
            out.append((len(content) - len(content.lstrip(" ")), content.strip(), lineno))
    return out


def _parse_block(lines, i, indent):
    """Parses the block starting at lines[i] (at exactly `indent`); returns (value, next i)."""
    if lines[i][1].startswith("- ") or lines[i][1] == "-":
        return _parse_sequence(lines, i, indent)
    return _parse_mapping(lines, i, indent)


def _parse_mapping(lines, i, indent):
    result = {}
    while i < len(lines) and lines[i][0] == indent:
        _, content, lineno = lines[i]
        m = _KEY.match(content)
        if not m:
            raise YamlSubsetError(f"line {lineno}: expected 'key: value', got '{content}'")
        key = m.group(1).strip('"')
        if key in result:
            raise YamlSubsetError(f"line {lineno}: key '{key}' given twice")
        rest = m.group(2)
        i += 1
        if rest is not None and rest.strip():
            result[key] = _scalar(rest, lineno)
        elif i < len(lines) and lines[i][0] > indent:
            result[key], i = _parse_block(lines, i, lines[i][0])
        elif i < len(lines) and lines[i][0] == indent and lines[i][1].startswith("- "):
            # a sequence at the key's own indent (allowed by YAML, common in Kubernetes files)
            result[key], i = _parse_sequence(lines, i, indent)
        else:
            result[key] = None
    if i < len(lines) and lines[i][0] > indent:
        raise YamlSubsetError(f"line {lines[i][2]}: unexpected indentation")
    return result, i


def _parse_sequence(lines, i, indent):
    result = []
    while i < len(lines) and lines[i][0] == indent and \
            (lines[i][1].startswith("- ") or lines[i][1] == "-"):
        _, content, lineno = lines[i]
        item = content[1:].strip()
        if not item:
            i += 1
            if i >= len(lines) or lines[i][0] <= indent:
                raise YamlSubsetError(f"line {lineno}: empty sequence item")
            value, i = _parse_block(lines, i, lines[i][0])
        elif _KEY.match(item) and not item.startswith(("'", '"', "[")):
            # "- key: value" opens a mapping whose keys line up with "key"
            inner = indent + (len(content) - len(item))
            lines[i] = (inner, item, lineno)
            value, i = _parse_mapping(lines, i, inner)
        else:
            value = _scalar(item, lineno)
            i += 1
        result.append(value)
    return result, i


def load_all(text):
    """Every document of `text` as Python values (empty documents left out)."""
    docs, current, start = [], [], 0
    for n, raw in enumerate(text.split("\n") + ["---"]):
        if raw.rstrip() == "---":
            # blank lines in front keep the line numbers of the whole file in messages
            lines = _lines("\n" * start + "\n".join(current))
            if lines:
                if lines[0][0] != 0:
                    raise YamlSubsetError(f"line {lines[0][2]}: a document must start at column 0")
                value, end = _parse_block(lines, 0, 0)
                if end != len(lines):
                    raise YamlSubsetError(f"line {lines[end][2]}: unexpected content")
                docs.append(value)
            current, start = [], n + 1
        else:
            current.append(raw)
    return docs
