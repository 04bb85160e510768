"""What each property model predicts: target, unit, output columns and the useful class."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sse_screen.models.persistence import check_task


@dataclass(frozen=True)
class TaskSpec:
    """The contract of one property model.

    Attributes:
        task: Task name (``stability``, ``band_gap``).
        target: Output column of the point prediction; its name carries the unit.
        unit: Unit of the target, e.g. ``"eV/atom"``.
        std_column: Output column of the Gaussian-equivalent standard deviation (same unit).
        probability_column: Output column of the probability of the useful class.
        lower_column: Output column of the interval's lower bound.
        upper_column: Output column of the interval's upper bound.
        threshold: Default class threshold (target units).
        positive: The useful class is ``target <= threshold`` (``"below"``) or ``target >= threshold`` (``"above"``).
        floor: Physical lower bound of the target (predictions and intervals are clipped to it).
    """

    task: str
    target: str
    unit: str
    std_column: str
    probability_column: str
    lower_column: str
    upper_column: str
    threshold: float
    positive: Literal["below", "above"]
    floor: float | None = 0.0


TASK_SPECS: dict[str, TaskSpec] = {
    "stability": TaskSpec(
        task="stability",
        target="e_hull_ev_per_atom",
        unit="eV/atom",
        std_column="e_hull_std_ev_per_atom",
        probability_column="p_stable",
        lower_column="e_hull_lower_ev_per_atom",
        upper_column="e_hull_upper_ev_per_atom",
        threshold=0.025,  # (meta)stable: within 25 meV/atom of the hull
        positive="below",
    ),
    "band_gap": TaskSpec(
        task="band_gap",
        target="band_gap_ev",
        unit="eV",
        std_column="band_gap_std_ev",
        probability_column="p_insulator",
        lower_column="band_gap_lower_ev",
        upper_column="band_gap_upper_ev",
        threshold=1.0,  # electronic insulator: PBE gap >= 1 eV (PBE underestimates gaps)
        positive="above",
    ),
}


def task_spec(task: str) -> TaskSpec:
    """Return the spec of a property task; ``ValueError`` for unknown names."""
    check_task(task)
    if task not in TASK_SPECS:
        raise ValueError(f"Unknown {task=} for a property model; expected one of {sorted(TASK_SPECS)}")
    return TASK_SPECS[task]
