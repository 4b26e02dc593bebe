"""Regular expressions as GBNF, so llama.cpp can hold a reply to a `regex` ActionSpec.

llama.cpp's servers take a GBNF `grammar`; the JSON-schema route
(`response_format` with a `pattern`) goes through a converter that rejects
common syntax (`(?:...)`, `\\d` as a class) and then silently falls back to
any JSON, which a marker-based parser cannot read. This covers the subset
environments write: literals and escapes, `.`, classes (`\\d \\w \\s`, their
negations, `[...]`), groups (capturing or `(?:...)`), alternation, and the
quantifiers `? * + {m} {m,} {m,n}` (written out up to `MAX_REPEAT`, past it as GBNF's own
bounds); leading `^` and trailing `$` are dropped.
Anything else (lookarounds, back-references, lazy quantifiers) raises
`Unsupported`, and the caller sends no grammar for it.
"""

from __future__ import annotations

MAX_REPEAT = 64


class Unsupported(ValueError):
    """A regex feature GBNF cannot express (or not simply)."""


_CLASS = {"d": "[0-9]", "D": "[^0-9]", "w": "[A-Za-z0-9_]", "W": "[^A-Za-z0-9_]", "s": "[ \\t\\n\\r]",
          "S": "[^ \\t\\n\\r]"}
_IN_CLASS = {"d": "0-9", "w": "A-Za-z0-9_", "s": " \\t\\n\\r"}
_CONTROL = {"n": "\n", "t": "\t", "r": "\r"}
# Inside a GBNF class these are written as hex escapes (its parser reads no backslash before them).
_CLASS_HEX = {"]": "\\x5D", "\\": "\\x5C", "-": "\\x2D", "^": "\\x5E", "[": "\\x5B"}


def _literal(ch: str) -> str:
    if ch in '"\\':
        return '"\\' + ch + '"'
    return '"' + {"\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(ch, ch) + '"'


class _Parser:
    def __init__(self, pattern: str) -> None:
        self.s = pattern
        self.i = 0

    def peek(self) -> str | None:
        return self.s[self.i] if self.i < len(self.s) else None

    def take(self) -> str:
        ch = self.s[self.i]
        self.i += 1
        return ch

    def alternation(self) -> str:
        branches = [self.sequence()]
        while self.peek() == "|":
            self.take()
            branches.append(self.sequence())
        return branches[0] if len(branches) == 1 else " | ".join(branches)

    def sequence(self) -> str:
        items: list[str] = []
        while self.peek() not in (None, "|", ")"):
            items.append(self.quantified(self.atom()))
        return " ".join(items) if items else '""'

    def atom(self) -> str:
        ch = self.take()
        if ch == "(":
            if self.s.startswith("?:", self.i):
                self.i += 2
            elif self.peek() == "?":
                raise Unsupported(f"group syntax (?{self.s[self.i + 1:self.i + 2]}")
            inner = self.alternation()
            if self.peek() != ")":
                raise Unsupported("unbalanced parenthesis")
            self.take()
            return f"({inner})"
        if ch == "[":
            return self.char_class()
        if ch == ".":
            return "[^\\n]"
        if ch == "\\":
            return self.escape()
        if ch in "*+?{":
            raise Unsupported(f"quantifier {ch!r} with nothing before it")
        if ch in "^$":
            raise Unsupported("an anchor inside the pattern")
        return _literal(ch)

    def escape(self) -> str:
        if self.peek() is None:
            raise Unsupported("a trailing backslash")
        ch = self.take()
        if ch in _CLASS:
            return _CLASS[ch]
        if ch in _CONTROL:
            return _literal(_CONTROL[ch])
        if ch.isalnum():
            raise Unsupported(f"the escape \\{ch}")
        return _literal(ch)

    def char_class(self) -> str:
        out = ["["]
        if self.peek() == "^":
            out.append(self.take())
        first = True
        while True:
            ch = self.peek()
            if ch is None:
                raise Unsupported("an unclosed character class")
            self.take()
            if ch == "]" and not first:
                break
            first = False
            if ch == "\\":
                esc = self.take() if self.peek() is not None else ""
                if esc in _IN_CLASS:
                    out.append(_IN_CLASS[esc])
                elif esc in _CONTROL:
                    out.append("\\" + esc)
                elif esc and not esc.isalnum():
                    out.append(_CLASS_HEX.get(esc, esc))
                else:
                    raise Unsupported(f"the escape \\{esc} in a class")
            elif ch == "[":
                raise Unsupported("a nested class")
            else:
                out.append({"\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(ch, ch))
        return "".join(out) + "]"

    def quantified(self, atom: str) -> str:
        ch = self.peek()
        if ch in ("?", "*", "+"):
            self.take()
            if self.peek() in ("?", "+"):
                raise Unsupported("lazy or possessive quantifiers")
            return atom + ch
        if ch == "{":
            end = self.s.find("}", self.i)
            body = self.s[self.i + 1:end] if end > 0 else ""
            lo_text, _, hi_text = body.partition(",")
            if not lo_text.isdigit() or (hi_text and not hi_text.isdigit()):
                return atom  # a literal brace, as Python reads it
            self.i = end + 1
            lo = int(lo_text)
            hi = lo if "," not in body else (int(hi_text) if hi_text else None)
            if hi is not None and hi < lo:
                raise Unsupported(f"the repeat {{{body}}}")
            if max(lo, hi or 0) > MAX_REPEAT:  # llama.cpp's own bounds, rather than hundreds of copies
                return f"({atom}){{{lo},{'' if hi is None else hi}}}" if hi != lo else f"({atom}){{{lo}}}"
            parts = [atom] * lo + ([f"{atom}*"] if hi is None else [f"{atom}?"] * (hi - lo))
            return "(" + " ".join(parts) + ")" if parts else '""'
        return atom


def regex_to_gbnf(pattern: str) -> str:
    """A GBNF expression matching the strings `re.fullmatch(pattern, s)` accepts (see the module docstring)."""
    if pattern.startswith("^"):
        pattern = pattern[1:]
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1]
    parser = _Parser(pattern)
    expr = parser.alternation()
    if parser.i != len(pattern):
        raise Unsupported("unbalanced parenthesis")
    return expr
