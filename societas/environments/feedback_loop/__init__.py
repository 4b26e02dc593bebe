"""A human-AI feedback loop (Qiu et al. 2025, the lock-in hypothesis) as a PettingZoo parallel env.

`num_humans` humans ("human_0", ...) and one AI ("ai", the last seat) hold
stances on `topics` questions, each a number on the scale [low, high] (default
0 to 10). Every question has a hidden truth (drawn from the seed unless given;
it may drift as a random walk). Round t concerns question (t - 1) mod topics:
every human gets a private noisy reading of its truth, sees the AI's current
answer (with probability `consult_prob`) and, where a contact graph is given,
what its neighbours said, and states a stance; the AI is re-fitted on the
humans' stated stances of the latest `window` steps of that question, every
step or only every `release_every`-th (a "release"; in between it does not act
and its answer stands). The AI acts in the same step as the humans, so its
answer in round t is fitted on the stances of the question's previous step:
the synchronous update of the formal model (`societas.societies.lockin`).

Precision bookkeeping. Precisions follow the formal model whatever anyone
says: q_{t+1} = p + W_t q_t, with W the trust matrix (humans trust the AI with
`lambda1`, the AI weighs each human with `lambda2`, each human splits
`human_weight` over its neighbours, everybody keeps `self_weight` of their own
belief; a human who did not consult the AI this round gives it no weight, and
the AI's row is held between releases). Stances are what the agents say. So a
`scripted:bayesian` human, which applies nu = (p x + W (nu q)) / q to the
fields of its decision, and a `scripted:aggregator` AI reproduce
`lockin.simulate(env.trust_matrix(), mu=env.truth, sigmas=env.sigmas,
rounds=env.rounds, seed=SEED, bounds=env.scale, release_every=env.release_every)`
number for number, with consult_prob = 1 and window = 1 (readings come from
the spawn key of `lockin.signal_stream`; truths, consults and graphs from others).

Readings are clipped into the scale (a reading is a point on the scale), so
every precision-weighted belief stays on it. Stances outside the scale are
clipped; the record says so.

Actions (per acting agent): the stance as a number (or numeric string), or,
with `statements=True`, "STANCE | one sentence" (the LLM answer after
"Answer:", a regex ActionSpec) or {"stance": x, "statement": text}. A human's
decision data carries what the formal update needs: its belief and precision,
its reading and the reading's precision, the AI's answer and precision, the
lambdas, and its neighbours' precision-weighted beliefs summed
(`peer_precision`, `peer_evidence`). The AI's decision data carries the
window's stated stances and precisions as (steps, humans) arrays.

Infos "record" (stored with every event): role, topic, step, stance,
statement, observation (the reading), truth, precision, consulted and the AI
answer seen (humans), release (AI), clipped. Rewards: minus the distance of
the stated stance from the truth (agents are not told it). The episode
summary gives each seat its final stances, the truths, distances, the final
spread of human stances, the consensus error and the loop's parameters
(coupling (N-1) lambda1 lambda2 and spectral radius).

`params` holds the constants and parameter checks, `prompts` what the humans
and the AI read, `rules` the truths, the contact graph, a round's readings and
the reading of actions, `env` the PettingZoo game and its precision update.
"""

from societas.environments.feedback_loop.env import FeedbackLoop, StepResult
from societas.environments.feedback_loop.params import (
    AI,
    ANSWER_MARKER,
    GAME,
    GRAPHS,
    MAX_STATEMENT,
    NUMBER,
    QUESTIONS,
    STATEMENT_DESCRIPTION,
    STATEMENT_PATTERN,
)

__all__ = ["AI", "ANSWER_MARKER", "GAME", "GRAPHS", "MAX_STATEMENT", "NUMBER", "QUESTIONS", "STATEMENT_DESCRIPTION",
           "STATEMENT_PATTERN", "FeedbackLoop", "StepResult"]
