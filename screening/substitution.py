"""Which ions may replace an ion of a parent composition, and how plausible each replacement is.

The plausibility of a replacement is the ionic substitution probability of Hautier et al. (Inorg. Chem. 50, 656,
2011), learned from the ICSD and shipped inside pymatgen
(``pymatgen.analysis.structure_prediction.substitution_probability``, table ``data/lambda.json``; nothing is
downloaded): ``substitution_probability`` is P(dopant ion | site ion), the conditional probability that a structure
holding the site ion also exists with the dopant ion in its place. Candidates are restricted to what a chemist would
try in an electrolyte:

- the dopant ion has the sign of the site ion and a charge within :data:`MAX_CHARGE_CHANGE` of it (isovalent and
  aliovalent replacements, on cation and anion sublattices alike);
- its oxidation state is a *common* state of the element (at least 10 % of its ICSD entries, smact's ICSD 2024
  statistics, as in :mod:`screening.charge_balance`), so no Rh2+ or Pd3+;
- its element is not excluded (the ranking's exclusion list: radioactive, toxic, noble gases), not already in the
  parent, not hydrogen, not the mobile ion;
- ``plausibility`` ranks the replacements of a site. Hautier's probabilities are learned from whole-structure
  substitutions and rank the aliovalent dopants of electrolytes (Ta5+ or Nb5+ for Zr4+, Al3+ for Ti4+) very low, so
  they enter to the power :data:`PROBABILITY_EXPONENT` (0.1), times two textbook factors: the size match of the ions
  (Goldschmidt's rule: a Gaussian in the relative difference of Shannon ionic radii, width
  :data:`RADIUS_TOLERANCE`, pymatgen's radii) and :data:`OPEN_SHELL_WEIGHT` for ions with a partly filled d shell
  (Fe3+, Mn3+, Cr3+: an electrolyte must be an electronic insulator; d0/d10 and main-group ions, Ta5+, Ga3+, Al3+,
  Sn4+, are what doped electrolytes are made of). Ions without a Shannon radius in pymatgen are not proposed. The
  exponent, the tolerance and the default number of replacements per site were chosen on
  ``benchmarks/generate_recall.py`` (recall of the known doped variants of ten parents).

Mixed-anion solid solutions (halides F/Cl/Br/I, chalcogenides O/S/Se) are always proposed, whatever their rank.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "ANION_FAMILIES",
    "MAX_CHARGE_CHANGE",
    "OPEN_SHELL_WEIGHT",
    "PROBABILITY_EXPONENT",
    "PROBABILITY_SOURCE",
    "RADIUS_TOLERANCE",
    "Replacement",
    "closed_shell",
    "electronegativity",
    "not_below_electronegativity",
    "replacements",
]

PROBABILITY_SOURCE: Final[str] = (
    "Hautier et al. 2011 ionic substitution probability P(dopant | site ion), pymatgen SubstitutionProbability"
)
#: Largest change of the ion's charge a replacement may bring (e), compensated elsewhere.
MAX_CHARGE_CHANGE: Final[int] = 2
#: Factor on the plausibility of ions with a partly filled d shell (electronic conductors, redox-active).
OPEN_SHELL_WEIGHT: Final[float] = 0.1
#: Relative difference of ionic radii at which the size factor of the plausibility is exp(-1/2) (Goldschmidt: 15 %).
RADIUS_TOLERANCE: Final[float] = 0.15
#: Power of the substitution probability in the plausibility (small: it ranks aliovalent dopants far too low).
PROBABILITY_EXPONENT: Final[float] = 0.1
#: Anions that form solid solutions with each other: always proposed on each other's sites.
ANION_FAMILIES: Final[tuple[frozenset[str], ...]] = (frozenset({"F", "Cl", "Br", "I"}), frozenset({"O", "S", "Se"}))


@dataclass(frozen=True)
class Replacement:
    """One ion that may take a site.

    Attributes:
        symbol: Element of the dopant.
        state: Its oxidation state, e.
        substitution_probability: P(dopant | site ion) of Hautier et al. (dimensionless, 0..1).
        plausibility: probability ** PROBABILITY_EXPONENT x size match (x :data:`OPEN_SHELL_WEIGHT` for an
            open-d-shell ion), 0..1.
        solid_solution: An anion of the site's family (Cl/Br/I, O/S), proposed whatever its rank.
    """

    symbol: str
    state: int
    substitution_probability: float
    plausibility: float
    solid_solution: bool = False


@functools.cache
def _model() -> Any:
    from pymatgen.analysis.structure_prediction.substitution_probability import SubstitutionProbability

    return SubstitutionProbability()


@functools.cache
def _common_states() -> dict[str, tuple[int, ...]]:
    from sse_screen.screening.charge_balance import COMMON_COMMONALITY, _icsd_lists

    return _icsd_lists(COMMON_COMMONALITY)


@functools.cache
def _radius(species: Any) -> float | None:
    """Shannon ionic radius of a pymatgen Species, Å (None when pymatgen has none)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "No default ionic radius for Cr3+. Using ls data."
        radius = species.ionic_radius
    return float(radius) if radius else None


@functools.cache
def _electronegativities() -> dict[str, float]:
    """Pauling electronegativity of every element pymatgen has one for."""
    from pymatgen.core import Element

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "No Pauling electronegativity for He. Setting to NaN."
        values = {e.symbol: float(e.X) for e in Element}
    return {symbol: x for symbol, x in values.items() if math.isfinite(x)}


def electronegativity(symbol: str) -> float:
    """Pauling electronegativity of an element (NaN when pymatgen has none)."""
    return _electronegativities().get(symbol, math.nan)


def not_below_electronegativity(symbol: str) -> set[str]:
    """Elements at least as electronegative as ``symbol``: never a cation next to it (the Pauling order the
    charge-balance check enforces; I5+ cannot replace P5+ in a sulfide)."""
    limit = electronegativity(symbol)
    return {s for s, x in _electronegativities().items() if limit <= x}


def closed_shell(symbol: str, state: int) -> bool:
    """The ion has no partly filled d shell: main-group and f-block ions, d-block ions in d0 or d10."""
    from pymatgen.core import Element

    element = Element(symbol)
    if element.block != "d" or state <= 0:
        return True
    d_electrons = element.group - state
    return d_electrons in (0, 10)


def replacements(
    symbol: str,
    state: int,
    *,
    forbidden: Collection[str],
    allowed: Collection[str] | None = None,
    per_site: int | None = 8,
) -> list[Replacement]:
    """Ions that may replace ``symbol`` in ``state``, most plausible first (rules in the module docstring).

    Args:
        symbol: Element on the site.
        state: Its oxidation state in the parent, e.
        forbidden: Elements never proposed (the parent's elements, exclusions, the mobile ion).
        allowed: When given, only these elements are proposed, and all of them (no ``per_site`` cut).
        per_site: Most replacements kept (family anions come on top); None keeps every one.

    Returns:
        Replacements sorted by decreasing plausibility (ties by element symbol); empty when the site ion is not in
        the substitution table.
    """
    from pymatgen.core import Species

    model = _model()
    site = Species(symbol, state)
    if site not in model.species:
        return []
    common = _common_states()
    family = next((f for f in ANION_FAMILIES if symbol in f), frozenset()) if state < 0 else frozenset()
    radius = _radius(site)
    if radius is None:
        return []
    found = []
    for species in model.species:
        element, charge = species.symbol, int(species.oxi_state)
        if element in forbidden or element == "H" or (allowed is not None and element not in allowed):
            continue
        if charge * state <= 0 or abs(charge - state) > MAX_CHARGE_CHANGE or charge not in common.get(element, ()):
            continue
        size = _radius(species)
        if size is None:
            continue
        probability = float(model.cond_prob(species, site))
        weight = math.exp(-0.5 * ((size - radius) / radius / RADIUS_TOLERANCE) ** 2)
        weight *= 1.0 if closed_shell(element, charge) else OPEN_SHELL_WEIGHT
        score = probability**PROBABILITY_EXPONENT * weight
        found.append(Replacement(element, charge, probability, score, element in family))
    found.sort(key=lambda r: (-r.plausibility, r.symbol, r.state))
    if allowed is not None or per_site is None:
        return found
    kept = found[:per_site]
    return kept + [r for r in found[per_site:] if r.solid_solution and r.state == state]
