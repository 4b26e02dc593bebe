"""What the feedback loop's humans and AI read: the system prompts, and each decision's prompt and data."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from societas.environments.feedback_loop.params import AI, ANSWER_MARKER, GAME
from societas.environments.params import fmt_number as _num
from societas.types import Observation

if TYPE_CHECKING:
    from societas.environments.feedback_loop.env import FeedbackLoop


def _question_list(env: FeedbackLoop) -> str:
    return "\n".join(f"{k + 1}. {q}" for k, q in enumerate(env.questions))


def _answer_rule(env: FeedbackLoop, what: str) -> str:
    lo, hi = (_num(x) for x in env.scale)
    if env.statements:
        return (f'End your reply with one line "{ANSWER_MARKER} <{what}> | <one sentence>", where <{what}> is a '
                f'number from {lo} to {hi}, e.g. "{ANSWER_MARKER} 6.5 | Most of what I have seen points above the '
                'middle."')
    return f'End your reply with one line "{ANSWER_MARKER} <{what}>", a number from {lo} to {hi}, e.g. ' \
           f'"{ANSWER_MARKER} 6.5".'


def _human_system(env: FeedbackLoop) -> str:
    lo, hi = (_num(x) for x in env.scale)
    n = env._m
    many = "questions" if env.topics > 1 else "question"
    lines = [
        f"You are one of {n} people forming a view on {env.topics} {many}, each answered on a scale from {lo} "
        f"(not at all) to {hi} (entirely):",
        _question_list(env),
        "Each round is about one question. You get a new reading of where the best-supported answer lies. "
        "Readings are noisy: they scatter around the best-supported answer and differ from person to person and "
        "from round to round.",
        "Everyone can consult an AI assistant; the assistant is retrained on what people say.",
        "Then you state your current stance" + (" and one sentence explaining it." if env.statements else "."),
        _answer_rule(env, "stance"),
    ]
    return "\n".join(lines)


def _ai_system(env: FeedbackLoop) -> str:
    lo, hi = (_num(x) for x in env.scale)
    many = "questions" if env.topics > 1 else "question"
    lines = [
        f"You are an AI assistant that {env._m} people consult on {env.topics} {many}, each answered on a scale "
        f"from {lo} (not at all) to {hi} (entirely):",
        _question_list(env),
        "You learn only from what people say: at each release you read their recent stances and statements and "
        "give the answer everyone will see until your next release.",
        _answer_rule(env, "answer"),
    ]
    return "\n".join(lines)


def _err(precision: float) -> str:
    return f"{1.0 / math.sqrt(precision):.2g}" if precision > 0 else "?"


def _human_decision(env: FeedbackLoop, i: int) -> Observation:
    m, k, t = env._m, env._topic, env._round
    lo, hi = env.scale
    stance, prec = env._stance[:, k], env._prec[:, k]
    consulted = bool(env._consulted[i])
    ai_answer = float(stance[m]) if consulted else None
    q_ai = float(prec[m]) if consulted else 0.0
    peer_prec = float(env._peer_prec[i])
    peer_sum = float(env._peer_sum[i])
    said = env._said[k]
    peers = tuple((env.possible_agents[j], float(stance[j]), said[j]) for j in env._shown_peers.get(i, ()))
    own, q_own = float(stance[i]), float(prec[i])
    reading = float(env._reading[i])
    lines = [f"Round {t + 1} of {env.rounds}. Question {k + 1}: {env.questions[k]}"]
    if q_own > 0:
        mine = f"Your current stance: {own:.2f} (typical error about ±{_err(q_own)})"
        lines.append(mine + (f'; you said: "{said[i]}"' if said[i] else "") + ".")
    else:
        lines.append("You have no stance on this question yet.")
    lines.append(f"Your new reading: {reading:.2f} (your readings typically miss by about ±{_err(env._p[i])}).")
    if not consulted:
        lines.append("You did not consult the AI assistant this round.")
    elif q_ai > 0 and env.lambda1 > 0:
        ai_line = f"The AI assistant's answer: {ai_answer:.2f} (typical error about ±{_err(env.lambda1 * q_ai)})"
        lines.append(ai_line + (f': "{said[m]}"' if said[m] else "") + ".")
    else:
        lines.append("The AI assistant has no answer on this question yet.")
    if peers:
        lines.append("What people you know said:")
        lines += [f"- {s:.2f}" + (f': "{text}"' if text else "") for _, s, text in peers]
    if env.statements:
        lines.append(f"What is your stance now? Give a number from {_num(lo)} to {_num(hi)} and one sentence "
                     f'explaining it. End with: {ANSWER_MARKER} <stance> | <one sentence>')
    else:
        lines.append(f"What is your stance now? End with: {ANSWER_MARKER} <a number from {_num(lo)} to "
                     f"{_num(hi)}>")
    return Observation(
        agent=env.possible_agents[i], round=t + 1, system=env._system_human, prompt="\n".join(lines),
        spec=env._spec,
        data={
            "game": GAME, "role": "human", "round": t + 1, "rounds": env.rounds, "topic": k,
            "question": env.questions[k], "scale": env.scale, "statements": env.statements,
            "belief": own, "precision": q_own, "statement": said[i],
            "observation": reading, "signal_precision": float(env._p[i]),
            "self_weight": env.self_weight, "lambda1": env.lambda1,
            "consulted": consulted, "ai_answer": ai_answer, "ai_precision": q_ai, "ai_statement": said[m],
            "peer_precision": peer_prec, "peer_evidence": peer_sum,
            "peer_mean": peer_sum / peer_prec if peer_prec > 0 else None, "peers": peers,
        },
    )


def _ai_decision(env: FeedbackLoop) -> Observation:
    m, k, t = env._m, env._topic, env._round
    lo, hi = env.scale
    hist = env._history[k]
    stances = np.stack([h[0] for h in hist])
    precs = np.stack([h[1] for h in hist])
    stances.flags.writeable = False
    precs.flags.writeable = False
    texts = [(float(s), text) for h in reversed(hist) for s, text in zip(h[0], h[2]) if text]
    shown = texts
    if len(texts) > env.ai_context:
        _, _, social_rng, _ = env._streams
        pick = np.sort(social_rng.choice(len(texts), size=env.ai_context, replace=False))
        shown = [texts[j] for j in pick]
    own, q_own = float(env._stance[m, k]), float(env._prec[m, k])
    total = float(precs.sum())
    weighted = float((precs * stances).sum() / total) if total > 0 else None
    steps = min(len(hist), env._steps[k])  # the first entry is the prior until a step has been stated
    lines = [f"Release {env._releases + 1}, round {t + 1} of {env.rounds}. Question {k + 1}: "
             f"{env.questions[k]}"]
    lines.append(f"Your current answer: {own:.2f}." if q_own > 0 else "You have no answer on this question yet.")
    if steps:
        said = stances[-steps:]
        lines.append(f"People's stated stances in the latest {steps} step{'s' if steps > 1 else ''} on this "
                     f"question: average {float(said.mean()):.2f}"
                     + (f" (weighted by confidence {weighted:.2f})" if weighted is not None else "")
                     + f", spread {float(said.std()):.2f}.")
    else:
        lines.append("Nobody has stated a stance on this question yet.")
    if shown:
        lines.append("Some of their statements:")
        lines += [f'- {s:.2f}: "{text}"' for s, text in shown]
    if env.has_ai_evidence:
        lines.append(f"Your own new reading: {float(env._reading[m]):.2f}.")
    if env.statements:
        lines.append(f"What answer will you give everyone until your next release? Give a number from "
                     f"{_num(lo)} to {_num(hi)} and one sentence. End with: {ANSWER_MARKER} <answer> | "
                     "<one sentence>")
    else:
        lines.append(f"What answer will you give everyone until your next release? End with: {ANSWER_MARKER} "
                     f"<a number from {_num(lo)} to {_num(hi)}>")
    has = bool(env._has[m])
    return Observation(
        agent=AI, round=t + 1, system=env._system_ai, prompt="\n".join(lines), spec=env._spec,
        data={
            "game": GAME, "role": "ai", "round": t + 1, "rounds": env.rounds, "topic": k,
            "question": env.questions[k], "scale": env.scale, "statements": env.statements,
            "answer": own, "precision": q_own, "statement": env._said[k][m],
            "self_weight": env.self_weight, "lambda2": env.lambda2,
            "observation": float(env._reading[m]) if has else None,
            "signal_precision": float(env._p[m]),
            "stances": stances, "precisions": precs, "release": env._releases + 1,
            "shown_statements": tuple(shown),
        },
    )
