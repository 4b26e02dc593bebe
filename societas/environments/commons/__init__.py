"""The GovSim commons (Piatti et al., NeurIPS 2024): members sustain or exhaust a shared stock.

`rules` holds the arithmetic (allocation, regrowth, the sustainability
threshold f(t)), `scenarios` the three resources' words, `prompts` what members
read, `env` the PettingZoo game.
"""

from societas.environments.commons.env import UTTERANCE, Commons
from societas.environments.commons.rules import allocate, regrow, sustainable_share, sustainable_total
from societas.environments.commons.scenarios import SCENARIOS, Scenario

__all__ = ["SCENARIOS", "UTTERANCE", "Commons", "Scenario", "allocate", "regrow", "sustainable_share",
           "sustainable_total"]
