"""updates.getDifference / getChannelDifference as Telegram serves them: per user (whatever key asks),
differenceTooLong past a gap, and updateChannelTooLong for channels with messages after the date."""

from __future__ import annotations

import pytest
from tg_emulator.world import World

pytestmark = [pytest.mark.unit, pytest.mark.timeout(10)]


def test_difference_too_long_past_the_gap_and_channels_named_after_the_date() -> None:
    w = World()
    w.difference_too_long = 4
    me, bob, owner = w.add_user("+15550600001"), w.add_user("+15550600002"), w.add_user("+15550600003")
    ch = w.create_channel(owner, "Room")
    quiet = w.create_channel(owner, "Quiet")
    w.invite_to_channel(owner, ch, [me, bob])
    w.invite_to_channel(owner, quiet, [me])
    w.advance(2)  # the invitations' service messages are older than `start` (dates are whole seconds)
    start = w.state(me)
    w.advance(5)
    w.post(bob, me, "dm 1")
    w.post(bob, ch, "in the room")
    w.advance(2)  # so the answer's state date is past the room's last message (whole seconds)
    diff = w.difference(me, start.pts, date=start.date)
    assert type(diff).__name__ == "Difference"
    assert [m.message for m in diff.new_messages] == ["dm 1"]
    too_long = [u for u in diff.other_updates if type(u).__name__ == "UpdateChannelTooLong"]
    assert [u.channel_id for u in too_long] == [ch.id] and too_long[0].pts == ch.pts
    assert ch.id in {c.id for c in diff.chats}
    # the channel's own difference from the pts the client had
    cdiff = w.channel_difference(ch, me, too_long[0].pts - 1, 100)
    assert [m.message for m in cdiff.new_messages] == ["in the room"] and cdiff.final
    # no date given (or nothing after it): no channel named
    assert not [
        u for u in w.difference(me, start.pts).other_updates if type(u).__name__ == "UpdateChannelTooLong"
    ]
    assert type(w.difference(me, diff.state.pts, date=diff.state.date)).__name__ == "DifferenceEmpty"
    for i in range(5):
        w.post(bob, me, f"dm {i + 2}")
    assert type(w.difference(me, diff.state.pts)).__name__ == "DifferenceTooLong"
    assert w.difference(me, diff.state.pts).pts == me.pts
