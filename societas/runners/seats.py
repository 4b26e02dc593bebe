"""Human seats of a run: the pages of its `policy: human` members, and where their links go."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from societas.config import ExperimentConfig
from societas.societies.society import PhasedSociety

if TYPE_CHECKING:
    from societas.human.server import SeatServer

SeatAnnouncer = Callable[[Mapping[str, str]], None]
"""Told each human seat's link (member -> URL) once its page is served."""


def print_seats(urls: Mapping[str, str]) -> None:
    """The default announcer: one line per seat on stdout, `seat NAME: URL`."""
    for name, url in urls.items():
        print(f"seat {name}: {url}", flush=True)


async def serve_seats(config: ExperimentConfig, society: PhasedSociety,
                       on_seats: SeatAnnouncer) -> SeatServer | None:
    """Start the pages of the `policy: human` members and announce each seat's link; None when there are none."""
    humans = {name: s for name, s in society.members.items() if s.policy == "human"}
    if not humans:
        return None
    from societas.human.hub import SeatHub
    from societas.human.params import human_params
    from societas.human.server import SeatServer

    hub = SeatHub({name: human_params(s.params).timeout_s or config.human.timeout_s for name, s in humans.items()})
    server = SeatServer(hub, host=config.human.host, port=config.human.port)
    await server.start()
    try:
        on_seats(server.urls())
    except BaseException:
        await server.stop()
        raise
    return server
