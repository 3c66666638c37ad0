"""A room participant in a process of its own, for tests that make one vanish (stop or kill
the process): joins the room at argv[1] with the bearer token in `ROOM_TOKEN`, sends a tone
(argv[2] Hz) and a colour (argv[3] "r,g,b"), prints its participant id, then stays."""

from __future__ import annotations

import asyncio
import json
import os
import sys

from rtc.client import RoomClient
from rtc.synthetic import ColorTrack, ToneTrack


async def main(url: str, tone: float, rgb: tuple[int, int, int]) -> None:
    client = RoomClient(
        url,
        headers={"Authorization": f"Bearer {os.environ['ROOM_TOKEN']}"},
        display_name="vanishing",
        tracks=[ToneTrack(tone), ColorTrack(rgb)],
        decode=(),
    )
    await client.join()
    print(json.dumps({"participant": client.participant}), flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    red, green, blue = (int(c) for c in sys.argv[3].split(","))
    asyncio.run(main(sys.argv[1], float(sys.argv[2]), (red, green, blue)))
