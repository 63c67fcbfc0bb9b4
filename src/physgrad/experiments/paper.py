"""The paper's quantitative statements about its experiments, as data (quoted from the ICLR
2022 text, section given in ``source``). The report measures the same quantities on our runs
(:mod:`physgrad.report.paper_numbers`); figure code cites them (fluid's Table 1)."""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("reach", "ratio", "final", "time")


@dataclass(frozen=True)
class PaperNumber:
    """One quantitative statement of the paper about one method of one experiment."""

    experiment: str
    method: str
    """Our method name the statement is about (the baseline is the experiment's)."""
    kind: str
    """One of :data:`KINDS`."""
    value: float
    shown: str
    """How the paper states it, e.g. ``"~1000x"`` or ``"< 1.1x"``."""
    source: str
    """Section / figure of the ICLR 2022 text."""
    at: int | None = None
    """``ratio``: the iteration (None = end of training); ``reach``: the paper's baseline
    run length."""
    stand_in: str | None = None
    """Our method measured instead when ``method`` was not run (a different solver: the row
    names both)."""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")


PAPER_NUMBERS: tuple[PaperNumber, ...] = (
    # Sec. 3.1: "the PG methods ... converging to an accuracy of around 10^-5. ... PG with the
    # inverted physics results in a 1000x improvement in accuracy over conventional network
    # training".
    PaperNumber("sine", "pg-analytic", "final", 1e-5, "~1e-5", "Sec. 3.1, Fig. 3"),
    PaperNumber("sine", "pg-newton", "final", 1e-5, "~1e-5", "Sec. 3.1, Fig. 3"),
    PaperNumber("sine", "pg-analytic", "ratio", 1000.0, "~1000x", "Sec. 3.1, Fig. 3"),
    # Sec. 3.2: "its relative performance difference compared to Adam continually increasing
    # from a factor of 3 at iteration 60 to a full order of magnitude after 5k iterations".
    PaperNumber("poisson", "pg-inverse", "ratio", 3.0, "3x", "Sec. 3.2, Fig. 4c", at=60),
    PaperNumber("poisson", "pg-inverse", "ratio", 10.0, "10x", "Sec. 3.2, Fig. 4c", at=5000),
    # Sec. 3.3: "At iteration 100, the predictions are around 34% more accurate compared to
    # Adam, and the difference increases to 130% after 10k iterations. To reach the accuracy of
    # regular Adam training with 10k iterations, L-BFGS-B training requires 628 iterations and
    # training with the inverse-physics solver requires only 138 iterations."; L-BFGS-B PG
    # "about 20% more accurate ... after the same number of training iterations"; "the 17x
    # longer computation time per iteration".
    PaperNumber("heat", "pg-inverse", "ratio", 1.34, "1.34x", "Sec. 3.3, Fig. 5c", at=100),
    PaperNumber("heat", "pg-inverse", "ratio", 2.3, "2.3x", "Sec. 3.3, Fig. 5c", at=10_000),
    PaperNumber("heat", "pg-inverse", "reach", 138, "138", "Sec. 3.3", at=10_000),
    # These are about the paper's solver, scipy L-BFGS-B (our ``pg-lbfgsb``); a run without
    # it reports our batched torch L-BFGS (``pg-lbfgs``) in its place, saying so.
    PaperNumber("heat", "pg-lbfgsb", "reach", 628, "628", "Sec. 3.3", at=10_000,
                stand_in="pg-lbfgs"),
    PaperNumber("heat", "pg-lbfgsb", "ratio", 1.2, "~1.2x", "Sec. 3.3, Fig. 5c",
                stand_in="pg-lbfgs"),
    PaperNumber("heat", "pg-lbfgsb", "time", 17.0, "17x", "Sec. 3.3, Fig. 14",
                stand_in="pg-lbfgs"),
    # Fig. 14: "the computational cost difference between the various gradients is marginal,
    # affecting the overall training time by less than 10%" (the inverse-physics PGs).
    PaperNumber("poisson", "pg-inverse", "time", 1.1, "< 1.1x", "Fig. 14"),
    PaperNumber("heat", "pg-inverse", "time", 1.1, "< 1.1x", "Fig. 14"),
    PaperNumber("sine", "pg-analytic", "time", 1.1, "< 1.1x", "Fig. 14"),
    PaperNumber("fluid", "pg-reverse-sim", "time", 1.1, "< 1.1x", "Fig. 14"),
    # Sec. 3.4: "The error rapidly decreases during the first 200 iterations, at which point
    # the inferred solutions are more accurate than pure Adam training by a factor of 2.3 ...
    # reaching a relative accuracy advantage of 5x after 20K iterations. To match the network
    # trained with pure Adam for 20K iterations, the PG variant only requires 55 iterations."
    PaperNumber("fluid", "pg-reverse-sim", "ratio", 2.3, "2.3x", "Sec. 3.4, Fig. 6c", at=200),
    PaperNumber("fluid", "pg-reverse-sim", "ratio", 5.0, "5x", "Sec. 3.4, Fig. 6c", at=20_000),
    PaperNumber("fluid", "pg-reverse-sim", "reach", 55, "55", "Sec. 3.4", at=20_000),
)
"""Every quantitative paper statement the report compares with (ICLR 2022 text)."""

PAPER_SUMMARY: dict[str, str] = {
    "sine": "PG (inv. phys.) converges to ~1e-5, ~1000x more accurate than Adam (Sec. 3.1, "
    "Fig. 3)",
    "poisson": "PG ~3x more accurate than Adam at 60 iterations, ~10x at 5k (Sec. 3.2, Fig. 4c)",
    "heat": "to reach Adam's 10k-iteration accuracy, Adam + PG needs 138 (inverse) / 628 "
    "(L-BFGS-B) iterations; 34% better at 100, 130% at 10k (Sec. 3.3, Fig. 5c); x_l1 Adam+PG "
    "50.4 vs Adam 125.0 vs SGD 118.9 on a 128-sample test batch (authors' plot script)",
    "fluid": "Adam + PG matches Adam's 20k-iteration accuracy after 55 iterations; 2.3x more "
    "accurate at 200, 5x at 20k (Sec. 3.4, Fig. 6c, Table 1)",
    "wavepacket": "network beats L-BFGS-B after 30-40 iterations; L-BFGS-B diverges on 0.12% "
    "(Fig. 8)",
    "exp": "rescaled/Newton updates track x* over (-12, 0]; GD and Adam fail for small x*",
    "sine2d": "PG (Newton) accuracy independent of conditioning xi and rotation theta",
}
"""One sentence per experiment for the report's prose (the numbers are in PAPER_NUMBERS)."""


def paper_numbers(experiment: str) -> list[PaperNumber]:
    """The statements about ``experiment``, in :data:`PAPER_NUMBERS` order."""
    return [p for p in PAPER_NUMBERS if p.experiment == experiment]
