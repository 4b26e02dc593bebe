"""PettingZoo environments and the registry that names them.

Importing this package registers the built-in games by "module:attribute", so
it stays cheap: PettingZoo and the game modules load on the first `make()`.
"""

from __future__ import annotations

from typing import Any

from societas.environments.registry import (
    ENTRY_POINT_GROUP,
    EnvironmentEntry,
    UnknownEnvironmentError,
    make,
    register,
    registered,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "EnvironmentEntry",
    "RepeatedMatrixGame",
    "UnknownEnvironmentError",
    "make",
    "register",
    "registered",
]

register(
    "repeated-matrix-game",
    "societas.environments.matrix_game:RepeatedMatrixGame",
    description="Repeated 2x2 games (Prisoner's Dilemma, Battle of the Sexes, the 144 ordinal games) "
    "with the prompts of Akata et al. (2023).",
)
register("donor-game", "societas.environments.donor_game:DonorGame",
         description="The donor game with cultural evolution (Vallinder & Hughes 2024): one generation per episode.")
register("feedback-loop", "societas.environments.feedback_loop:FeedbackLoop",
         description="Humans and an AI that learns from them: belief diversity and lock-in (Qiu et al. 2025).")
register("partner-adaptation", "societas.environments.partner_adaptation:PartnerAdaptation",
         description="Repeated RPS / PD against an in-env partner policy: literal vs functional theory of mind.")
register("commons", "societas.environments.commons:Commons",
         description="A shared stock harvested monthly, with an optional town hall (GovSim, Piatti et al. 2024).")
register("naming-game", "societas.environments.naming:NamingGame",
         description="Pairs of a population name something at once; conventions emerge (Ashery et al. 2025).")
register("tom-gridworld", "societas.environments.tom_gridworld:TomGridworld",
         description="A partially observing actor in a gridworld with a belief oracle and false-belief swaps (ToMnet).")
register("tom-observer", "societas.environments.tom_gridworld:TomObserver",
         description="An observer answers theory-of-mind questions about a gridworld actor it watched.")


def __getattr__(name: str) -> Any:
    # Environment classes load on first use, like the registry's factories.
    if name == "RepeatedMatrixGame":
        from societas.environments.matrix_game import RepeatedMatrixGame

        return RepeatedMatrixGame
    raise AttributeError(f"module 'societas.environments' has no attribute {name!r}")
