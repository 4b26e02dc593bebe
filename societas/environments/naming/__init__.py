"""The naming game (Ashery, Aiello & Baronchelli 2025) and its minimal model."""

from societas.environments.naming.minimal import LETTERS, MinimalNamingGame, simulate

__all__ = ["LETTERS", "MinimalNamingGame", "simulate"]
