"""Formulas as chemists paste them: normalisation to the parser's grammar, and hints for likely typos.

Normalisation (:func:`normalize_formula`) runs on every formula string before it is parsed, so the fast path and
the pymatgen fallback of :mod:`features.formula` see the same text. In order:

1. Unicode NFKC: subscript and superscript digits from papers and word processors become ASCII digits
   (``Li₃PS₄`` -> ``Li3PS4``), full-width letters and digits become ASCII (``ＬｉＣｌ`` -> ``LiCl``). ASCII input is
   left as is. Leading and trailing whitespace is stripped.
2. Sum of parts. A formula is split at top-level (outside brackets) hydrate/adduct dots ``·`` ``•`` ``∙`` ``⋅``
   and at ``+``; the parts are added. A part may start with a number, which multiplies it:
   ``Li3PS4·H2O`` = Li3PS4 + H2O, ``CuSO4·5H2O`` = CuSO4 + 5 H2O, ``CuSO4 · 5 H2O`` alike.
3. Glass/composite notation. A part that starts with a number may list further numbered parts separated by a
   dash (``-`` ``–`` ``—`` ``−``) or whitespace: ``0.75Li2S-0.25P2S5``, ``75Li2S–25P2S5``, ``0.75 Li2S 0.25 P2S5``
   are 0.75 Li2S + 0.25 P2S5 (75 Li2S + 25 P2S5 has the same composition). This is unambiguous because no plain
   formula starts with a number. Without numbers, ``Li2S-P2S5`` names a pseudo-binary system, not a composition,
   and stays an error. Bracketed glass notation needs no rule: ``(Li2S)0.75 (P2S5)0.25`` is already the sum of its
   groups (whitespace is ignored, as pymatgen ignores it; a number after whitespace is the amount of what precedes
   it: ``Li2S 0.25P2S5`` is Li2 S0.25 P2 S5, as in pymatgen).

The parts are rewritten as groups, ``(CuSO4)(H2O)5``, which both parsers read as the sum a chemist means. A
formula with one part and no leading number is passed on unchanged, so every formula pymatgen accepts keeps
pymatgen's amounts. A plain ``.`` stays a decimal point (``CuSO4.5H2O`` is Cu S O5.5 H2, as in pymatgen;
:func:`hints` flags it). Characters outside the grammar are errors naming the character.

Hints (:func:`hints`) name likely typos, cheaply, from the text alone:

- a digit ``0`` typed for the letter ``O``, in a formula with no O otherwise: an integer amount with a leading zero
  (``LiNb03``, ``Li0``), or an amount above 100 that is at least 50 times every other amount and splits at a ``0``
  into two amounts of at most 100 (``Li7La3Zr2012`` -> Zr2 O12; only with two or more elements). On the 154k distinct
  formulas of the bundled data sets this flags none;
- letters that only make element symbols with another case, or with ``l`` and ``I`` swapped (``li3ps4`` ->
  ``Li3PS4``, ``Lil`` -> ``LiI``); the suggestions that change fewest letters are given (at most three);
- a hydrate written with a plain dot (``CuSO4.5H2O``), which reads as a decimal point.
"""

from __future__ import annotations

import itertools
import re
import unicodedata

from sse_screen.features.elements import ELEMENT_SYMBOLS

__all__ = ["NotationError", "case_hint", "hints", "normalize_formula"]

HYDRATE_DOTS = "·•∙⋅"  # middle dot, bullet, bullet operator, dot operator
_DASHES = "–—−-"  # en dash, em dash, minus sign, hyphen-minus (last: literal in a class)
_SEPARATORS = re.compile(rf"[{HYDRATE_DOTS}+]")
_NEEDS_PARTS = re.compile(rf"^[\d.]|[{HYDRATE_DOTS}+]")
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
_COEF_PART = rf"({_NUMBER})\s*([A-Za-z(\[{{][^\s{_DASHES}]*)"
_GLASS = re.compile(rf"{_COEF_PART}(?:(?:\s*[{_DASHES}]\s*|\s+){_COEF_PART})*")
_COEF_PART_RE = re.compile(_COEF_PART)
_LEADING_NUMBER = re.compile(rf"({_NUMBER})\s*(.*)", re.DOTALL)
#: One part, no leading number, only characters the parsers understand.
_PLAIN = re.compile(r"[A-Za-z()\[\]{}@*\s-][A-Za-z0-9.()\[\]{}@*\s-]*")
#: Any character the parsers do not understand; it is reported by name.
_UNEXPECTED = re.compile(r"[^A-Za-z0-9.()\[\]{}@*\s-]")


class NotationError(ValueError):
    """A formula whose notation cannot be normalised; ``reason`` says why in a chemist's words."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def _unicode_to_ascii(formula: str) -> str:
    text = formula if formula.isascii() else unicodedata.normalize("NFKC", formula)
    return text.strip()


def _top_level_split(text: str) -> list[str]:
    """Split at hydrate dots and ``+`` outside brackets; a separator inside brackets is an error."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif _SEPARATORS.match(char):
            if depth > 0:
                raise NotationError(f"{char!r} inside brackets: dots and '+' join parts only outside brackets")
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _balanced(text: str) -> bool:
    depth = 0
    for char in text:
        depth += char in "([{"
        depth -= char in ")]}"
        if depth < 0:
            return False
    return depth == 0


def _part_terms(part: str) -> list[tuple[str, str]]:
    """``(coefficient as written, body)`` terms of one part; coefficient "" when the part has none."""
    part = part.strip()
    if not part:
        raise NotationError("empty part: a dot or '+' with nothing on one side")
    if not (part[0].isdigit() or part[0] == "."):
        return [("", part)]
    if _GLASS.fullmatch(part):
        return [(m[1], m[2]) for m in _COEF_PART_RE.finditer(part)]
    match = _LEADING_NUMBER.fullmatch(part)
    if match is None or not match[2]:
        raise NotationError(f"part {part!r} is only a number")
    return [(match[1], match[2])]


def _check_characters(text: str) -> None:
    if match := _UNEXPECTED.search(text):
        char = match[0]
        name = unicodedata.name(char, "unnamed")
        raise NotationError(f"unexpected character {char!r} (U+{ord(char):04X} {name})")


def normalize_formula(formula: str) -> str:
    """Rewrite a formula as pasted from a paper or word processor into the parser's grammar.

    Args:
        formula: A formula string, e.g. ``"Li₃PS₄·H₂O"`` or ``"0.75Li2S-0.25P2S5"``.

    Returns:
        The formula in pymatgen's grammar (``"(Li3PS4)(H2O)"``, ``"(Li2S)0.75(P2S5)0.25"``); a formula with one part
        and no leading number comes back unchanged apart from NFKC and stripping.

    Raises:
        NotationError: A character outside the grammar, an empty part, a part that is only a number, a zero
            coefficient, or a part with unbalanced brackets.
    """
    text = _unicode_to_ascii(formula)
    if _PLAIN.fullmatch(text):
        return text  # the common case, one regex
    if _NEEDS_PARTS.search(text):
        terms = list(itertools.chain.from_iterable(_part_terms(p) for p in _top_level_split(text)))
        pieces = []
        for coef, body in terms:
            if coef and float(coef) == 0:
                raise NotationError(f"coefficient {coef} of {body!r} is zero")
            if not _balanced(body):
                raise NotationError(f"unbalanced brackets in part {body!r}")
            pieces.append(f"({body}){coef}")
        text = "".join(pieces)
    _check_characters(text)
    return text


# --- hints -------------------------------------------------------------------------------------------------------

_AMOUNT_AFTER_SYMBOL = re.compile(r"([A-Z][a-z]*)(\d+(?:\.\d+)?)?")
_ZERO_FOR_O_LIMIT = 100.0  # amounts a typo-free formula would plausibly have on either side of the 0
_DWARF_FACTOR = 50.0  # ... and how much larger than every other amount the amount with the 0 must be
#: Cheap pre-filter for _zero_for_o_hint: an amount with a leading 0, or of 3+ digits with a 0.
_ZERO_SUSPECT = re.compile(r"[A-Za-z](?:0|(?=\d{3})\d*0)")
_DASHED_SYSTEM = re.compile(rf"[A-Za-z\d)\]]\s*[{_DASHES}]\s*[A-Z(\[]")
_DOT_HYDRATE = re.compile(r"(?<=[A-Za-z\d)\]])\.(\d+)H2O(?![a-z\d])")
_SYMBOLS = frozenset(ELEMENT_SYMBOLS) | {"D", "T"}  # pymatgen reads deuterium and tritium as H
_LETTER_RUN = re.compile(r"[A-Za-z]+")
_SYMBOL_TOKEN = re.compile(r"[A-Z][a-z]*")


def _sane(digits: str) -> bool:
    return bool(digits) and digits[0] != "0" and float(digits) <= _ZERO_FOR_O_LIMIT


def _zero_for_o_hint(text: str) -> str | None:
    tokens = [(m[1], m[2] or "", m.start()) for m in _AMOUNT_AFTER_SYMBOL.finditer(text)]
    if any(sym == "O" for sym, _, _ in tokens):
        return None
    for i, (sym, digits, start) in enumerate(tokens):
        if not digits or "." in digits:
            continue
        fix = None
        if digits[0] == "0":  # LiNb03, Li0
            fix = ("", digits[1:])
        elif len(tokens) > 1 and float(digits) > _ZERO_FOR_O_LIMIT:
            others = [float(d) if d else 1.0 for j, (_, d, _) in enumerate(tokens) if j != i]
            if float(digits) >= _DWARF_FACTOR * max(others):
                splits = ((digits[:p], digits[p + 1 :]) for p, c in enumerate(digits) if c == "0")
                fix = next(((a, b) for a, b in splits if _sane(a) and _sane(b)), None)
        if fix is not None:
            end = start + len(sym) + len(digits)
            fixed = f"{text[:start]}{sym}{fix[0]}O{fix[1]}{text[end:]}"
            return f"did you mean O{fix[1]}? a digit 0 follows {sym} ({fixed})"
    return None


def _run_options(run: str) -> list[tuple[int, str]]:
    """Element-symbol spellings of a letter run, as (letters changed, spelling), fewest changes first."""
    best: list[list[tuple[int, str]]] = [[] for _ in range(len(run) + 1)]
    best[0] = [(0, "")]
    for end in range(1, len(run) + 1):
        options = []
        for size in (1, 2):
            start = end - size
            if start < 0 or not best[start]:
                continue
            chunk = run[start:end]
            for candidate in _spellings(chunk):
                cost = sum(a != b for a, b in zip(chunk, candidate, strict=True))
                options += [(c + cost, s + candidate) for c, s in best[start]]
        options.sort()
        best[end] = options[:6]
    return best[-1]


def _spellings(chunk: str) -> list[str]:
    """Element symbols that ``chunk`` could be with its case changed or ``l``/``I`` swapped."""
    variants = {""}
    for char in chunk:
        alts = {char.lower(), char.upper()}
        if char in "lI":
            alts |= {"l", "I"}  # look alike in sans-serif fonts
        variants = {v + a for v in variants for a in alts}
    return sorted(v for v in variants if v in _SYMBOLS)


def _run_ok(run: str, text: str, start: int) -> bool:
    if run == "e" and start > 0 and text[start - 1].isdigit():  # exponent, 1e-3
        return True
    tokens = _SYMBOL_TOKEN.findall(run)
    return "".join(tokens) == run and all(t in _SYMBOLS for t in tokens)


def case_hint(text: str) -> str | None:
    """Suggest spellings for letter runs that are no element symbols as written (``li3ps4`` -> ``Li3PS4``)."""
    fixes: list[tuple[int, int, list[str]]] = []
    for m in _LETTER_RUN.finditer(text):
        if _run_ok(m[0], text, m.start()):
            continue
        options = _run_options(m[0])
        if not options:
            return None
        fewest = options[0][0]
        fixes.append((m.start(), m.end(), [s for c, s in options if c == fewest][:3]))
    if not fixes:
        return None
    suggestions = []
    for choice in itertools.islice(itertools.product(*(f[2] for f in fixes)), 3):
        out, last = [], 0
        for (start, end, _), spelled in zip(fixes, choice, strict=True):
            out += [text[last:start], spelled]
            last = end
        suggestions.append("".join(out) + text[last:])
    return "did you mean " + " or ".join(suggestions) + "?"


def hints(formula: str, *, parses: bool = False) -> list[str]:
    """Likely typos in a formula string, each as a short sentence (empty when nothing looks wrong).

    Args:
        formula: The formula as given (normalised here with NFKC and stripping only).
        parses: True when the formula is known to parse: its letters are element symbols, so no case hint.

    Returns:
        Hints such as ``"did you mean O12? a digit 0 follows Zr (Li7La3Zr2O12)"``; never raises.
    """
    text = _unicode_to_ascii(formula)
    found = []
    if not parses and (hint := case_hint(text)):
        found.append(hint)
    if _ZERO_SUSPECT.search(text) and (hint := _zero_for_o_hint(text)):
        found.append(hint)
    if m := _DOT_HYDRATE.search(text):
        found.append(f"'.{m[1]}H2O' reads as a decimal point; write a hydrate as {text[: m.start()]}·{m[1]}H2O")
    if _DASHED_SYSTEM.search(text) and not text[:1].isdigit():
        found.append("for a glass or composite, give every part its number: 0.75Li2S-0.25P2S5")
    return found
