"""Nuclide data with provenance: half-lives, decay chains, A1/A2 and dose-rate constants.

Every number names where it comes from; the sources are in docs/references.md. Tags:
[V] read in a retrieved source, [C] computed from sourced inputs, [R] recalled and not yet checked
against a source. An [R] value is shown on reports as such and never decides a verdict.

Half-lives are the ENSDF / DDEP evaluations (docs/references.md#ensdf-ddep); ICRP-107, which the
`radioactivedecay` package uses, differs by up to 0.5 % and is listed as `other_evaluations`.
Daughters that are stable, or so long-lived that their activity is negligible over a shipment
(Tc-99, T1/2 ~ 2e5 y), end a chain and are not tracked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from isolog.errors import UserError

_MIN = 60.0
_H = 3600.0
_D = 86400.0


@dataclass(frozen=True)
class Branch:
    daughter: str
    fraction: float
    source: str


@dataclass(frozen=True)
class Nuclide:
    name: str
    half_life_s: float
    half_life_unc_s: float | None  # standard uncertainty; None when the evaluation gives none
    half_life_source: str
    branches: tuple[Branch, ...] = ()  # tracked radioactive daughters only
    # Dose-rate constant: ambient dose equivalent rate H*(10) at 1 m from an unshielded point
    # source, in µSv/h per MBq (= mSv/h per GBq). None when the reference has no value.
    gamma_usv_h_per_mbq_1m: float | None = None
    gamma_source: str = ""
    # IAEA SSR-6 (2018) Table 2 basic radionuclide values, TBq; special form (A1), other (A2).
    a1_tbq: float | None = None
    a2_tbq: float | None = None
    a_values_source: str = ""
    a_values_verified: bool = False  # False: [R] recalled, shown as unverified, never a verdict
    other_evaluations: str = ""
    notes: str = ""
    untracked_daughters: tuple[str, ...] = field(default_factory=tuple)

    @property
    def decay_constant_per_s(self) -> float:
        return LN2 / self.half_life_s

    @property
    def half_life_h(self) -> float:
        return self.half_life_s / _H


LN2 = 0.6931471805599453

# docs/references.md#dose-rate-constants: "computed from ICRP-107 photon yields, NIST air
# absorption and ICRP-74 conversion factors, cross-checked against Lauridsen 1982 [C]".
_GAMMA_SRC = "docs/references.md#dose-rate-constants [C]: ICRP-107 photon yields, NIST air attenuation, ICRP-74 H*(10)"
# A1/A2 [V]: read in 49 CFR 173.435, "Table of A1 and A2 values for radionuclides" (2015 annual
# edition, as published at github.com/18F/allregs html/sections/49CFR173.435.html, amended through
# 80 FR 1163, Jan. 8, 2015), the US mirror of IAEA SSR-6 Table 2 (its footnote (a) cites SSR-6
# Table 2). Not read in the SSR-6 (2018) text itself.
_A_SRC_V = (
    "49 CFR 173.435 (2015 ed.), mirror of IAEA SSR-6 Table 2 [V: read in the CFR table; not in the SSR-6 text itself]"
)

NUCLIDES: dict[str, Nuclide] = {
    n.name: n
    for n in (
        Nuclide(
            "Lu-177",
            6.6443 * _D,
            0.0009 * _D,
            "DDEP/LNHB 2025 and ENSDF (Kondev 2019): 6.6443(9) d [V]",
            gamma_usv_h_per_mbq_1m=0.0063,
            gamma_source=_GAMMA_SRC,
            a1_tbq=30.0,
            a2_tbq=0.7,
            a_values_source=_A_SRC_V,
            a_values_verified=True,
            other_evaluations="ICRP-107 6.647 d; Lutathera SmPC 6.647 d",
            untracked_daughters=("Hf-177 (stable)",),
        ),
        Nuclide(
            "Lu-177m",
            160.4 * _D,
            0.3 * _D,
            "ENSDF: 160.4(3) d [V]",
            branches=(Branch("Lu-177", 0.227, "ENSDF / IAEA LiveChart IT branch 0.227 [V] (ICRP-107: 0.217)"),),
            gamma_usv_h_per_mbq_1m=0.178,
            gamma_source=_GAMMA_SRC,
            other_evaluations="ICRP-107 160.4 d",
            notes="the rest (beta-minus) goes to Hf-177 levels, stable",
            untracked_daughters=("Hf-177 (stable)",),
        ),
        Nuclide(
            "Mo-99",
            65.924 * _H,
            0.006 * _H,
            "ENSDF: 65.924(6) h [V]",
            branches=(Branch("Tc-99m", 0.8773, "ICRP-107 beta-minus branch to Tc-99m 0.8773 [V] (LiveChart 0.876)"),),
            gamma_usv_h_per_mbq_1m=0.024,
            gamma_source=_GAMMA_SRC + "; Mo-99 alone (0.045 with Tc-99m in equilibrium)",
            a1_tbq=1.0,
            a2_tbq=0.6,
            a_values_source=_A_SRC_V,
            a_values_verified=True,
            other_evaluations="ICRP-107 65.94 h",
            notes="A1/A2 include Tc-99m (49 CFR 173.435 footnote a); 49 CFR footnote i: A2 = 0.74 TBq "
            "for US domestic use (not applied: the SSR-6 value is used)",
            untracked_daughters=("Tc-99 (T1/2 ~2e5 y, negligible activity)",),
        ),
        Nuclide(
            "Tc-99m",
            6.0072 * _H,
            0.0009 * _H,
            "ENSDF, NDS 145 (2017): 6.0072(9) h [V]",
            gamma_usv_h_per_mbq_1m=0.022,
            gamma_source=_GAMMA_SRC,
            a1_tbq=10.0,
            a2_tbq=4.0,
            a_values_source=_A_SRC_V,
            a_values_verified=True,
            other_evaluations="ICRP-107 6.015 h",
            notes="IT to Tc-99 0.99996 [V]; Tc-99 is not tracked",
            untracked_daughters=("Tc-99 (T1/2 ~2e5 y, negligible activity)",),
        ),
        Nuclide(
            "Ga-68",
            67.71 * _MIN,
            0.08 * _MIN,
            "ENSDF: 67.71(8) min [V]",
            gamma_usv_h_per_mbq_1m=0.158,
            gamma_source=_GAMMA_SRC,
            a1_tbq=0.5,
            a2_tbq=0.5,
            a_values_source=_A_SRC_V,
            a_values_verified=True,
            other_evaluations="ICRP-107 67.71 min",
            untracked_daughters=("Zn-68 (stable)",),
        ),
        Nuclide(
            "Ge-68",
            270.95 * _D,
            0.16 * _D,
            "ENSDF: 270.95(16) d [V]",
            branches=(Branch("Ga-68", 1.0, "EC to Ga-68, 1.0 [V]"),),
            # Ge-68 decays by electron capture with no gamma of its own: its dose rate is that of
            # its Ga-68 daughter. The reference gives no separate constant, so none is used.
            gamma_usv_h_per_mbq_1m=None,
            gamma_source="no value in docs/references.md#dose-rate-constants; the dose rate is Ga-68's",
            a1_tbq=0.5,
            a2_tbq=0.5,
            a_values_source=_A_SRC_V,
            a_values_verified=True,
        ),
        Nuclide(
            "I-131",
            8.0252 * _D,
            0.0006 * _D,
            "ENSDF: 8.0252(6) d [V]",
            gamma_usv_h_per_mbq_1m=0.066,
            gamma_source=_GAMMA_SRC,
            a1_tbq=3.0,
            a2_tbq=0.7,
            a_values_source=_A_SRC_V,
            a_values_verified=True,
            other_evaluations="ICRP-107 8.0207 d",
            notes="the ~1 % branch to Xe-131m is not tracked",
            untracked_daughters=("Xe-131m (~1 % branch)", "Xe-131 (stable)"),
        ),
        Nuclide(
            "F-18",
            109.77 * _MIN,
            0.05 * _MIN,
            "ENSDF: 109.77(5) min [V]",
            gamma_usv_h_per_mbq_1m=0.165,
            gamma_source=_GAMMA_SRC,
            a1_tbq=1.0,
            a2_tbq=0.6,
            a_values_source=_A_SRC_V,
            a_values_verified=True,
            untracked_daughters=("O-18 (stable)",),
        ),
        Nuclide(
            "Y-90",
            64.05 * _H,
            0.05 * _H,
            "ENSDF: 64.05(5) h [V]",
            gamma_usv_h_per_mbq_1m=None,
            gamma_source="pure beta emitter; bremsstrahlung depends on the packaging: no constant",
            a1_tbq=0.3,
            a2_tbq=0.3,
            a_values_source=_A_SRC_V,
            a_values_verified=True,
            other_evaluations="ICRP-107 64.10 h",
            untracked_daughters=("Zr-90 (stable)",),
        ),
        Nuclide(
            "Ac-225",
            9.920 * _D,
            None,
            "IAEA LiveChart: 9.920 d, no uncertainty quoted [V]",
            gamma_usv_h_per_mbq_1m=0.036,
            gamma_source=_GAMMA_SRC + "; with its short-lived daughters in equilibrium",
            a1_tbq=0.8,
            a2_tbq=0.006,
            a_values_source=_A_SRC_V,
            a_values_verified=True,
            other_evaluations="older ENSDF 10.0(1) d",
            notes="daughters (Fr-221 ... Bi-213) are short-lived and included in the dose-rate constant",
        ),
    )
}

_NAME_RE = re.compile(r"^\s*([A-Za-z]{1,2})\s*-?\s*(\d{1,3})\s*([mM]?)\s*$")
_NAME_RE_MASS_FIRST = re.compile(r"^\s*(\d{1,3})\s*([mM]?)\s*([A-Za-z]{1,2})\s*$")


def normalise_name(text: str) -> str:
    """'lu177', 'Lu-177', '177Lu', 'LU-177M' -> 'Lu-177' / 'Lu-177m'."""
    m = _NAME_RE.match(text)
    if m:
        sym, mass, meta = m.groups()
    else:
        m = _NAME_RE_MASS_FIRST.match(text)
        if not m:
            return text.strip()
        mass, meta, sym = m.groups()
    return f"{sym.capitalize()}-{int(mass)}{meta.lower()}"


def get(name: str) -> Nuclide:
    """The nuclide called `name` (any usual spelling), or a UserError listing the known ones."""
    if not isinstance(name, str):
        raise UserError(f"nuclide {name!r} is not a name such as 'Lu-177'")
    key = normalise_name(name)
    try:
        return NUCLIDES[key]
    except KeyError:
        known = ", ".join(NUCLIDES)
        raise UserError(f"unknown nuclide {name!r}; known nuclides: {known}") from None


def chain(parent: str) -> list[Nuclide]:
    """The parent and its tracked descendants in topological order (parents before daughters)."""
    first = get(parent)
    order: list[Nuclide] = []
    seen: set[str] = set()

    def visit(n: Nuclide) -> None:
        # Depth-first post-order, reversed below: every parent ends up before its daughters.
        if n.name in seen:
            return
        seen.add(n.name)
        for b in n.branches:
            visit(NUCLIDES[b.daughter])
        order.append(n)

    visit(first)
    return order[::-1]
