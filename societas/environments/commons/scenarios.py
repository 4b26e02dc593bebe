"""The three scenarios of the commons, written for societas from the game's rules.

Each names the resource, its unit, what a member does with it, and the income
per unit; the rules are the same in all three (`rules.py`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True, slots=True)
class Scenario:
    """The words one scenario uses for the shared resource."""

    key: str
    role: str
    resource: str
    unit: str
    verb: str
    intro: str


SCENARIOS: dict[str, Scenario] = {
    "fishery": Scenario(
        key="fishery", role="a fisher", resource="the lake's fish", unit="tons of fish", verb="catch",
        intro="You fish on a lake together with the other fishers of your village. Fish are the only income "
              "of the village, and every ton you land sells for $1,000.",
    ),
    "pasture": Scenario(
        key="pasture", role="a shepherd", resource="the common meadow's grass", unit="flocks of sheep",
        verb="graze",
        intro="You keep sheep and share one meadow with the other shepherds of your valley. Each flock you "
              "put out to graze for a month earns you $1,000; each flock eats a unit of the meadow's grass.",
    ),
    "pollution": Scenario(
        key="pollution", role="a factory owner", resource="the river's clean water", unit="pallets of widgets",
        verb="produce",
        intro="You run a factory beside a river shared with the other factory owners of your town. Each pallet "
              "of widgets you make sells for $1,000 and fouls one unit of the river's unpolluted water.",
    ),
}
