"""The donor game with cultural evolution (Vallinder & Hughes 2024) as a PettingZoo parallel env.

One episode is one generation of one society: an optional strategy step (every
agent without a kept strategy writes one, "My strategy will be ..."), then
`games` games of `rounds` rounds. Each round the agents are paired; the donor
of each pair gives up part of its resources and the recipient receives
`multiplier` times that. Donors see the recipient's trace: what it did in its
last round as donor, what that round's recipient had done before, and so on,
`trace_depth` lines in the study's wording. Resources reset to the endowment
at the beginning of every game; traces and reputations carry over to the
generation's next game unless `carry_reputation` is false.

Only donors act in a round (`acting_agents()`); recipients wait. Prompts are
built from pieces made once per agent and game (the rules are one static
system message for every agent of the episode, so model servers cache the
prefix), traces are linked records walked `trace_depth` steps, and a round
costs O(agents), so societies of thousands of agents run quickly.

Actions (what `step` takes per acting agent):

- strategy step: the reply text; the strategy is read from its first "My
  strategy will be" on (the whole reply when that is missing). Anything that is
  not a string (e.g. a sample of the numeric action space) means no strategy.
- variant "none": the amount donated, a real in [0, resources].
- variant "punishment": a real in [-(resources / punish_cost), resources]; a
  negative number -u punishes: the donor pays u * punish_cost, the recipient
  loses u * punish_loss (never below 0).
- variant "partner_choice": the amount, or "refuse" ("Refuse to play" in the
  prompt; a regex ActionSpec accepts either) to decline the interaction.

Numbers outside the decision's range are clipped into it (raw PettingZoo users
sample an unbounded Box); numeric strings are accepted, anything else raises.

Infos: a donor's info holds its act (kind "donate" / "punish" / "refuse",
amount, fraction, recipient, and its own and the recipient's resources and the
recipient's reputation before the act, game_index, round) and the same dict
under "record", which societas' runner stores with the event; a recipient's
info says what it received or lost; a writer's holds its strategy. Rewards are
every agent's change in resources in the step.

Conventions taken from the study's code: the reputation score changes only on
donations; a donor with no resources left counts as donating 100%; a recipient
with no reputation yet counts as 0 in the update. Choices made here: traces and
reputations carry over between a generation's games (`carry_reputation`), and
the bipartite halves are drawn from the episode's seed (`shuffle_halves`).

`params` holds the constants and parameter checks, `prompts` what donors read,
`rules` the pairings, traces and a round's arithmetic, `observations` the gym
observations, `env` the PettingZoo game.
"""

from societas.environments.donor_game.env import DonorGame, StepResult
from societas.environments.donor_game.params import (
    CHARSET,
    GAME,
    GRAPH_KINDS,
    MAX_REPLY_CHARS,
    MAX_STRATEGY_CHARS,
    PAIRINGS,
    REFUSE,
    REFUSE_PATTERN,
    ROLE_DONOR,
    ROLE_STRATEGY,
    ROLE_WAIT,
    STRATEGY_MARKER,
    VARIANTS,
)
from societas.environments.donor_game.rules import TraceEntry

__all__ = ["CHARSET", "GAME", "GRAPH_KINDS", "MAX_REPLY_CHARS", "MAX_STRATEGY_CHARS", "PAIRINGS", "REFUSE",
           "REFUSE_PATTERN", "ROLE_DONOR", "ROLE_STRATEGY", "ROLE_WAIT", "STRATEGY_MARKER", "VARIANTS",
           "DonorGame", "StepResult", "TraceEntry"]
