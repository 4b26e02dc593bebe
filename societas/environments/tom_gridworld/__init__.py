"""Theory-of-mind gridworlds with a belief oracle (ToMnet, Rabinowitz et al. 2018; Sally-Anne tests).

`tom-gridworld`: one actor ("actor") on a walled grid (default 11 x 11, seeded
inner walls that keep the free cells connected) with four coloured objects
(red, green, blue, yellow). The actor knows the walls but sees objects only in a
square field of view of Chebyshev radius `radius` (default 2; walls do not block
sight: no line-of-sight model). Each step it moves stay/up/down/left/right; the
episode ends when it steps on (consumes) an object or after `max_steps`. Its
preferences over colours are drawn per episode from the seed (Dirichlet) unless
given; its goal is the most preferred colour. The `BeliefOracle` records, per
step, what the actor sees, has seen, and where it believes each object is (the
last position seen, or unknown).

False-belief (Sally-Anne) episodes: with `swap="unseen"`, at the first step from
`swap_step` on where an object is believed where it is but out of view, it (the
goal object if it qualifies, else the most preferred that does) is moved to a
free cell out of view, so the oracle's belief goes stale; `"seen"`
moves it while in view (the true-belief control); `"none"` never moves it.

`tom-observer`: one observer ("observer") watches `past_episodes` full
episodes of a seeded scripted actor, then the current episode up to step `cut`,
and answers a battery of choice questions, one per step. Categories:
perception, first_order_belief, knowledge, short_term_intention (next move),
long_term_intention (object headed to), desire, reality_check. Second-order
belief is omitted: there is one mind in the world, so "what X thinks Y thinks"
has no sound oracle answer here. Each question's gold answer comes from the
oracle's mind; `false_belief` marks items whose gold differs from the answer read
off the true world (they separate the actor's mind from reality: a stale belief
or ignorance). Decision data carry both minds (`beliefs`, `world`) so scripted
observers can answer from either.

`grid` holds the vocabulary and the geometry (walls, layouts, the field of
view), `mind` the belief oracle, planning and answering from a mind, `world`
one episode's state and the swap, `actor` the tom-gridworld env, `observer`
the tom-observer env and its question battery.
"""

from societas.environments.tom_gridworld.actor import TomGridworld
from societas.environments.tom_gridworld.grid import (
    ACTIONS,
    ACTOR_KINDS,
    CATEGORIES,
    COLOURS,
    EXPLORING,
    MOVES,
    SWAPS,
    UNKNOWN,
    Cell,
    Mind,
    _connected,  # noqa: F401  (imported from the package by its tests)
    cell_name,
    parse_layout,
    random_walls,
    visible_cells,
)
from societas.environments.tom_gridworld.mind import BeliefOracle, answer_question, choose_target, plan, world_mind
from societas.environments.tom_gridworld.observer import TomObserver

__all__ = ["ACTIONS", "ACTOR_KINDS", "CATEGORIES", "COLOURS", "EXPLORING", "MOVES", "SWAPS", "UNKNOWN",
           "BeliefOracle", "Cell", "Mind", "TomGridworld", "TomObserver", "answer_question", "cell_name",
           "choose_target", "parse_layout", "plan", "random_walls", "visible_cells", "world_mind"]
