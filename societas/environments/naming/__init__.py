"""The naming game (Ashery, Aiello & Baronchelli 2025) and its minimal model.

`rules` holds the payoffs, the minimal model's inventories, the contact graph
and the schedule of pairs; `prompts` what players read; `env` the PettingZoo
game; `minimal` the direct simulation of the minimal model the paper compares with.
"""

from societas.environments.naming.env import NamingGame
from societas.environments.naming.minimal import MinimalNamingGame, simulate
from societas.environments.naming.rules import LETTERS, MATCH, MISMATCH, Inventory, Schedule, contact_graph, payoff

__all__ = ["LETTERS", "MATCH", "MISMATCH", "Inventory", "MinimalNamingGame", "NamingGame", "Schedule",
           "contact_graph", "payoff", "simulate"]
